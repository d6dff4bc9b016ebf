/** Progress of a generation run: a bar on a terminal (clips x steps, elapsed, ETA), plain lines otherwise. */
import { type OnEvent, stepProgress } from "../sampling/events.ts";

const enc = new TextEncoder();

function clock(s: number): string {
  if (!Number.isFinite(s)) return "--:--";
  const m = Math.floor(s / 60), sec = Math.floor(s % 60);
  return m >= 60
    ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(sec).padStart(2, "0")}`
    : `${m}:${String(sec).padStart(2, "0")}`;
}

export class StepProgress {
  readonly tty: boolean;
  private readonly t0 = performance.now();
  private lastPlain = -1;

  constructor(
    private readonly out: { writeSync(b: Uint8Array): number; isTerminal(): boolean } = Deno.stderr,
  ) {
    this.tty = out.isTerminal();
  }

  /** `done` of `total` units (clips x steps) finished; `label` says where. */
  update(done: number, total: number, label: string): void {
    const elapsed = (performance.now() - this.t0) / 1000;
    const eta = done > 0 ? elapsed / done * (total - done) : Infinity;
    const pct = total ? done / total : 1;
    if (this.tty) {
      const width = 30;
      const fill = Math.round(pct * width);
      const bar = "#".repeat(fill) + ".".repeat(width - fill);
      this.out.writeSync(enc.encode(`\r[${bar}] ${label}  elapsed ${clock(elapsed)}  ETA ${clock(eta)}  `));
      return;
    }
    // Plain lines: every 10% and at the end, so logs stay short.
    const decile = Math.floor(pct * 10);
    if (decile === this.lastPlain && done !== total) return;
    this.lastPlain = decile;
    this.out.writeSync(
      enc.encode(`${label}  ${Math.round(pct * 100)}%  elapsed ${clock(elapsed)}  ETA ${clock(eta)}\n`),
    );
  }

  /** Ends the bar's line. */
  done(): void {
    if (this.tty) this.out.writeSync(enc.encode("\n"));
  }
}

/**
 * The CLI's handler of generation events: `step` events drive `progress` over runs x clips x steps, `phase`
 * messages and `prepared` warnings go to `log` on their own lines.
 */
export function progressEvents(
  progress: StepProgress,
  log: (line: string) => void = (l) => console.error(l),
): OnEvent {
  return (e) => {
    if (e.kind === "phase") {
      progress.done();
      log(e.message);
    } else if (e.kind === "prepared") {
      for (const w of e.warnings) log(`warning: ${w}`);
    } else if (e.kind === "step") {
      const p = stepProgress(e)!;
      const where = [
        e.run ? `run ${e.run.index + 1}/${e.run.count} ${e.run.label}` : "",
        e.clip ? `clip ${e.clip.index + 1}/${e.clip.count}` : "",
        `step ${e.step.index + 1}/${e.step.total}`,
      ];
      progress.update(p.done, p.total, where.filter(Boolean).join(" "));
    }
  };
}
