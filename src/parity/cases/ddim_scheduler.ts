/**
 * Parity case `ddim_scheduler`: the schedule Hallo builds (linear betas, zero-terminal SNR, v-prediction,
 * trailing spacing), its N-step timesteps (exact, one per `timesteps_<N>` tensor) and `step()` results
 * (one per `step_prev_sample_t<t>` tensor, with the step count its note records). The scheduler kwargs come
 * from the sidecar (`scheduler_kwargs`, else index.json's `configs.scheduler`), the rest from diffusers'
 * defaults as `DDIMScheduler(**kwargs)` takes them.
 */
import { ddimConfig, ddimStep, ddimTimesteps, makeDdimSchedule } from "../../sampling/ddim.ts";
import { f32 } from "../../tensor.ts";
import { indexConfig, noteSteps, optionalNumber } from "../settings.ts";
import type { CaseInput, CaseResult, ParityCase } from "../types.ts";
import { referenceTensor } from "./vae.ts";

function schedulerKwargs(input: CaseInput): Record<string, unknown> {
  const k = input.meta.scheduler_kwargs;
  if (typeof k === "object" && k !== null && !Array.isArray(k)) return k as Record<string, unknown>;
  return indexConfig<Record<string, unknown>>(input, "scheduler");
}

export const ddimSchedulerCase: ParityCase = {
  name: "ddim_scheduler",
  tolerance: 1e-6,
  // Timesteps are integers: exact, whatever step counts the case records.
  toleranceOf: (tensor) => /^timesteps_\d+$/.test(tensor) ? 0 : undefined,
  run(input: CaseInput): Promise<CaseResult> {
    const t0 = performance.now();
    const kwargs = { ...schedulerKwargs(input) };
    const trainSteps = optionalNumber(input, "num_train_timesteps");
    if (trainSteps !== undefined) kwargs.num_train_timesteps = trainSteps;
    const config = ddimConfig(kwargs, "parity case 'ddim_scheduler' scheduler");
    const s = makeDdimSchedule(config);
    const outputs: CaseResult["outputs"] = {
      betas: s.betas,
      alphas_cumprod: s.alphasCumprod,
      final_alpha_cumprod: Float32Array.of(s.finalAlphaCumprod),
    };
    for (const [name] of input.tensors) {
      const steps = /^timesteps_(\d+)$/.exec(name);
      if (steps) outputs[name] = Float32Array.from(ddimTimesteps(Number(steps[1]), config));
      const step = /^step_prev_sample_t(\d+)$/.exec(name);
      if (step) {
        const sample = referenceTensor(input, "step_sample");
        const model = referenceTensor(input, "step_model_output");
        const r = ddimStep(s, model.data, Number(step[1]), sample.data, noteSteps(input, name));
        outputs[name] = f32(sample.shape, r.prevSample);
      }
    }
    const run_s = (performance.now() - t0) / 1000;
    return Promise.resolve({ outputs, build_s: 0, session_s: 0, run_s });
  },
};
