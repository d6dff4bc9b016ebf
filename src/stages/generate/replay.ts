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
  /** The largest difference accepted on this device (see `replayTolerance`). */
  tolerance: number;
  /** Device and precision the run was recorded with. */
  recordedOn: { device: string; dtype: string };
}

/**
 * The largest replay difference accepted: 0 on the device and precision the run was recorded with (ORT's
 * kernels are deterministic there, so a replay is bit for bit); across devices the kernels differ (fused
 * attention, other reduction orders): 1e-3 in float32, 5e-2 in float16, on `noise_pred` and the latents.
 */
export function replayTolerance(
  recorded: { device: string; dtype: string },
  here: { device: string; dtype: string },
): number {
  if (recorded.device === here.device && recorded.dtype === here.dtype) return 0;
  return recorded.dtype === "float16" || here.dtype === "float16" ? 5e-2 : 1e-3;
}

function maxAbsDiff(a: F32Tensor, b: F32Tensor): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    if (!(d <= m)) m = d; // NaN wins
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
    tolerance: replayTolerance(recordedOn, here),
    recordedOn,
  };
}
