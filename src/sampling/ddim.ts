/**
 * diffusers v0.27.2 `DDIMScheduler` as small pure functions, with its float32 numerics (spec sections 1, 6.2).
 *
 * diffusers builds the schedule with float32 torch ops on the CPU; these functions round where torch rounds:
 * `torch.linspace` (chunked by 8, two formulas around the midpoint), `torch.cumprod` (a float64 running
 * product, each output rounded to float32: torch's CPU accumulate type for float is double), and every
 * elementwise op of `rescale_zero_terminal_snr` and `step` in float32.
 */

import { readFileSync } from "node:fs";
import { fmaF32 } from "./libm.ts";

/** The scheduler kwargs (names as diffusers `DDIMScheduler.__init__`). */
export interface DdimConfig {
  readonly num_train_timesteps: number;
  readonly beta_start: number;
  readonly beta_end: number;
  readonly beta_schedule: "linear" | "scaled_linear" | "squaredcos_cap_v2";
  readonly trained_betas: readonly number[] | null;
  readonly clip_sample: boolean;
  readonly clip_sample_range: number;
  readonly set_alpha_to_one: boolean;
  readonly steps_offset: number;
  readonly prediction_type: "epsilon" | "sample" | "v_prediction";
  readonly thresholding: boolean;
  readonly timestep_spacing: "leading" | "trailing" | "linspace";
  readonly rescale_betas_zero_snr: boolean;
}

/** diffusers v0.27.2 `DDIMScheduler` defaults. */
export const DDIM_DEFAULTS: DdimConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  trained_betas: null,
  clip_sample: true,
  clip_sample_range: 1.0,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: "epsilon",
  thresholding: false,
  timestep_spacing: "leading",
  rescale_betas_zero_snr: false,
};

/** Hallo's `noise_scheduler_kwargs` (configs/inference/default.yaml), applied over the defaults. */
export const HALLO_SCHEDULER_KWARGS: Partial<DdimConfig> = {
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: "linear",
  clip_sample: false,
  steps_offset: 1,
  prediction_type: "v_prediction",
  rescale_betas_zero_snr: true,
  timestep_spacing: "trailing",
};

/** Thrown for a scheduler config or call that diffusers would reject (or that is not reproduced here). */
export class SchedulerError extends Error {
  override name = "SchedulerError";
}

/** The precomputed schedule (diffusers' `betas`, `alphas`, `alphas_cumprod`, `final_alpha_cumprod`). */
export interface DdimSchedule {
  readonly config: DdimConfig;
  readonly betas: Float32Array;
  readonly alphas: Float32Array;
  readonly alphasCumprod: Float32Array;
  readonly finalAlphaCumprod: number;
  readonly initNoiseSigma: number;
}

/** Result of one {@link ddimStep}. */
export interface DdimStepResult {
  readonly prevSample: Float32Array;
  readonly predOriginalSample: Float32Array;
}

/** Options of {@link ddimStep}. */
export interface DdimStepOptions {
  /**
   * Precision of the latent math. `"float32"` (default) = upstream's fp32 CPU reference. `"float16"` = upstream's
   * fp16 GPU run: scalars stay float32 (0-dim tensors do not promote) but every elementwise result is rounded
   * to half; inputs must then hold half-representable values.
   */
  readonly dtype?: "float32" | "float16";
  /** Only 0 is supported (the value Hallo uses; eta > 0 would draw noise). */
  readonly eta?: number;
}

const SPACINGS = ["leading", "trailing", "linspace"];
const PREDICTIONS = ["epsilon", "sample", "v_prediction"];
const SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2"];

/**
 * Builds a config from diffusers-style kwargs (e.g. a parsed `scheduler_config.json`) over the defaults.
 * Unknown keys (`_class_name`, `skip_prk_steps`, ...) are ignored, as `from_config` does; known keys are
 * checked. `source` names the origin in error messages.
 */
export function ddimConfig(kwargs: Record<string, unknown> = {}, source = "scheduler config"): DdimConfig {
  const c: Record<string, unknown> = { ...DDIM_DEFAULTS };
  for (const key of Object.keys(DDIM_DEFAULTS)) {
    if (kwargs[key] !== undefined) c[key] = kwargs[key];
  }
  const bad = (what: string): never => {
    throw new SchedulerError(`${source}: ${what}`);
  };
  const n = c.num_train_timesteps;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 2) {
    bad(`num_train_timesteps must be an integer >= 2`);
  }
  for (const k of ["beta_start", "beta_end", "clip_sample_range"]) {
    if (typeof c[k] !== "number" || !Number.isFinite(c[k])) bad(`${k} must be a finite number`);
  }
  for (const k of ["clip_sample", "set_alpha_to_one", "thresholding", "rescale_betas_zero_snr"]) {
    if (typeof c[k] !== "boolean") bad(`${k} must be true or false`);
  }
  if (typeof c.steps_offset !== "number" || !Number.isInteger(c.steps_offset)) {
    bad(`steps_offset must be an integer`);
  }
  if (!SCHEDULES.includes(c.beta_schedule as string)) {
    bad(`beta_schedule ${JSON.stringify(c.beta_schedule)} is not implemented (${SCHEDULES.join(", ")})`);
  }
  if (!PREDICTIONS.includes(c.prediction_type as string)) {
    bad(`prediction_type ${JSON.stringify(c.prediction_type)} must be one of ${PREDICTIONS.join(", ")}`);
  }
  if (!SPACINGS.includes(c.timestep_spacing as string)) {
    bad(`timestep_spacing ${JSON.stringify(c.timestep_spacing)} must be one of ${SPACINGS.join(", ")}`);
  }
  if (c.thresholding) bad(`thresholding=true (dynamic thresholding) is not supported`);
  const tb = c.trained_betas;
  if (tb !== null) {
    if (!Array.isArray(tb) || tb.length !== n || tb.some((v) => typeof v !== "number")) {
      bad(`trained_betas must be null or ${n} numbers`);
    }
  }
  return c as unknown as DdimConfig;
}

/** Reads a diffusers `scheduler_config.json` into a {@link DdimConfig}. */
export function loadDdimConfig(path: string): DdimConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new SchedulerError(`${path}: cannot read scheduler config (${e instanceof Error ? e.message : e})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new SchedulerError(`${path}: scheduler config must be a JSON object`);
  }
  return ddimConfig(parsed as Record<string, unknown>, path);
}

/** Which of torch's CPU kernels to mirror where they round differently. */
export type CpuCapability = "avx2" | "default";

/**
 * `torch.linspace(start, end, steps, dtype=float32)` on the CPU, rounding like torch's kernel: indices below
 * steps/2 are `start + step*i`, the rest `end - step*(steps-1-i)`; vectorised chunks of 8 compute their base
 * that way and add `k*step` to it; past the last 16-aligned index the scalar formula runs. The AVX2 build of
 * the kernel is compiled with FMA contraction, so there the base formula is one fused multiply-add
 * (`"default"` = the non-vectorised-ISA build, e.g. `ATEN_CPU_CAPABILITY=default`). Verified against torch 1.13.
 */
export function torchLinspaceF32(
  start: number,
  end: number,
  steps: number,
  cpuCapability: CpuCapability = "avx2",
): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(steps);
  if (steps === 0) return out;
  const s0 = f(start);
  const s1 = f(end);
  if (steps === 1) {
    out[0] = s0;
    return out;
  }
  const step = f(f(s1 - s0) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const fused = cpuCapability === "avx2";
  const scalarAt = (i: number): number => {
    const k = i < halfway ? i : steps - i - 1;
    const base = i < halfway ? s0 : s1;
    const signedStep = i < halfway ? step : -step;
    return fused ? fmaF32(signedStep, k, base) : f(base + f(signedStep * k));
  };
  const vecEnd = steps - (steps % 16);
  for (let idx = 0; idx < vecEnd; idx += 8) {
    const base = scalarAt(idx);
    for (let k = 0; k < 8; k++) out[idx + k] = f(base + f(k * step));
  }
  for (let i = vecEnd; i < steps; i++) out[i] = scalarAt(i);
  return out;
}

/** `torch.cumprod` of a float32 vector on the CPU: float64 running product, outputs rounded to float32. */
export function torchCumprodF32(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  let acc = 1;
  for (let i = 0; i < x.length; i++) {
    acc *= x[i];
    out[i] = acc;
  }
  return out;
}

/** diffusers `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1) in float32. */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const f = Math.fround;
  const n = betas.length;
  const alphas = betas.map((b) => f(1 - b));
  const sqrtBar = torchCumprodF32(alphas).map((a) => f(Math.sqrt(a)));
  const s0 = sqrtBar[0];
  const sT = sqrtBar[n - 1];
  const scale = f(s0 / f(s0 - sT));
  const bar = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = f(f(sqrtBar[i] - sT) * scale);
    bar[i] = f(s * s);
  }
  const out = new Float32Array(n);
  out[0] = f(1 - bar[0]);
  for (let i = 1; i < n; i++) out[i] = f(1 - f(bar[i] / bar[i - 1]));
  return out;
}

/** diffusers `betas_for_alpha_bar` (cosine), computed in float64 then stored as float32. */
function cosineBetas(n: number): Float32Array {
  const alphaBar = (t: number) => Math.cos((t + 0.008) / 1.008 * Math.PI / 2) ** 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
  return out;
}

/**
 * Builds betas, alphas and alphas_cumprod as `DDIMScheduler.__init__` does. `cpuCapability` picks which torch
 * linspace kernel to mirror (it changes raw betas by an ulp; Hallo's rescaled schedule is the same either way).
 */
export function makeDdimSchedule(
  config: DdimConfig = ddimConfig(HALLO_SCHEDULER_KWARGS),
  cpuCapability: CpuCapability = "avx2",
): DdimSchedule {
  const f = Math.fround;
  const n = config.num_train_timesteps;
  let betas: Float32Array;
  if (config.trained_betas !== null) betas = Float32Array.from(config.trained_betas);
  else if (config.beta_schedule === "linear") {
    betas = torchLinspaceF32(config.beta_start, config.beta_end, n, cpuCapability);
  } else if (config.beta_schedule === "scaled_linear") {
    const roots = torchLinspaceF32(
      Math.sqrt(config.beta_start),
      Math.sqrt(config.beta_end),
      n,
      cpuCapability,
    );
    betas = roots.map((b) => f(b * b));
  } else betas = cosineBetas(n);
  if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  const alphas = betas.map((b) => f(1 - b));
  const alphasCumprod = torchCumprodF32(alphas);
  return {
    config,
    betas,
    alphas,
    alphasCumprod,
    finalAlphaCumprod: config.set_alpha_to_one ? 1 : alphasCumprod[0],
    initNoiseSigma: 1,
  };
}

/** numpy's `round` (half to even). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `set_timesteps(steps)`: the inference timesteps, descending (diffusers' numpy arithmetic). */
export function ddimTimesteps(
  steps: number,
  config: DdimConfig = ddimConfig(HALLO_SCHEDULER_KWARGS),
): Int32Array {
  const n = config.num_train_timesteps;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new SchedulerError(`num_inference_steps must be >= 1, got ${steps}`);
  }
  if (steps > n) {
    throw new SchedulerError(`num_inference_steps ${steps} cannot be larger than num_train_timesteps ${n}`);
  }
  if (config.timestep_spacing === "linspace") {
    // np.linspace(0, n-1, steps): i*step + 0, last element set to the end exactly (one step: just 0).
    if (steps === 1) return Int32Array.of(0);
    const step = (n - 1) / (steps - 1);
    const t = Array.from({ length: steps }, (_, i) => (i === steps - 1 ? n - 1 : roundHalfEven(i * step)));
    return Int32Array.from(t.reverse());
  }
  if (config.timestep_spacing === "leading") {
    const ratio = Math.floor(n / steps);
    return Int32Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + config.steps_offset);
  }
  // trailing: np.arange(n, 0, -n/steps) fills start + i*delta with delta = (start + step) - start.
  const stepRatio = -n / steps;
  const delta = (n + stepRatio) - n;
  const len = Math.ceil(-n / stepRatio);
  return Int32Array.from({ length: len }, (_, i) => roundHalfEven(n + i * delta) - 1);
}

/**
 * One `DDIMScheduler.step(model_output, t, sample)` with eta = 0, as diffusers v0.27.2 computes it:
 * `prev_t = t - num_train_timesteps // steps`; v-prediction gives `x0 = √ā_t·x − √(1−ā_t)·v` and
 * `ε = √ā_t·v + √(1−ā_t)·x`; then `x_prev = √ā_prev·x0 + √(1−ā_prev)·ε`.
 */
export function ddimStep(
  schedule: DdimSchedule,
  modelOutput: Float32Array,
  t: number,
  sample: Float32Array,
  steps: number,
  options: DdimStepOptions = {},
): DdimStepResult {
  const { config, alphasCumprod } = schedule;
  if ((options.eta ?? 0) !== 0) throw new SchedulerError(`ddimStep: eta must be 0 (got ${options.eta})`);
  if (modelOutput.length !== sample.length) {
    throw new SchedulerError(
      `ddimStep: model output has ${modelOutput.length} values, sample ${sample.length}`,
    );
  }
  if (!Number.isInteger(t) || t < 0 || t >= alphasCumprod.length) {
    throw new SchedulerError(`ddimStep: timestep ${t} outside [0, ${alphasCumprod.length})`);
  }
  if (!Number.isInteger(steps) || steps < 1) {
    throw new SchedulerError(`ddimStep: steps must be >= 1, got ${steps}`);
  }
  const f = Math.fround;
  const r: (x: number) => number = options.dtype === "float16" ? (x) => Math.f16round(f(x)) : f;
  const prevT = t - Math.floor(config.num_train_timesteps / steps);
  const aT = alphasCumprod[t];
  const aPrev = prevT >= 0 ? alphasCumprod[prevT] : schedule.finalAlphaCumprod;
  const bT = f(1 - aT);
  const sqA = f(Math.sqrt(aT));
  const sqB = f(Math.sqrt(bT));
  const sqAPrev = f(Math.sqrt(aPrev));
  // (1 - ā_prev - std_dev_t**2) ** 0.5 with std_dev_t = 0.
  const dirCoef = f(Math.sqrt(f(1 - aPrev)));
  const clip = config.clip_sample ? f(config.clip_sample_range) : Infinity;
  const n = sample.length;
  const prevSample = new Float32Array(n);
  const predOriginalSample = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = sample[i];
    const m = modelOutput[i];
    let x0: number;
    let eps: number;
    if (config.prediction_type === "v_prediction") {
      x0 = r(r(sqA * x) - r(sqB * m));
      eps = r(r(sqA * m) + r(sqB * x));
    } else if (config.prediction_type === "epsilon") {
      x0 = r(r(x - r(sqB * m)) / sqA);
      eps = m;
    } else {
      x0 = m;
      eps = r(r(x - r(sqA * x0)) / sqB);
    }
    if (x0 > clip) x0 = clip;
    else if (x0 < -clip) x0 = -clip;
    predOriginalSample[i] = x0;
    prevSample[i] = r(r(sqAPrev * x0) + r(dirCoef * eps));
  }
  return { prevSample, predOriginalSample };
}
