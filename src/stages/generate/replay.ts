/**
 * Replay: one step of one clip of a run recorded with `recordSteps`, run again alone — possibly on another
 * machine, with probes (an activation cache) and interventions — and compared with what the run recorded.
 * The step sees the recorded latents and conditioning; the bank is the reference UNet on the recorded
 * reference latents and context; DDIM's update needs nothing else, so on the recording device the step's
 * outputs come back bit for bit.
 */
import type { SamplerStep } from "../../sampling/sampler.ts";
import type { F32Tensor } from "../../tensor.ts";
import type { ActivationCache } from "../inspect/cache.ts";
import {
  type Intervention,
  type InterventionSources,
  type PlannedIntervention,
  sourceNeeded,
} from "../inspect/interventions.ts";
import { parseInterventions } from "../inspect/interventions_json.ts";
import { f32 } from "../../tensor.ts";
import { GenerationError } from "./errors.ts";
import type { HalloModels } from "./models.ts";
import { latentShape } from "./noise.ts";
import { denoise, referenceBank } from "./pipeline.ts";
import { readRunRecord, readRunStep } from "./run_dir.ts";
import type { RecordedStep } from "./run_steps.ts";

/** What a replayed step runs with besides the recording. */
export interface ReplayOptions {
  /** Records the UNet's probes at the step. */
  cache?: ActivationCache;
  /** Applied at the step (their `steps`, if any, must include it); bare ones resolved by `replayInterventions`. */
  interventions?: readonly (Intervention | PlannedIntervention)[];
}

/**
 * Interventions for a replay of `runDir`, their sources taken from the run dir itself: another clip's audio is
 * the cond half of that clip's recorded audio tokens. Sources the run dir does not hold (another image's bank
 * or face embedding, another clip's motion frames) must be given (`{ intervention, sources }`).
 */
export async function replayInterventions(
  runDir: string,
  list: readonly (Intervention | PlannedIntervention)[],
): Promise<PlannedIntervention[]> {
  const out: PlannedIntervention[] = [];
  for (const e of list) {
    if ("intervention" in e) {
      out.push(e);
      continue;
    }
    let sources: InterventionSources = {};
    if (e.kind === "audio-clip") {
      const a = (await readRunStep(runDir, e.clip, 0)).conditioning.audioTokens;
      const per = a.data.length / a.shape[0];
      sources = { audio: f32([1, ...a.shape.slice(1)], a.data.slice(a.data.length - per)) };
    } else if (sourceNeeded(e)) {
      throw new GenerationError(
        `intervention ${e.kind}: its source (${sourceNeeded(e)}) is not in the run dir ${runDir}; ` +
          `give it as { intervention, sources } (Hallo.sources resolves it with the inputs)`,
      );
    }
    out.push({ intervention: e, sources });
  }
  return out;
}

/** A replayed step and how far it is from the recording. */
export interface ReplayResult {
  clip: number;
  step: number;
  timestep: number;
  /** The latents the step saw (the recorded ones). */
  latents: F32Tensor;
  /** Guided prediction of the replay. */
  noisePred: F32Tensor;
  /** Latents after the replayed step. */
  nextLatents: F32Tensor;
  /** The UNet's probe outputs at the step. */
  probes: Record<string, unknown>;
  recorded: RecordedStep;
  /** max |replay - recorded| over `noise_pred` and `next_latents`. */
  maxDifference: number;
  /** The largest magnitude in the recorded `noise_pred` and next latents: what the tolerance scales with. */
  scale: number;
  /** The tolerance as a fraction of `scale` (0 on the recording device and precision). */
  relativeTolerance: number;
  /** The largest difference accepted on this device (see `replayTolerance`). */
  tolerance: number;
  /** Device and precision the run was recorded with. */
  recordedOn: { device: string; dtype: string };
  /** Device and precision of this replay. */
  replayedOn: { device: string; dtype: string };
}

/**
 * Across devices or precisions, the largest replay difference accepted as a fraction of the largest magnitude
 * the recording holds (`noise_pred` and the next latents): the kernels differ (other convolution and reduction
 * orders), and a difference grows with the values, which are larger with real weights (the first latents are
 * N(0,1) noise: at 512 px and 16 frames the largest of 262144 is about 4.6; the tiny set's recorded maxima are
 * 1.2-3.5).
 *
 * Measured on the tiny random set (CFG 3.5, 2 steps, 2 clips; max |replay - recorded| / max |recorded|, worst
 * of the 4 steps, absolute in brackets; WebGPU on Mesa lavapipe; tests/replay_devices_test.ts checks one of
 * each):
 * - 64 px, 4 frames: CPU fp32 replayed on WebGPU fp32 9.4e-4 (2.7e-3), WebGPU fp32 on the CPU 1.3e-3
 *   (2.4e-3); CPU fp16 on WebGPU fp16 2.3e-3 (3.7e-3: one or two fp16 steps of the rounded outputs, as fp16
 *   computes in float32 on both and rounds only what networks exchange, see `computeDType`); CPU fp32 replayed
 *   in fp16 on WebGPU 3.5e-1 (0.66), on the CPU 2.6e-1 (0.48).
 * - 128 px, 8 frames: CPU fp32 on WebGPU fp32 6.4e-6 (1.8e-5).
 * - Interventions (audio-silence, audio-shift, bank-zero, motion-frames-zero, another clip's audio) move the
 *   64 px steps by 1.7e-1 to 4.3e-1.
 * 64 px is the worst case, 150x the fp32 difference of 128 px, likely because the tiny UNet's deepest blocks
 * are 1x1 there and normalise groups of 2 channels per frame: 2 values a group (8 at 128 px; 40 channels over
 * 8x8, 2560, in the real UNet at 512 px), whose normalised output flips with the rounding of their difference.
 * Real weights are not measured here.
 *
 * Same precision on both sides, fp32 or fp16: 1e-2, 4-8x the worst measured (margin for the full-size UNet,
 * twice as deep and 10-20x wider) and 17x below the smallest intervention, so a replay with other weights,
 * inputs or a broken kernel fails. Across precisions (`mixed`): 1, the difference may not exceed the values
 * themselves: at 64 px fp16 rounding moves a step as much as an intervention does, so this catches NaN and
 * blow-ups only.
 *
 * @example
 * ```ts
 * // A CPU fp32 recording whose largest value is 3, replayed on WebGPU in fp32: 0.03 accepted.
 * const accepted = REPLAY_RELATIVE_TOLERANCE.float32 * 3;
 * ```
 */
export const REPLAY_RELATIVE_TOLERANCE = { float32: 1e-2, float16: 1e-2, mixed: 1 } as const;

/**
 * The largest replay difference accepted, in the units of the values: 0 on the device and precision the run
 * was recorded with (ORT's kernels are deterministic there, so a replay is bit for bit); across devices
 * `REPLAY_RELATIVE_TOLERANCE` of the precision (`mixed` when the two differ) times `scale`, the largest
 * magnitude the recording holds.
 *
 * @example
 * ```ts
 * replayTolerance({ device: "cpu", dtype: "float32" }, { device: "webgpu", dtype: "float32" }, 3); // 0.03
 * ```
 */
export function replayTolerance(
  recorded: { device: string; dtype: string },
  here: { device: string; dtype: string },
  scale = 1,
): number {
  if (recorded.device === here.device && recorded.dtype === here.dtype) return 0;
  if (recorded.dtype !== here.dtype) return REPLAY_RELATIVE_TOLERANCE.mixed * scale;
  return REPLAY_RELATIVE_TOLERANCE[here.dtype === "float16" ? "float16" : "float32"] * scale;
}

// NaN anywhere makes the result NaN, which no tolerance accepts.
function maxAbs(t: F32Tensor): number {
  let m = 0;
  for (const v of t.data) {
    const a = Math.abs(v);
    if (Number.isNaN(a)) return NaN;
    if (a > m) m = a;
  }
  return m;
}

function maxAbsDiff(a: F32Tensor, b: F32Tensor): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

/**
 * Runs step `step` of clip `clip` of the recorded run `runDir` again with `m` (loaded for the run's size,
 * frames and guidance), and measures it against the recording.
 *
 * @example
 * ```ts ignore
 * const r = await replayStep(hallo.models, "out.run", 0, 12);
 * console.log(r.maxDifference, r.tolerance);
 * ```
 */
export async function replayStep(
  m: HalloModels,
  runDir: string,
  clip: number,
  step: number,
  o: ReplayOptions & { dtype?: "float32" | "float16" } = {},
): Promise<ReplayResult> {
  const rec = await readRunRecord(runDir);
  const recorded = await readRunStep(runDir, clip, step);
  const c = recorded.conditioning;
  const want = latentShape(m).join();
  if (c.guidance !== m.geometry.guidance || recorded.latents.shape.join() !== want) {
    throw new GenerationError(
      `run dir ${runDir}: recorded latents [${recorded.latents.shape}] (guidance ${c.guidance}), the loaded ` +
        `networks make [${want}] (guidance ${m.geometry.guidance}); load them with the run's size and frames`,
    );
  }
  const { bank } = await referenceBank(m, c);
  const it = denoise(m, c, bank, recorded.latents, {
    steps: recorded.steps,
    cfg: recorded.cfg,
    motionScale: recorded.motionScale,
    start: step,
    stop: step + 1,
    cache: o.cache,
    // The run's own interventions first (the recording includes their effect), then the replay's.
    interventions: await replayInterventions(runDir, [
      ...parseInterventions(rec.interventions ?? [], `${runDir}/run.json interventions`),
      ...o.interventions ?? [],
    ]),
  });
  const r = await it.next();
  if (r.done) throw new GenerationError(`replay of step ${step} ran no step`);
  const s: SamplerStep = r.value;
  const recordedOn = { device: String(rec.identity.device), dtype: String(rec.identity.dtype ?? "float32") };
  const here = { device: m.denoisingUNet.session.device, dtype: o.dtype ?? "float32" };
  const scale = Math.max(maxAbs(recorded.noisePred), maxAbs(recorded.nextLatents));
  const relativeTolerance = replayTolerance(recordedOn, here);
  return {
    clip,
    step,
    timestep: s.timestep,
    latents: s.latents,
    noisePred: s.guided,
    nextLatents: s.next,
    probes: s.probes ?? {},
    recorded,
    maxDifference: Math.max(
      maxAbsDiff(s.guided, recorded.noisePred),
      maxAbsDiff(s.next, recorded.nextLatents),
    ),
    scale,
    relativeTolerance,
    tolerance: relativeTolerance * scale,
    recordedOn,
    replayedOn: here,
  };
}
