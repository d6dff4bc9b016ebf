/**
 * One clip, as upstream's `FaceAnimatePipeline.__call__` computes it (spec 6.2): the clip's conditioning
 * (conditioning.ts), the reference UNet once at step 0 (timestep 0) for the attention bank, then DDIM over the
 * denoising UNet from the initial noise, then per-frame decode. Each part is callable alone: `referenceBank`,
 * `denoise` (the step iterator over given conditioning), `denoiseClip` (all of it from the clip's inputs).
 */
import { type DdimSchedule, makeDdimSchedule } from "../../sampling/ddim.ts";
import type { EventPosition, OnEvent } from "../../sampling/events.ts";
import type { TorchCpuGenerator } from "../../sampling/noise.ts";
import { ddimSampler, type Denoiser, type SamplerStep } from "../../sampling/sampler.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import type { ActivationCache } from "../inspect/cache.ts";
import { applyInterventions, type PlannedIntervention } from "../inspect/interventions.ts";
import { type Bank, type NoiseInputs, predictNoise, runReferenceUNet } from "../networks/unets.ts";
import { decodeLatents } from "../networks/vae.ts";
import type { BankCache } from "./bank_cache.ts";
import { type ClipConditioning, type ClipInputs, conditionClip } from "./conditioning.ts";
import { GenerationError } from "./errors.ts";
import type { HalloModels } from "./models.ts";
import { initialNoise, latentShape } from "./noise.ts";
import type { RecordedSteps } from "./run_steps.ts";

/** How one clip is sampled. */
export interface DenoiseOptions {
  steps: number;
  /** Guidance scale; must match the models' geometry (guidance on iff cfg > 1). */
  cfg: number;
  /** [pose, face, lip]. */
  motionScale: readonly [number, number, number];
  schedule?: DdimSchedule;
  /**
   * Records the denoising UNet's probes (those the cache declares) at every step it runs; the UNet's inputs
   * and outputs are untouched, so the run is the same with and without it.
   */
  cache?: ActivationCache;
  /** Changes to what the UNet sees, applied at their steps just before each call (see interventions.ts). */
  interventions?: readonly PlannedIntervention[];
  /** Run only steps `start..stop-1`, `initial` being the latents step `start` sees (a replay). */
  start?: number;
  stop?: number;
}

/** How one clip is sampled, and where its noise and bank come from. */
export interface ClipOptions extends DenoiseOptions {
  /** Initial latents (1, 4, F, h, w); otherwise `initialNoise(generator, ...)` as upstream. */
  initialLatents?: F32Tensor;
  generator?: TorchCpuGenerator;
  /**
   * Reuse the reference UNet's bank when the reference latents and context were seen before (sweeps:
   * clip 0 is identical across settings of one guidance mode). Default: off, the UNet runs every clip.
   */
  bankCache?: BankCache;
}

/** What `denoiseClip` hands back after the last step. */
export interface ClipLatents {
  latents: F32Tensor;
  initialLatents: F32Tensor;
  /** The reference UNet input (ref latents repeated per guidance copy), and the bank as the reader saw it. */
  refLatents: F32Tensor;
  bank: Bank;
  /** True when the bank came from `bankCache` (the reference UNet did not run). */
  bankCached: boolean;
  /** The clip's conditioning as the UNet was fed it (before interventions). */
  conditioning: ClipConditioning;
}

/** The attention bank of a clip: the reference UNet once at timestep 0, as the denoising UNet reads it. */
export interface ReferenceBank {
  /** fp16-rounded, in pairing order. */
  bank: Bank;
  /** True when it came from a `BankCache`. */
  cached: boolean;
}

/** Runs the reference UNet on the clip's reference latents and context (or takes the bank from `cache`). */
export async function referenceBank(
  m: HalloModels,
  c: Pick<ClipConditioning, "refLatents" | "context">,
  cache?: BankCache,
): Promise<ReferenceBank> {
  if (cache) {
    const r = await cache.run(m.referenceUNet, c.refLatents, c.context, 0);
    return { bank: r.readerBank, cached: r.cached };
  }
  return {
    bank: (await runReferenceUNet(m.referenceUNet, c.refLatents, c.context, 0)).readerBank,
    cached: false,
  };
}

/** Checks that the models were loaded for this guidance scale (the UNets' batch depends on it). */
function checkGuidance(m: HalloModels, cfg: number): void {
  if (m.geometry.guidance !== cfg > 1) {
    throw new GenerationError(
      `models were loaded with guidance ${m.geometry.guidance ? "on" : "off"} but cfg is ${cfg}`,
    );
  }
}

/**
 * The DDIM steps of one clip over given conditioning and bank, from `initial` latents: yields every step (with
 * the UNet's probes), returns the final latents. Guidance runs the denoising UNet on the [uncond, cond] batch
 * (one call, or one per half for models loaded with `cfgBatch: "halves"`: `predictNoise` cuts the inputs and
 * joins the outputs, so the steps are the same); without it only the conditional branch runs (upstream crashes
 * there).
 *
 * @example
 * ```ts ignore
 * const c = await conditionClip(models, inputs);
 * const { bank } = await referenceBank(models, c);
 * const it = denoise(models, c, bank, initialNoise(manualSeed(42), latentShape(models)), {
 *   steps: 40, cfg: 3.5, motionScale: [1, 1, 1],
 * });
 * for await (const s of it) console.log(s.index, s.timestep, s.predOriginal.shape);
 * ```
 */
export function denoise(
  m: HalloModels,
  c: ClipConditioning,
  bank: Bank,
  initial: F32Tensor,
  o: DenoiseOptions,
): AsyncGenerator<SamplerStep, F32Tensor> {
  checkGuidance(m, o.cfg);
  const guidance = c.guidance;
  const model: Denoiser = async (lat, t, step) => {
    let x: NoiseInputs = {
      sample: guidance ? f32([2, ...lat.shape.slice(1)], new Float32Array([...lat.data, ...lat.data])) : lat,
      timestep: t,
      encoderHiddenStates: c.context,
      audioEmbedding: c.audioTokens,
      maskCondFea: c.faceFeatures,
      fullMask: c.masks.full,
      faceMask: c.masks.face,
      lipMask: c.masks.lip,
      motionScale: o.motionScale,
      bank,
    };
    if (o.interventions?.length) x = applyInterventions(o.interventions, x, step);
    const { noisePred, probes } = await predictNoise(m.denoisingUNet, x);
    o.cache?.recordAll(step, probes);
    if (!guidance) return { cond: f32(lat.shape, noisePred.data), probes };
    const half = noisePred.data.length / 2;
    return {
      uncond: f32(lat.shape, noisePred.data.subarray(0, half)),
      cond: f32(lat.shape, noisePred.data.subarray(half)),
      probes,
    };
  };
  return ddimSampler(model, initial, {
    schedule: o.schedule ?? makeDdimSchedule(),
    steps: o.steps,
    cfg: o.cfg,
    start: o.start,
    stop: o.stop,
  });
}

/** Steps of one clip from its inputs: conditioning, bank, initial noise, then every DDIM step. */
export async function* denoiseClip(
  m: HalloModels,
  x: ClipInputs,
  o: ClipOptions,
): AsyncGenerator<SamplerStep, ClipLatents> {
  checkGuidance(m, o.cfg);
  const c = await conditionClip(m, x);
  let init = o.initialLatents;
  if (!init) {
    if (!o.generator) throw new GenerationError("denoiseClip needs initialLatents or a generator");
    init = initialNoise(o.generator, latentShape(m));
  }
  const ref = await referenceBank(m, c, o.bankCache);
  const latents = yield* denoise(m, c, ref.bank, init, o);
  return {
    latents,
    initialLatents: init,
    refLatents: c.refLatents,
    bank: ref.bank,
    bankCached: ref.cached,
    conditioning: c,
  };
}

/** The whole clip: every step (reported as `step` events at `clip`), then the per-frame decode. */
export async function runClip(
  m: HalloModels,
  x: ClipInputs,
  o: ClipOptions & { onEvent?: OnEvent; clip?: EventPosition; recordSteps?: boolean },
): Promise<{ video: F32Tensor; latents: ClipLatents; steps?: RecordedSteps }> {
  const it = denoiseClip(m, x, o);
  const seen: F32Tensor[] = [], guided: F32Tensor[] = [];
  let r = await it.next();
  while (!r.done) {
    o.onEvent?.({ kind: "step", step: r.value, clip: o.clip });
    if (o.recordSteps) {
      seen.push(r.value.latents);
      guided.push(r.value.guided);
    }
    r = await it.next();
  }
  const video = await decodeLatents(m.vae, r.value.latents);
  const steps = o.recordSteps
    ? {
      conditioning: r.value.conditioning,
      latents: seen,
      noisePred: guided,
      final: r.value.latents,
      cfg: o.cfg,
      motionScale: o.motionScale,
    }
    : undefined;
  return { video, latents: r.value, steps };
}
