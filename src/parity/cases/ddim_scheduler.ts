/**
 * Parity case `ddim_scheduler`: the schedule Hallo builds (linear betas, zero-terminal SNR, v-prediction,
 * trailing spacing), its 40- and 2-step timesteps (exact) and three `step()` results.
 */
import { ddimConfig, ddimStep, ddimTimesteps, makeDdimSchedule } from "../../sampling/ddim.ts";
import { f32 } from "../../tensor.ts";
import type { CaseInput, CaseResult, ParityCase } from "../types.ts";

export const ddimSchedulerCase: ParityCase = {
  name: "ddim_scheduler",
  tolerance: 1e-6,
  tolerances: { timesteps_40: 0, timesteps_2: 0 },
  run(input: CaseInput): Promise<CaseResult> {
    const t0 = performance.now();
    const kwargs = (input.meta.scheduler_kwargs ?? {}) as Record<string, unknown>;
    const config = ddimConfig({ ...kwargs, num_train_timesteps: input.meta.num_train_timesteps ?? 1000 });
    const s = makeDdimSchedule(config);
    const sample = input.tensors.get("step_sample")!;
    const model = input.tensors.get("step_model_output")!;
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
        const r = ddimStep(s, model.data, Number(step[1]), sample.data, 40);
        outputs[name] = f32(sample.shape, r.prevSample);
      }
    }
    const run_s = (performance.now() - t0) / 1000;
    return Promise.resolve({ outputs, build_s: 0, session_s: 0, run_s });
  },
};
