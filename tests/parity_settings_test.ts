/**
 * Parity takes every setting from the case, not from the public set's values: a variant of
 * `denoising_unet_read_cfg` with guidance scale 7.5 (its guided prediction recombined from the public
 * cond/uncond halves) passes, the same tensors with a wrong scale in the JSON fail, and a case that records
 * no scale is a clear error. The settings readers parse the exporter's notes and refuse contradictions.
 */
import assert from "node:assert/strict";
import { PARITY_CASES } from "../src/parity/registry.ts";
import { runParity } from "../src/parity/runner.ts";
import { CaseSettingError, guidanceScale, noteSteps, noteValues, pairing } from "../src/parity/settings.ts";
import type { CaseInput } from "../src/parity/types.ts";
import { f32 } from "../src/tensor.ts";
import { referenceCaseCopy, type VariantCase, writeVariantDir } from "./helpers/reference_variant.ts";
import { relL2 } from "./helpers/tensors.ts";

const CASE = "denoising_unet_read_cfg";

/** `uncond + g * (cond - uncond)` in float32, op by op as torch computes it, from the `[uncond, cond]` batch. */
function guide(noisePred: Float32Array, g: number): Float32Array {
  const f = Math.fround, half = noisePred.length / 2, s = f(g);
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const u = noisePred[i], c = noisePred[half + i];
    out[i] = f(u + f(s * f(c - u)));
  }
  return out;
}

/** The public case with its guided prediction recomputed at `tensorScale` and the note saying `noteScale`. */
function variant(tensorScale: number, note: string | undefined): VariantCase {
  const v = referenceCaseCopy(CASE);
  const pred = v.tensors.get("noise_pred")!;
  const guided = v.tensors.get("noise_pred_guided")!;
  v.tensors.set("noise_pred_guided", f32(guided.shape, guide(pred.data, tensorScale)));
  const tensors = v.meta.tensors as Record<string, Record<string, unknown>>;
  if (note === undefined) delete tensors.noise_pred_guided.note;
  else tensors.noise_pred_guided.note = note;
  return v;
}

async function rowsOf(c: VariantCase) {
  const dir = writeVariantDir({ [CASE]: c });
  try {
    return await runParity(dir, PARITY_CASES, { only: [CASE] });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("parity: a case made with guidance scale 7.5 passes, and the same tensors under a wrong scale fail", async () => {
  const pub = referenceCaseCopy(CASE);
  // The recombination reproduces upstream's own guided tensor at the public scale...
  const at35 = guide(pub.tensors.get("noise_pred")!.data, 3.5);
  assert.ok(relL2(at35, pub.tensors.get("noise_pred_guided")!.data) < 1e-6);
  // ...and 7.5 is far from it, so a port still using 3.5 cannot pass.
  const at75 = guide(pub.tensors.get("noise_pred")!.data, 7.5);
  assert.ok(relL2(at35, at75) > 0.1);

  // Pairing listed in another order: entries are matched by block path, not by position.
  const good = variant(7.5, "guidance_scale=7.5");
  good.meta.pairing = [...(good.meta.pairing as unknown[])].reverse();
  const rows = await rowsOf(good);
  assert.deepEqual(rows.map((r) => r.tensor).sort(), ["noise_pred", "noise_pred_guided"]);
  for (const r of rows) assert.ok(r.pass && r.rel_l2! <= 1e-4, JSON.stringify(r));

  const wrong = await rowsOf(variant(7.5, "guidance_scale=3.5"));
  const g = wrong.find((r) => r.tensor === "noise_pred_guided")!;
  assert.equal(g.pass, false);
  assert.ok(g.rel_l2! > 0.1, JSON.stringify(g));
  assert.ok(wrong.find((r) => r.tensor === "noise_pred")!.pass);
});

Deno.test("parity: a guided case that records no guidance scale fails with an error naming it", async () => {
  const rows = await rowsOf(variant(7.5, undefined));
  assert.equal(rows.length, 1);
  assert.equal(rows[0].pass, false);
  assert.match(rows[0].note!, /denoising_unet_read_cfg\.json\): no guidance scale/);
});

function input(meta: Record<string, unknown>): CaseInput {
  return { dir: "/nonexistent", index: { common: {} }, meta: { case: "c", ...meta }, tensors: new Map() };
}

const guidedNote = (note: string) => ({ tensors: { noise_pred_guided: { role: "output", note } } });

Deno.test("guidance scale: the sidecar's number or the note's key=value; contradictions and absence are errors", () => {
  assert.equal(guidanceScale(input(guidedNote("guidance_scale=3.5"))), 3.5);
  assert.equal(guidanceScale(input(guidedNote("CFG with Guidance Scale: 7.25 (uncond first)"))), 7.25);
  assert.equal(guidanceScale(input(guidedNote("guidance_scale = 1e1"))), 10);
  assert.equal(guidanceScale(input({ guidance_scale: 2 })), 2);
  assert.equal(guidanceScale(input({ guidance_scale: 2, ...guidedNote("guidance_scale=2.0") })), 2);
  assert.throws(
    () => guidanceScale(input({ guidance_scale: 2, ...guidedNote("guidance_scale=3.5") })),
    (e: Error) =>
      e instanceof CaseSettingError &&
      /different values: 'guidance_scale' 2, the note .* 3\.5/.test(e.message),
  );
  assert.throws(() => guidanceScale(input(guidedNote("scale unknown"))), /c\.json\): no guidance scale/);
  assert.throws(() => guidanceScale(input({ guidance_scale: "3.5" })), /'guidance_scale' must be a number/);
  // A key that merely ends like the one asked for is not it.
  assert.deepEqual(noteValues("my_guidance_scale=4", "guidance_scale"), []);
});

Deno.test("DDIM step counts come from each step tensor's note; a note without one is an error", () => {
  const meta = (note: string) => ({ tensors: { step_prev_sample_t24: { role: "output", note } } });
  assert.equal(
    noteSteps(input(meta("step(model_output, t=24, sample) with 40 steps")), "step_prev_sample_t24"),
    40,
  );
  assert.equal(noteSteps(input(meta("num_inference_steps=25")), "step_prev_sample_t24"), 25);
  assert.throws(
    () => noteSteps(input(meta("step(model_output, t=24)")), "step_prev_sample_t24"),
    /how many steps/,
  );
  assert.throws(
    () => noteSteps(input(meta("with 40 steps, num_inference_steps=20")), "step_prev_sample_t24"),
    /different values/,
  );
});

Deno.test("pairing: each entry needs i, writer and reader; a missing list or a repeated entry is an error", () => {
  const p = { i: 0, writer: "a.transformer_blocks.0", reader: "a.transformer_blocks.0" };
  assert.deepEqual(pairing(input({ pairing: [p] })), [p]);
  assert.throws(() => pairing(input({})), /'pairing' .* is missing/);
  assert.throws(() => pairing(input({ pairing: [p, p] })), /lists bank entry 0 twice/);
  assert.throws(() => pairing(input({ pairing: [{ i: 0, writer: "a" }] })), /pairing\[0\] must be/);
});
