/** Progress of a generation run: a bar on a terminal (clips x steps, elapsed, ETA), plain lines otherwise. */

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

/** An `onStep` callback of the clip loop that drives `progress` over clips x steps. */
export function clipStepProgress(
  progress: StepProgress,
): (clip: number, clips: number, s: { index: number; total: number }) => void {
  return (clip, clips, s) =>
    progress.update(
      clip * s.total + s.index + 1,
      clips * s.total,
      `clip ${clip + 1}/${clips} step ${s.index + 1}/${s.total}`,
    );
}
