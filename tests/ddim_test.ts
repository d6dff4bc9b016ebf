import assert from "node:assert/strict";
import {
  ddimConfig,
  ddimStep,
  ddimTimesteps,
  HALLO_SCHEDULER_KWARGS,
  loadDdimConfig,
  makeDdimSchedule,
  SchedulerError,
  torchLinspaceF32,
} from "../src/sampling/ddim.ts";
import { cfgCombine, cfgSplit } from "../src/sampling/cfg.ts";
import { fmaF32 } from "../src/sampling/libm.ts";
import { referenceCase, shared } from "./helpers/shared.ts";

/** max |a-b| / max |b| (relative error against the reference's scale). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}

const reference = referenceCase("ddim_scheduler");
/** A reference tensor's float32 values. */
const ref = (name: string): Float32Array => reference.tensors.get(name)!.data;
const config = ddimConfig(
  reference.meta.scheduler_kwargs as Record<string, unknown>,
  shared("reference", "ddim_scheduler.json"),
);
const schedule = makeDdimSchedule(config);

Deno.test("Hallo kwargs equal the reference's scheduler_kwargs", () => {
  assert.deepEqual(config, ddimConfig(HALLO_SCHEDULER_KWARGS));
});

Deno.test("schedule matches upstream bit for bit (betas, alphas_cumprod, final alpha)", () => {
  const betas = ref("betas");
  const ac = ref("alphas_cumprod");
  assert.deepEqual(schedule.betas, betas);
  assert.deepEqual(schedule.alphasCumprod, ac);
  assert.equal(schedule.finalAlphaCumprod, ref("final_alpha_cumprod")[0]);
  assert.equal(schedule.alphasCumprod[999], 0, "zero terminal SNR");
  assert.ok(relErr(schedule.betas, betas) <= 1e-6 && relErr(schedule.alphasCumprod, ac) <= 1e-6);
});

Deno.test("trailing timesteps exact for 40 and 2 steps", () => {
  const t40 = ddimTimesteps(40, config);
  assert.deepEqual(Array.from(t40), Array.from(ref("timesteps_40")));
  assert.equal(t40[0], 999);
  assert.equal(t40[39], 24);
  assert.deepEqual(Array.from(ddimTimesteps(2, config)), Array.from(ref("timesteps_2")));
});

Deno.test("other spacings follow diffusers' numpy arithmetic", () => {
  // Values from numpy for 30 steps (1000/30 is not an integer: arange/round quirks show).
  const tr = ddimTimesteps(30, config);
  assert.deepEqual(Array.from(tr.slice(0, 4)), [999, 966, 932, 899]);
  assert.equal(tr.length, 30);
  assert.equal(tr[29], 32);
  const lead = ddimTimesteps(30, ddimConfig({ timestep_spacing: "leading", steps_offset: 1 }));
  assert.deepEqual(Array.from(lead.slice(0, 3)), [958, 925, 892]);
  const lin = ddimTimesteps(30, ddimConfig({ timestep_spacing: "linspace" }));
  assert.deepEqual(Array.from(lin.slice(0, 3)), [999, 965, 930]);
  assert.equal(lin[29], 0);
  assert.throws(() => ddimTimesteps(1001, config), SchedulerError);
});

Deno.test("step() matches upstream at t = 999, 499, 24 (40 steps)", () => {
  const x = ref("step_sample");
  const v = ref("step_model_output");
  for (const t of [999, 499, 24]) {
    const want = ref(`step_prev_sample_t${t}`);
    const { prevSample, predOriginalSample } = ddimStep(schedule, v, t, x, 40);
    const e = relErr(prevSample, want);
    console.log(`  t=${t}: max|diff|/max|ref| = ${e.toExponential(2)}`);
    assert.ok(e <= 1e-6, `t=${t} relative error ${e}`);
    assert.deepEqual(prevSample, want, "bit-exact with the fp32 reference");
    assert.equal(predOriginalSample.length, x.length);
  }
  // At t=999 ā=0: x0 = -v exactly, and the direction term is √(1-ā_974)·x.
  const { predOriginalSample } = ddimStep(schedule, v, 999, x, 40);
  assert.equal(predOriginalSample[0], -v[0]);
});

Deno.test("final step uses final_alpha_cumprod = 1 (x_prev = x0)", () => {
  const x = Float32Array.from([0.5, -1.25, 2]);
  const v = Float32Array.from([0.1, 0.2, -0.3]);
  const { prevSample, predOriginalSample } = ddimStep(schedule, v, 24, x, 40);
  assert.deepEqual(prevSample, predOriginalSample);
});

Deno.test("float16 mode rounds every elementwise result to half", () => {
  const x = Float32Array.from([0.5, -1.25, 2, 0.333251953125]);
  const v = Float32Array.from([0.1, 0.2, -0.3, 1.5].map(Math.f16round));
  const { prevSample } = ddimStep(schedule, v, 499, x, 40, { dtype: "float16" });
  for (const p of prevSample) assert.equal(p, Math.f16round(p));
  const f32 = ddimStep(schedule, v, 499, x, 40).prevSample;
  assert.ok(relErr(prevSample, f32) < 2e-3);
});

Deno.test("torch.linspace float32 rounding (AVX2 fused base vs default kernel)", () => {
  // torch 1.13 (Debian build) torch.linspace(0.00085, 0.012, 1000) at indices 48, 252, 911, run with the
  // AVX2 kernel and with ATEN_CPU_CAPABILITY=default.
  const want: [number, number, number][] = [
    [48, 0.0013857356971129775, 0.0013857358135282993],
    [252, 0.003662612522020936, 0.0036626122891902924],
    [911, 0.011017818003892899, 0.011017817072570324],
  ];
  const avx2 = torchLinspaceF32(0.00085, 0.012, 1000, "avx2");
  const def = torchLinspaceF32(0.00085, 0.012, 1000, "default");
  let differ = 0;
  for (let i = 0; i < 1000; i++) if (avx2[i] !== def[i]) differ++;
  assert.equal(differ, 102, "the two kernels differ in 102 of 1000 values, as torch's do");
  for (const [i, a, d] of want) {
    assert.equal(avx2[i], a);
    assert.equal(def[i], d);
  }
  assert.equal(avx2[0], Math.fround(0.00085));
  assert.equal(avx2[999], Math.fround(0.012));
  assert.equal(
    fmaF32(Math.fround(0.1), 3, Math.fround(-0.3)),
    Math.fround(Math.fround(0.1) * 3 - Math.fround(0.3)),
  );
});

Deno.test("config errors name the source and the problem", () => {
  assert.throws(() => ddimConfig({ prediction_type: "x" }, "cfg.json"), /cfg\.json: prediction_type "x"/);
  assert.throws(() => ddimConfig({ thresholding: true }), SchedulerError);
  assert.throws(() => ddimConfig({ beta_schedule: "sigmoid" }), /not implemented/);
  assert.throws(() => loadDdimConfig("/nonexistent/scheduler_config.json"), /nonexistent.*cannot read/);
  assert.throws(() => ddimStep(schedule, new Float32Array(2), 1000, new Float32Array(2), 40), SchedulerError);
  // Unknown keys (as in SD's scheduler_config.json) are ignored like diffusers' from_config does.
  assert.equal(ddimConfig({ _class_name: "PNDMScheduler", skip_prk_steps: true }).beta_start, 0.0001);
});

Deno.test("cfgCombine = u + s*(c - u) in float32, uncond first", () => {
  const out = Float32Array.from([1, 2, 3, 4, 10, 20, 30, 40]);
  const [u, c] = cfgSplit(out);
  assert.deepEqual(Array.from(u), [1, 2, 3, 4]);
  const g = cfgCombine(u, c, 3.5);
  assert.deepEqual(Array.from(g), [32.5, 65, 97.5, 130]);
  const h = cfgCombine(Float32Array.of(0.1), Float32Array.of(0.7), 3.5);
  assert.equal(
    h[0],
    Math.fround(Math.fround(0.1) + Math.fround(3.5 * Math.fround(Math.fround(0.7) - Math.fround(0.1)))),
  );
});
