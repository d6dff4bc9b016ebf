/**
 * The DDIM sampling loop as an async iterator over steps (k-diffusion's callback idea, pulled instead of
 * pushed): the caller owns the model call, the iterator owns the schedule, guidance and the update.
 */
import { cfgCombine } from "./cfg.ts";
import { type DdimSchedule, ddimStep, ddimTimesteps } from "./ddim.ts";

/** The model's answer at one step: the conditional prediction, and the unconditional one when guiding. */
export interface Prediction {
  cond: Float32Array;
  uncond?: Float32Array;
  /** Extra tensors the model produced (attention probes, module outputs), passed through to the step. */
  probes?: Record<string, unknown>;
}

/** The one callback contract: predict v (or eps) for latents `x` at timestep `t` (step index `i`). */
export type Denoiser = (x: Float32Array, t: number, i: number) => Promise<Prediction>;

/** Everything one step produced. */
export interface SamplerStep {
  /** Step index, 0-based. */
  index: number;
  /** Number of steps of this run. */
  total: number;
  timestep: number;
  /** Latents the model saw. */
  latents: Float32Array;
  uncond?: Float32Array;
  cond: Float32Array;
  /** `uncond + cfg * (cond - uncond)`, or `cond` without guidance. */
  guided: Float32Array;
  /** The scheduler's predicted x0. */
  predOriginal: Float32Array;
  /** Latents after the step. */
  next: Float32Array;
  probes?: Record<string, unknown>;
}

export interface SamplerOptions {
  schedule: DdimSchedule;
  steps: number;
  /** Guidance scale; applied only when the denoiser returns an uncond prediction. */
  cfg: number;
}

/** Runs DDIM from `initial` latents, yielding every step; the last step's `next` is the result. */
export async function* ddimSampler(
  denoise: Denoiser,
  initial: Float32Array,
  o: SamplerOptions,
): AsyncGenerator<SamplerStep, Float32Array> {
  const timesteps = ddimTimesteps(o.steps, o.schedule.config);
  // init_noise_sigma is 1 for DDIM; kept for schedules where it is not.
  let x = o.schedule.initNoiseSigma === 1 ? initial : initial.map((v) => v * o.schedule.initNoiseSigma);
  for (let i = 0; i < timesteps.length; i++) {
    const t = timesteps[i];
    const p = await denoise(x, t, i);
    const guided = p.uncond ? cfgCombine(p.uncond, p.cond, o.cfg) : p.cond;
    const r = ddimStep(o.schedule, guided, t, x, o.steps);
    yield {
      index: i,
      total: timesteps.length,
      timestep: t,
      latents: x,
      uncond: p.uncond,
      cond: p.cond,
      guided,
      predOriginal: r.predOriginalSample,
      next: r.prevSample,
      probes: p.probes,
    };
    x = r.prevSample;
  }
  return x;
}
