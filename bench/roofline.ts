/**
 * Near the limit: this machine's measured fp32 peak (GEMM microbenchmark, same run, same threads) and, per
 * network forward, FLOPs counted from the graph, achieved GFLOP/s and the fraction of that peak, per network
 * and per op class (kernel time from ORT's profiler), with the ratio to upstream's recorded times. Rows:
 * `peak`, `unet32` (both UNets at 32x32 latent, 8+2 frames, CFG), `unet64` (64x64, 16+2 frames, CFG; skipped
 * as "does not fit" when the count predicts more memory than is available, unless --force-64), `vae512`
 * (decode of one 512x512 frame). Writes the per-network figures the cost model reads.
 */
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";
import { OP_CLASSES, type OpClass } from "../src/onnx/flops.ts";
import { measureGemmPeak, theoreticalPeak } from "../src/runtime/peak.ts";
import {
  availableMemory,
  type BenchFigures,
  benchFiguresPath,
  type NetworkFigure,
  readFigures,
} from "../src/stages/generate/cost.ts";
import { type CostNetwork, fullSizeConfigs, networkCost } from "../src/stages/generate/cost_networks.ts";
import { table } from "./util.ts";

export const ROOFLINE_ROWS = ["peak", "unet32", "unet64", "vae512"] as const;
export type RooflineRow = (typeof ROOFLINE_ROWS)[number];

interface Forward {
  row: RooflineRow;
  network: CostNetwork;
  size: number;
  frames: number;
  what: string;
  /** Upstream PyTorch 1.13 on this machine, 2 threads (issue 15). */
  upstream_s?: number;
  /** The CFG pair as two batch-1 runs (the joint batch does not fit in memory at this size). */
  halves?: boolean;
}

const FORWARDS: Forward[] = [
  {
    row: "unet32",
    network: "reference_unet",
    size: 256,
    frames: 1,
    what: "32x32 latent, 1+2 refs, CFG",
    upstream_s: 21.9,
  },
  {
    row: "unet32",
    network: "denoising_unet",
    size: 256,
    frames: 8,
    what: "32x32 latent, 8+2 frames, CFG",
    upstream_s: 153,
  },
  { row: "unet64", network: "reference_unet", size: 512, frames: 1, what: "64x64 latent, 1+2 refs, CFG" },
  {
    row: "unet64",
    network: "denoising_unet",
    size: 512,
    frames: 16,
    what: "64x64 latent, 16+2 frames, CFG (two halves)",
    halves: true,
  },
  { row: "vae512", network: "vae_decoder", size: 512, frames: 1, what: "one 512x512 frame" },
];

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const gib = (b: number) => b / 2 ** 30;

function loadAverage(): number {
  return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
}

/** Runs one forward in its own process; a process the kernel kills reads as "does not fit". */
async function runForward(f: Forward): Promise<{ result?: Record<string, unknown>; status: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", here("./roofline_one.ts"), f.network, String(f.size), String(f.frames)],
      ...(f.halves ? ["halves"] : []),
    ],
    // the profiler costs the 64x64 halves forward more memory than the machine has (see roofline_one.ts)
    env: f.halves ? { BENCH_PROFILE: "0" } : {},
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const line = new TextDecoder().decode(r.stdout).trim().split("\n").pop();
  if (r.signal === "SIGKILL") return { status: "does not fit (killed by the kernel)" };
  if (!r.success || !line) return { status: `failed (exit ${r.code}${r.signal ? `, ${r.signal}` : ""})` };
  return { result: JSON.parse(line), status: "ok" };
}

/** Counted memory of one forward in a process of its own, to skip what cannot fit before trying. */
function predictedBytes(f: Forward): number {
  const c = fullSizeConfigs();
  const geo = {
    size: f.size,
    frames: f.frames,
    guidance: true,
    ...(f.halves ? { cfgBatch: "halves" as const } : {}),
  };
  const cost = networkCost(f.network, geo, c);
  return cost.weightBytes + cost.activationPeakBytes;
}

/** Runs the selected roofline rows; prints a table (or JSON lines) and records the figures. */
export async function roofline(
  rows: readonly RooflineRow[],
  o: { json: boolean; force64: boolean },
): Promise<void> {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const theory = theoreticalPeak(cpuinfo, navigator.hardwareConcurrency);
  const peak = await measureGemmPeak({ threads: 2 });
  const load = loadAverage();
  if (o.json) {
    if (rows.includes("peak")) {
      console.log(JSON.stringify({ row: "peak", ...peak, theoretical: theory, load }));
    }
  } else {
    console.log(
      `\nPeak: GEMM ${peak.n}^3 fp32 through ORT, ${peak.threads} threads, best of 5: ` +
        `${peak.gflops.toFixed(1)} GFLOP/s (${
          peak.seconds.toFixed(3)
        } s); theoretical ${theory.cores} cores x ` +
        `${theory.flopsPerCycle} FLOP/cycle x ${theory.mhz.toFixed(0)} MHz = ${
          theory.gflops.toFixed(0)
        } GFLOP/s ` +
        `(${theory.model}); load ${load}`,
    );
  }
  const measured: Partial<Record<CostNetwork, NetworkFigure>> = {};
  const measuredPeaks: number[] = [];
  const notes: string[] = [];
  const tableRows: (string | number)[][] = [];
  // BENCH_NETWORK=name runs only that network's forwards of the selected rows
  const onlyNet = Deno.env.get("BENCH_NETWORK");
  for (const f of FORWARDS.filter((x) => rows.includes(x.row) && (!onlyNet || x.network === onlyNet))) {
    let status = "ok";
    let r: Record<string, unknown> | undefined;
    let peakNow = peak.gflops;
    const need = predictedBytes(f);
    const avail = availableMemory();
    if (f.row === "unet64" && need > avail.bytes && !o.force64) {
      status =
        `does not fit (counted ${gib(need).toFixed(1)} GiB > ${gib(avail.bytes).toFixed(1)} GiB available; ` +
        `--force-64 tries)`;
    } else {
      // the machine is shared: the GEMM peak is measured again just before each forward, under the same load
      peakNow = (await measureGemmPeak({ threads: 2, repeats: 3 })).gflops;
      measuredPeaks.push(peakNow);
      ({ result: r, status } = await runForward(f));
    }
    console.error(`bench: ${f.row} ${f.network} ${status}`);
    const line: Record<string, unknown> = { row: f.row, network: f.network, what: f.what, status };
    if (r) {
      const s = r.forward_s as number;
      const flops = r.flops as Record<OpClass, number>;
      const total = r.total_flops as number;
      const classS = r.class_s as Record<OpClass, number>;
      const gflops = total / s / 1e9;
      const perClass = Object.fromEntries(OP_CLASSES.map((c) => {
        const cg = classS[c] > 0 ? flops[c] / classS[c] / 1e9 : 0;
        return [c, { gflop: flops[c] / 1e9, s: classS[c], gflops: cg, frac_peak: cg / peakNow }];
      }));
      Object.assign(line, {
        seconds: s,
        first_s: r.first_s,
        session_s: r.session_s,
        gflop: total / 1e9,
        gflops,
        peak_gflops: peakNow,
        frac_peak: gflops / peakNow,
        frac_theoretical: gflops / theory.gflops,
        upstream_s: f.upstream_s,
        vs_upstream: f.upstream_s ? f.upstream_s / s : undefined,
        peak_rss_gib: (r.peak_rss_mib as number) / 1024,
        classes: r.profiled_s !== null ? perClass : null,
        load: loadAverage(),
      });
      const prev = measured[f.network];
      if (!prev || prev.measured.size <= f.size) {
        measured[f.network] = {
          gflops,
          session_s: r.session_s as number,
          peak_rss_bytes: (r.peak_rss_mib as number) * 2 ** 20,
          weight_bytes: r.weight_bytes as number,
          activation_peak_bytes: r.activation_peak_bytes as number,
          measured: { size: f.size, frames: f.frames, guidance: true, flops: total, seconds: s },
        };
      }
      const profiled = r.profiled_s !== null;
      const pc = (c: OpClass) => profiled ? `${(perClass[c].frac_peak * 100).toFixed(0)}%` : "-";
      tableRows.push([
        f.network,
        f.what,
        total / 1e9,
        s,
        gflops,
        peakNow,
        `${(gflops / peakNow * 100).toFixed(0)}%`,
        `${(gflops / theory.gflops * 100).toFixed(0)}%`,
        pc("conv"),
        pc("matmul"),
        pc("attention"),
        pc("norm"),
        f.upstream_s ? `${(f.upstream_s / s).toFixed(2)}x` : "-",
        (r.peak_rss_mib as number) / 1024,
      ]);
    } else {
      tableRows.push([f.network, f.what, ...Array(12).fill("-")]);
      notes.push(`${f.network} ${f.what}: ${status}`);
    }
    if (o.json) console.log(JSON.stringify(line));
    // BENCH_JSONL=FILE keeps the JSON lines of a table run too
    const jsonl = Deno.env.get("BENCH_JSONL");
    if (jsonl) await Deno.writeTextFile(jsonl, JSON.stringify(line) + "\n", { append: true });
  }
  if (!o.json && tableRows.length) {
    console.log(`\nNear the limit (CPU, 2 threads, random full-size weights; % of the measured GEMM peak)`);
    console.log(table([
      "network",
      "forward",
      "GFLOP",
      "seconds",
      "GFLOP/s",
      "peak now",
      "of peak",
      "of theory",
      "conv",
      "matmul",
      "attention",
      "norm",
      "vs upstream",
      "peak RSS GiB",
    ], tableRows));
    notes.forEach((n) => console.log(n));
    if (FORWARDS.some((f) => f.halves && rows.includes(f.row))) {
      console.log(
        "two halves: timed whole without ORT's profiler (it costs that forward gigabytes): no op classes.",
      );
    }
    console.log(
      "vs upstream: PyTorch 1.13 on this machine (reference 21.9 s, denoising 153 s at 32x32) / ours.",
    );
  }
  if (Object.keys(measured).length) {
    const path = benchFiguresPath();
    const old = readFigures(path).figures;
    const figures: BenchFigures = {
      device: "cpu",
      threads: 2,
      measured_at: new Date().toISOString(),
      load,
      peak_gflops: Math.max(peak.gflops, ...measuredPeaks),
      networks: { ...(old.device === "cpu" ? old.networks : {}), ...measured },
    };
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, JSON.stringify(figures, null, 2) + "\n");
    console.error(`bench: figures for the cost model written to ${path}`);
  }
}
