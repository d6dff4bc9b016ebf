/**
 * Known answers for the region measures: guidance by region (|cond - uncond| and the step's update inside
 * each mask) and causal lip sync by occlusion, with a fake clip runner whose mouth follows its audio window.
 */
import assert from "node:assert/strict";
import { guidanceByRegion, type GuidanceStep } from "../src/stages/inspect/guidance_regions.ts";
import {
  type ClipRunner,
  mouthChange,
  occlusionAttribution,
  shiftWindows,
  silenceWindow,
} from "../src/stages/inspect/occlusion.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";
import { lcg } from "./helpers/attention.ts";

/** (1, C, F, 2, 2) with value(c, f, p). */
function stack(C: number, F: number, value: (c: number, f: number, p: number) => number): F32Tensor {
  const d = new Float32Array(C * F * 4);
  for (let c = 0; c < C; c++) {
    for (let f = 0; f < F; f++) for (let p = 0; p < 4; p++) d[(c * F + f) * 4 + p] = value(c, f, p);
  }
  return f32([1, C, F, 2, 2], d);
}

Deno.test("guidance by region: |cond - uncond| and the update land in the masks that hold them", () => {
  const latents = stack(4, 2, (c, f, p) => c + f + p);
  const uncond = stack(4, 2, (c, f, p) => c - f * p);
  // cond differs from uncond by 2 at pixel 0 (the lip) only; the step moves the background pixels (2, 3) by 0.5.
  const cond = stack(4, 2, (c, f, p) => c - f * p + (p === 0 ? 2 : 0));
  const next = stack(4, 2, (c, f, p) => c + f + p + (p >= 2 ? -0.5 : 0));
  const step: GuidanceStep = { index: 3, latents, uncond, cond, next };
  const regions = {
    lip: Float32Array.from([1, 0, 0, 0]),
    face: Float32Array.from([1, 1, 0, 0]),
    background: Float32Array.from([0, 0, 1, 1]),
    none: new Float32Array(4),
  };
  const rows = guidanceByRegion([step], regions);
  const by = Object.fromEntries(rows.map((r) => [r.region, r]));
  assert.equal(by.lip.condDelta, 2);
  assert.equal(by.face.condDelta, 1);
  assert.equal(by.background.condDelta, 0);
  assert.equal(by.lip.update, 0);
  assert.equal(by.background.update, 0.5);
  assert.deepEqual(by.face.perFrame.condDelta, [1, 1]);
  assert.ok(Number.isNaN(by.none.condDelta));
  assert.ok(rows.every((r) => r.step === 3));
});

const F = 3, TOKENS = 2, DIM = 2;

/** A fake clip: the mouth pixel (0) of frame f is the sum of audio window f; the other pixels the sum of all. */
const fakeRunner: ClipRunner = (audio) => {
  const sums = Array.from({ length: F }, (_, f) => {
    let s = 0;
    for (let i = 0; i < TOKENS * DIM; i++) s += audio.data[f * TOKENS * DIM + i];
    return s;
  });
  const all = sums.reduce((a, b) => a + b, 0);
  return Promise.resolve(stack(3, F, (_c, f, p) => (p === 0 ? sums[f] : all)));
};

Deno.test("occlusion: silencing window k changes only frame k's mouth, by that window's weight", async () => {
  const audio = f32([1, F, TOKENS, DIM], lcg(F * TOKENS * DIM, 7));
  const mouth = Float32Array.from([1, 0, 0, 0]);
  const r = await occlusionAttribution(fakeRunner, audio, { axis: 1, mouth });
  assert.deepEqual(r.change.shape, [F, F]);
  for (let k = 0; k < F; k++) {
    let s = 0;
    for (let i = 0; i < TOKENS * DIM; i++) s += audio.data[k * TOKENS * DIM + i];
    for (let f = 0; f < F; f++) {
      const want = f === k ? Math.fround(Math.abs(s)) : 0;
      assert.ok(Math.abs(r.change.data[k * F + f] - want) < 1e-6, `window ${k} frame ${f}`);
    }
  }
  // The background (which follows all the audio) does change: the mouth mask is what isolates frame k.
  const base = await fakeRunner(audio);
  const quiet = await fakeRunner(silenceWindow(audio, 1, 1));
  assert.ok(mouthChange(base, quiet, Float32Array.from([0, 1, 1, 1])).every((v) => v > 0));
});

Deno.test("occlusion: silence and shift rewrite exactly the windows they name", () => {
  const audio = f32([2, F, TOKENS], lcg(2 * F * TOKENS, 3));
  const quiet = silenceWindow(audio, 2, 1);
  const fill = Float32Array.from([9, 8]);
  const filled = silenceWindow(audio, 0, 1, fill);
  const shifted = shiftWindows(audio, 1, 1);
  const back = shiftWindows(audio, -1, 1);
  for (let b = 0; b < 2; b++) {
    for (let f = 0; f < F; f++) {
      for (let t = 0; t < TOKENS; t++) {
        const at = (b * F + f) * TOKENS + t;
        const src = (fr: number) => audio.data[(b * F + fr) * TOKENS + t];
        assert.equal(quiet.data[at], f === 2 ? 0 : src(f));
        assert.equal(filled.data[at], f === 0 ? fill[t] : src(f));
        assert.equal(shifted.data[at], src(Math.max(0, f - 1)));
        assert.equal(back.data[at], src(Math.min(F - 1, f + 1)));
      }
    }
  }
  assert.deepEqual(shiftWindows(audio, 0, 1).data, audio.data);
  assert.throws(() => silenceWindow(audio, 3, 1), /window 3 of 3 frames/);
});
