/**
 * The DDIM sampling loop as an async iterator over steps (k-diffusion's callback idea, pulled instead of
 * pushed): the caller owns the model call, the iterator owns the schedule, guidance and the update. Every
 * tensor of a step has the shape of the latents it started from.
 */
import { f32, type F32Tensor } from "../tensor.ts";
import { cfgCombine } from "./cfg.ts";
import { type DdimSchedule, ddimStep, ddimTimesteps } from "./ddim.ts";

/** The model's answer at one step: the conditional prediction, and the unconditional one when guiding. */
export interface Prediction {
  /** Shaped like the latents. */
  cond: F32Tensor;
  uncond?: F32Tensor;
  /** Extra tensors the model produced (attention probes, module outputs), passed through to the step. */
  probes?: Record<string, unknown>;
}

/** The one callback contract: predict v (or eps) for latents `x` at timestep `t` (step index `i`). */
export type Denoiser = (x: F32Tensor, t: number, i: number) => Promise<Prediction>;

/** Everything one step produced; every tensor has the latents' shape (e.g. (1, 4, F, h, w)). */
export interface SamplerStep {
  /** Step index, 0-based. */
  index: number;
  /** Number of steps of this run. */
  total: number;
  timestep: number;
  /** Latents the model saw. */
  latents: F32Tensor;
  uncond?: F32Tensor;
  cond: F32Tensor;
  /** `uncond + cfg * (cond - uncond)`, or `cond` without guidance. */
  guided: F32Tensor;
  /** The scheduler's predicted x0. */
  predOriginal: F32Tensor;
  /** Latents after the step. */
  next: F32Tensor;
  probes?: Record<string, unknown>;
}

/** The schedule, the number of steps and the guidance scale of one sampling run. */
export interface SamplerOptions {
  schedule: DdimSchedule;
  steps: number;
  /** Guidance scale; applied only when the denoiser returns an uncond prediction. */
  cfg: number;
  /**
   * First step to run (default 0): `initial` is then the latents that step sees (a replay of one recorded step;
   * DDIM's update depends only on the step's latents and timestep, so a step runs alone exactly as in the loop).
   */
  start?: number;
  /** Step to stop before (default: all steps). */
  stop?: number;
}

/**
 * Runs DDIM from `initial` latents, yielding every step; the last step's `next` is the result.
 *
 * @example
 * ```ts ignore
 * const it = ddimSampler(async (x) => ({ cond: x }), initial, { schedule: makeDdimSchedule(), steps: 4, cfg: 1 });
 * for await (const s of it) console.log(s.index, s.timestep, s.next.shape);
 * ```
 */
export async function* ddimSampler(
  denoise: Denoiser,
  initial: F32Tensor,
  o: SamplerOptions,
): AsyncGenerator<SamplerStep, F32Tensor> {
  const timesteps = ddimTimesteps(o.steps, o.schedule.config);
  const start = o.start ?? 0;
  const stop = o.stop ?? timesteps.length;
  if (
    !Number.isInteger(start) || !Number.isInteger(stop) || start < 0 || stop > timesteps.length ||
    start > stop
  ) {
    throw new RangeError(`sampler steps ${start}..${stop} are not inside 0..${timesteps.length}`);
  }
  const shape = initial.shape;
  // init_noise_sigma is 1 for DDIM; kept for schedules where it is not (it scales the noise, not a later step).
  let x = o.schedule.initNoiseSigma === 1 || start > 0
    ? initial
    : f32(shape, initial.data.map((v) => v * o.schedule.initNoiseSigma));
  for (let i = start; i < stop; i++) {
    const t = timesteps[i];
    const p = await denoise(x, t, i);
    const guided = p.uncond ? f32(shape, cfgCombine(p.uncond.data, p.cond.data, o.cfg)) : p.cond;
    const r = ddimStep(o.schedule, guided.data, t, x.data, o.steps);
    const next = f32(shape, r.prevSample);
    yield {
      index: i,
      total: timesteps.length,
      timestep: t,
      latents: x,
      uncond: p.uncond,
      cond: p.cond,
      guided,
      predOriginal: f32(shape, r.predOriginalSample),
      next,
      probes: p.probes,
    };
    x = next;
  }
  return x;
}
