/**
 * The cost model: before a run, its expected time and peak memory from the bench's per-network figures
 * (achieved GFLOP/s, session-creation time, measured peak RSS) and the FLOP/byte counts of the networks built
 * at the run's geometry. A run whose predicted peak exceeds the memory this machine has available is refused.
 *
 * Time = session creation of the counted networks + clips x (reference UNet + steps x denoising UNet +
 * frames x VAE decode), each forward its FLOPs / the network's measured GFLOP/s.
 * Memory = process base + for each network its weights and its measured slack (runtime, pre-packed weight
 * copies, arena rounding: measured peak RSS - weights - counted activation peak - base) + the largest counted
 * activation peak at the run's geometry (the networks run one at a time). The base is the smallest slack of
 * the measured networks; slack and session creation scale with the weights of the network counted.
 * With CFG, when the denoising UNet's joint batch-2 call does not fit, the estimate for running it one CFG
 * half at a time (`cfgBatch: "halves"`: half its activations, twice its calls) is taken instead if that fits.
 */
import { fileURLToPath } from "node:url";
import type { GraphCost } from "../../onnx/flops.ts";
import type { Device } from "../../runtime/device.ts";
import { parseWavHeader } from "../audio/wav.ts";
import {
  configsIn,
  COST_NETWORKS,
  type CostNetwork,
  networkCosts,
  type RunGeometry,
} from "./cost_networks.ts";
import DEFAULT_FIGURES from "./cost_figures.json" with { type: "json" };
import type { CfgBatch } from "./models.ts";

/** What the bench measured for one network on this machine. */
export interface NetworkFigure {
  /** Achieved GFLOP/s of a warm forward. */
  gflops: number;
  /** Seconds to create its session (first load). */
  session_s: number;
  /** Peak RSS of the process that built and ran it alone. */
  peak_rss_bytes: number;
  /** Counted at the measured geometry. */
  weight_bytes: number;
  activation_peak_bytes: number;
  /** The measured forward: geometry, FLOPs, seconds. */
  measured: RunGeometry & { flops: number; seconds: number };
}

/** The bench's figures file. */
export interface BenchFigures {
  device: Device;
  threads: number;
  /** When and under what load (uptime's 1-minute average) they were measured. */
  measured_at: string;
  load?: number;
  /** The GEMM microbenchmark's GFLOP/s in the same run. */
  peak_gflops?: number;
  networks: Partial<Record<CostNetwork, NetworkFigure>>;
}

/** Where `deno task bench` writes its figures (git-ignored); HALLO_BENCH_FIGURES overrides. */
export function benchFiguresPath(): string {
  return Deno.env.get("HALLO_BENCH_FIGURES") ??
    fileURLToPath(new URL("../../../.cache/bench/figures.json", import.meta.url));
}

/**
 * This machine's bench figures, each network not measured here taken from the defaults measured on the
 * project's reference machine (`cost_figures.json`).
 */
export function readFigures(path = benchFiguresPath()): { figures: BenchFigures; source: string } {
  const defaults = DEFAULT_FIGURES as BenchFigures;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return { figures: defaults, source: "defaults (run `deno task bench` to measure here)" };
  }
  let local: BenchFigures;
  try {
    local = JSON.parse(text) as BenchFigures;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message}); delete it or rerun the bench`);
  }
  if (local.device !== defaults.device) return { figures: local, source: path };
  return { figures: { ...local, networks: { ...defaults.networks, ...local.networks } }, source: path };
}

/** A planned run: its geometry, steps, clips (undefined when the audio length is not known yet), device. */
export interface RunPlan extends RunGeometry {
  steps: number;
  clips?: number;
  /** Videos rendered with the same loaded networks (a sweep's settings). */
  runs?: number;
  device: Device;
}

export interface CostEstimate {
  /** Seconds of one forward of each network at the plan's geometry. */
  forward_s: Record<CostNetwork, number>;
  load_s: number;
  clip_s: number;
  /** Whole run (load + every clip of every run); undefined when the clip count is unknown. */
  total_s?: number;
  peak_bytes: number;
  /** How the denoising UNet was counted running the CFG batch. */
  cfgBatch: CfgBatch;
}

/** Thrown for a run that cannot fit in memory: the message has both numbers. */
export class RunCostError extends Error {
  override name = "RunCostError";
}

/**
 * Expected time and peak memory of `plan` from `costs` (the networks counted at the plan's geometry) and the
 * bench `figures`. Throws when the figures lack a network or are for another device.
 */
export function estimateRun(
  plan: RunPlan,
  costs: Record<CostNetwork, GraphCost>,
  figures: BenchFigures,
): CostEstimate {
  if (figures.device !== plan.device) {
    throw new Error(`the bench figures are for device '${figures.device}', not '${plan.device}'`);
  }
  const fig = (n: CostNetwork): NetworkFigure => {
    const f = figures.networks[n];
    if (!f) throw new Error(`the bench figures have no entry for ${n}`);
    return f;
  };
  const forward_s = {} as Record<CostNetwork, number>;
  for (const n of COST_NETWORKS) forward_s[n] = costs[n].totalFlops / (fig(n).gflops * 1e9);
  // session creation (mostly pre-packing) and the runtime's slack grow with the weights: scaled from the
  // measured network to the one counted (the same network at full size; a tiny test set is far smaller)
  const scale = (n: CostNetwork) => costs[n].weightBytes / fig(n).weight_bytes;
  const load_s = COST_NETWORKS.reduce((a, n) => a + fig(n).session_s * scale(n), 0);
  const clip_s = forward_s.reference_unet + plan.steps * forward_s.denoising_unet +
    plan.frames * forward_s.vae_decoder;
  const total_s = plan.clips === undefined ? undefined : load_s + (plan.runs ?? 1) * plan.clips * clip_s;

  const slack = (n: CostNetwork) =>
    Math.max(0, fig(n).peak_rss_bytes - fig(n).weight_bytes - fig(n).activation_peak_bytes);
  const base = Math.min(...COST_NETWORKS.map(slack));
  const resident = COST_NETWORKS.reduce((a, n) => a + costs[n].weightBytes + (slack(n) - base) * scale(n), 0);
  const activations = Math.max(...COST_NETWORKS.map((n) => costs[n].activationPeakBytes));
  const cfgBatch = plan.guidance && plan.cfgBatch === "halves" ? "halves" : "joint";
  return { forward_s, load_s, clip_s, total_s, peak_bytes: base + resident + activations, cfgBatch };
}

/** Bytes this machine has available: HALLO_MEM_AVAILABLE_GIB if set, else MemAvailable of /proc/meminfo. */
export function availableMemory(meminfo?: string): { bytes: number; source: string } {
  const env = Deno.env.get("HALLO_MEM_AVAILABLE_GIB");
  if (env !== undefined) {
    const gib = Number(env);
    if (!(gib > 0)) throw new Error(`HALLO_MEM_AVAILABLE_GIB=${env}: not a positive number of GiB`);
    return { bytes: gib * 2 ** 30, source: "HALLO_MEM_AVAILABLE_GIB" };
  }
  const text = meminfo ?? Deno.readTextFileSync("/proc/meminfo");
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(text);
  if (!m) throw new Error("/proc/meminfo has no MemAvailable line");
  return { bytes: Number(m[1]) * 1024, source: "MemAvailable in /proc/meminfo" };
}

/** Clips of a WAV's audio at 25 fps and `frames` per clip, from its header; undefined for other files. */
export async function wavClips(path: string, frames: number, fps = 25): Promise<number | undefined> {
  const f = await Deno.open(path);
  try {
    const buf = new Uint8Array(1 << 16);
    const n = (await f.read(buf)) ?? 0;
    const h = parseWavHeader(buf.subarray(0, n), path);
    if (!h?.dataBytes) return undefined;
    const seconds = h.dataBytes / (h.bytesPerSample * h.channelCount * h.sampleRate);
    return Math.ceil(Math.ceil(seconds * fps) / frames);
  } catch {
    return undefined;
  } finally {
    f.close();
  }
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

/** Seconds as "1 h 02 min", "3 min 20 s" or "12.3 s". */
export function formatDuration(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** The lines printed before a run, and whether it fits. */
export function describeEstimate(
  plan: RunPlan,
  e: CostEstimate,
  available: { bytes: number; source: string },
  source: string,
): { lines: string[]; fits: boolean } {
  const cfg = plan.cfgBatch === "halves" ? ", CFG in halves" : ", CFG";
  const what = `${plan.size}x${plan.size}, ${plan.steps} steps, ${plan.frames}+2 frames per clip` +
    `${plan.guidance ? cfg : ""}, ${plan.device}`;
  const time = e.total_s !== undefined
    ? `${formatDuration(e.total_s)} for ${
      (plan.runs ?? 1) > 1 ? `${plan.runs} runs of ` : ""
    }${plan.clips} clip(s)`
    : `${formatDuration(e.clip_s)} per clip`;
  const fits = e.peak_bytes <= available.bytes;
  return {
    fits,
    lines: [
      `expected: ${time} (networks load ${formatDuration(e.load_s)}, denoising step ${
        formatDuration(e.forward_s.denoising_unet)
      }), peak memory ${gib(e.peak_bytes)} of ${
        gib(available.bytes)
      } available [${what}; figures: ${source}]`,
    ],
  };
}

export interface RunCostOptions {
  weightsDir: string;
  size: number;
  steps: number;
  /** CFG on (any guidance scale above 1). */
  guidance: boolean;
  device: Device;
  /** The driving audio: a WAV's header gives the clip count; other formats get a per-clip time. */
  audio?: string;
  /** Videos rendered (a sweep's settings). */
  runs?: number;
  /** Frames per clip (16, as upstream). */
  frames?: number;
  /**
   * How the denoising UNet runs the CFG batch; undefined: "joint" when it fits, else "halves" when that fits
   * (the estimate's `cfgBatch` says which).
   */
  cfgBatch?: CfgBatch;
  /** Where the estimate goes (stderr). */
  log?: (line: string) => void;
}

/**
 * Prints the expected time and peak memory of a run and throws RunCostError (one line, both numbers) when
 * the peak exceeds this machine's available memory. HALLO_MEM_AVAILABLE_GIB fakes the available memory;
 * HALLO_NO_MEMORY_CHECK=1 turns the refusal into a warning. Without figures for the device it says so.
 */
export async function checkRunCost(o: RunCostOptions): Promise<CostEstimate | undefined> {
  const log = o.log ?? ((l: string) => console.error(l));
  const { figures, source } = readFigures();
  if (figures.device !== o.device) {
    log(
      `expected time and memory: no bench figures for device '${o.device}' (run \`deno task bench\` there)`,
    );
    return undefined;
  }
  const frames = o.frames ?? 16;
  const plan: RunPlan = {
    size: o.size,
    frames,
    guidance: o.guidance,
    steps: o.steps,
    device: o.device,
    runs: o.runs,
    clips: o.audio ? await wavClips(o.audio, frames) : undefined,
    cfgBatch: o.cfgBatch,
  };
  const missing = COST_NETWORKS.filter((n) => !figures.networks[n]);
  if (missing.length) {
    log(`expected time and memory: the bench figures (${source}) lack ${missing.join(", ")}`);
    return undefined;
  }
  const configs = configsIn(o.weightsDir);
  const estimate = (p: RunPlan) => estimateRun(p, networkCosts(p, configs), figures);
  const avail = availableMemory();
  let est = estimate(plan);
  if (o.cfgBatch === undefined && o.guidance && est.peak_bytes > avail.bytes) {
    const halves = estimate({ ...plan, cfgBatch: "halves" });
    if (halves.peak_bytes <= avail.bytes) {
      log(
        `the denoising UNet's joint CFG batch needs about ${gib(est.peak_bytes)}: running it one CFG half ` +
          `at a time (--cfg-batch halves)`,
      );
      plan.cfgBatch = "halves";
      est = halves;
    }
  }
  const { lines, fits } = describeEstimate(plan, est, avail, source);
  lines.forEach((l) => log(l));
  if (!fits) {
    const msg =
      `this run needs about ${gib(est.peak_bytes)} of memory at ${plan.size}x${plan.size} but the ` +
      `machine has ${gib(avail.bytes)} available (${avail.source}); choose a smaller --size` +
      (o.guidance && plan.cfgBatch !== "halves" ? " or --cfg-batch halves" : "");
    if (Deno.env.get("HALLO_NO_MEMORY_CHECK") === "1") {
      log(`warning: ${msg} (HALLO_NO_MEMORY_CHECK=1: running anyway)`);
    } else throw new RunCostError(msg);
  }
  return est;
}
