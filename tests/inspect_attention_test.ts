/**
 * Known answers for the attention-based inspect measures: attention mass, audio -> pixels, reference ->
 * identity and motion attention / seams, on probabilities constructed as the UNet computes them.
 */
import assert from "node:assert/strict";
import { checkAttentionMass, meanHeads } from "../src/stages/inspect/attention_mass.ts";
import {
  audioAttribution,
  audioBranchSite,
  type AudioLayerProbe,
} from "../src/stages/inspect/audio_attribution.ts";
import { bankShare, bankShareSeries, identityDrift } from "../src/stages/inspect/identity.ts";
import { motionAttention, seamAttention, seamMeasure } from "../src/stages/inspect/temporal.ts";
import { InspectError } from "../src/stages/inspect/errors.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";
import { lcg, softmaxAttention } from "./helpers/attention.ts";

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

Deno.test("attention mass: softmax rows sum to 1 and a row that does not is named", () => {
  const p = softmaxAttention(lcg(2 * 2 * 3 * 4, 1), lcg(2 * 2 * 5 * 4, 2), {
    rows: 2,
    heads: 2,
    queries: 3,
    keys: 5,
    dim: 4,
  });
  assert.ok(checkAttentionMass("p", p) < 1e-6);
  const bad = f32([1, 2, 2], Float32Array.from([0.5, 0.5, 0.5, 0.25]));
  assert.throws(() => checkAttentionMass("bad", bad), /bad: query row 1 sums to 0\.75,/);
  assert.throws(
    () => checkAttentionMass("neg", f32([1, 1, 2], Float32Array.from([1.5, -0.5]))),
    InspectError,
  );
  const m = meanHeads("p", p);
  close(m.data[0], (p.data[0] + p.data[3 * 5]) / 2);
});

// Two frames, guidance (uncond rows first), 2 heads, latent 4x4, layers at levels 0 (16 tokens) and 1 (4 tokens).
const F = 2, HEADS = 2, A = 3, D = 4, H = 4, W = 4;

/** One branch probe of a layer with T tokens: queries from `seed`, keys = `audio` (per frame A x D). */
function audioProbe(T: number, seed: number, audio: Float32Array, mask: F32Tensor): AudioLayerProbe {
  const rows = 2 * F;
  // Keys per row: uncond rows see zero audio, cond row f sees frame f's tokens; the same for every head.
  const k = new Float32Array(rows * HEADS * A * D);
  for (let f = 0; f < F; f++) {
    for (let h = 0; h < HEADS; h++) {
      k.set(audio.subarray(f * A * D, (f + 1) * A * D), ((F + f) * HEADS + h) * A * D);
    }
  }
  const q = lcg(rows * HEADS * T * D, seed).map((v) => 3 * v);
  return { probs: softmaxAttention(q, k, { rows, heads: HEADS, queries: T, keys: A, dim: D }), mask };
}

const ones = (T: number) => f32([1, T], new Float32Array(T).fill(1));

function layers(audio: Float32Array, mask: (T: number) => F32Tensor): AudioLayerProbe[] {
  // Two layers x two steps.
  return [
    audioProbe(16, 1, audio, mask(16)),
    audioProbe(4, 2, audio, mask(4)),
    audioProbe(16, 3, audio, mask(16)),
    audioProbe(4, 4, audio, mask(4)),
  ];
}

Deno.test("audio -> pixels: identical audio tokens give uniform attribution w*m/A", () => {
  const token = lcg(D, 9);
  const same = new Float32Array(F * A * D);
  for (let i = 0; i < F * A; i++) same.set(token, i * D);
  const r = audioAttribution(layers(same, ones), { frames: F, height: H, width: W, weight: 0.5 });
  assert.deepEqual(r.maps.shape, [F, A, H, W]);
  for (const v of r.maps.data) close(v, 0.5 / A);
  for (const v of r.tokenShare.data) close(v, 0.5 / A);
  for (const t of r.total) close(t, 0.5);
  // Distinct tokens are not uniform: the test can fail.
  const r2 = audioAttribution(layers(lcg(F * A * D, 5).map((v) => 4 * v), ones), {
    frames: F,
    height: H,
    width: W,
  });
  assert.ok(Math.max(...r2.maps.data) - Math.min(...r2.maps.data) > 0.05);
});

Deno.test("audio -> pixels: a zero lip mask gives zero lip-branch contribution; a half mask zeroes its half", () => {
  const audio = lcg(F * A * D, 5).map((v) => 4 * v);
  const zero = audioAttribution(layers(audio, (T) => f32([1, T])), { frames: F, height: H, width: W });
  assert.ok(zero.maps.data.every((v) => v === 0));
  assert.deepEqual(zero.total, [0, 0]);
  // Mask of the top half of each level grid: the bottom half of the latent gets nothing, the top keeps mass.
  const top = (T: number) => f32([1, T], Float32Array.from({ length: T }, (_, i) => (i < T / 2 ? 1 : 0)));
  const half = audioAttribution(layers(audio, top), { frames: F, height: H, width: W });
  for (let f = 0; f < F; f++) {
    let sumTop = 0;
    for (let a = 0; a < A; a++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const v = half.maps.data[((f * A + a) * H + y) * W + x];
          if (y >= H / 2) assert.equal(v, 0);
          else sumTop += v;
        }
      }
    }
    // Per top pixel the token masses sum to 1.
    close(sumTop, (H / 2) * W, 1e-5);
    close(half.total[f], 0.5, 1e-6);
  }
});

Deno.test("audio -> pixels: swapping the audio of two clips swaps their attributions", () => {
  const a1 = lcg(F * A * D, 11).map((v) => 4 * v), a2 = lcg(F * A * D, 12).map((v) => 4 * v);
  const o = { frames: F, height: H, width: W };
  const clip1 = audioAttribution(layers(a1, ones), o), clip2 = audioAttribution(layers(a2, ones), o);
  assert.notDeepEqual(clip1.maps.data, clip2.maps.data);
  const swapped1 = audioAttribution(layers(a2, ones), o), swapped2 = audioAttribution(layers(a1, ones), o);
  assert.deepEqual(swapped1.maps.data, clip2.maps.data);
  assert.deepEqual(swapped2.maps.data, clip1.maps.data);
  assert.equal(
    audioBranchSite("down_blocks.0.audio_modules.0.transformer_blocks.0", "lip"),
    "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2.probs",
  );
});

Deno.test("reference -> identity: bank keys equal to the own keys take exactly half the mass", () => {
  const T = 4, d = 4;
  const own = lcg(F * T * d, 3);
  const k = new Float32Array(F * 2 * T * d);
  for (let f = 0; f < F; f++) {
    k.set(own.subarray(f * T * d, (f + 1) * T * d), f * 2 * T * d);
    k.set(own.subarray(f * T * d, (f + 1) * T * d), (f * 2 + 1) * T * d);
  }
  const p = softmaxAttention(lcg(F * T * d, 4), k, { rows: F, heads: 1, queries: T, keys: 2 * T, dim: d });
  const s = bankShare("attn1", p);
  for (const v of s.share.data) close(v, 0.5);
  close(s.mean, 0.5);
});

Deno.test("reference -> identity: share, received and drift on hand-made probabilities", () => {
  // One frame, T = 2: keys own0, own1, ref0, ref1.
  const p = f32([1, 2, 4], Float32Array.from([0.5, 0, 0.5, 0, 0, 0.25, 0, 0.75]));
  const s = bankShare("attn1", p);
  assert.deepEqual([...s.share.data], [0.5, 0.75]);
  assert.deepEqual([...s.received.data], [0.25, 0.375]);
  assert.equal(s.mean, 0.625);
  assert.throws(
    () => bankShare("x", f32([1, 2, 3], Float32Array.from([1, 0, 0, 1, 0, 0]))),
    /3 keys, expected 2 x 2/,
  );
  const series = bankShareSeries([{ layer: "l", step: 0, probs: p }]);
  assert.deepEqual(series, [{ layer: "l", step: 0, mean: 0.625 }]);
  const drift = identityDrift([[{ mean: 0.5 }, { mean: 0.7 }], [{ mean: 0.5 }], [{ mean: 0.4 }]]);
  assert.deepEqual(drift.perClip, [0.6, 0.5, 0.4]);
  close(drift.slope, -0.1, 1e-12);
  close(drift.change, -0.2, 1e-12);
});

Deno.test("time: motion attention matrix and motion-frame share over the cond locations", () => {
  // M = 1 motion frame + F = 2 frames; 2 locations; uncond rows (first two) put all mass on frame 2.
  const u = [0, 0, 1, 0, 0, 1, 0, 0, 1];
  const c0 = [1, 0, 0, 0.5, 0.5, 0, 0.25, 0.25, 0.5];
  const c1 = [1, 0, 0, 0.5, 0, 0.5, 0, 0, 1];
  const p = f32([4, 3, 3], Float32Array.from([...u, ...u, ...c0, ...c1]));
  const m = motionAttention("motion", p, 2, 1);
  assert.deepEqual([...m.matrix.data], [1, 0, 0, 0.5, 0.25, 0.25, 0.125, 0.125, 0.75]);
  assert.deepEqual(m.motionShare, [0.5, 0.125]);
  assert.deepEqual(seamAttention([0.5, 0.125, 0.1], 1), { first: 0.5, rest: 0.1125 });
});

Deno.test("time: the seam measure compares the jump into a clip with the change inside it", () => {
  const video = (values: number[]): F32Tensor => {
    const P = 4, C = 3, Fr = values.length;
    const d = new Float32Array(C * Fr * P);
    for (let c = 0; c < C; c++) {
      for (let f = 0; f < Fr; f++) d.fill(values[f], (c * Fr + f) * P, (c * Fr + f + 1) * P);
    }
    return f32([1, C, Fr, 2, 2], d);
  };
  const s = seamMeasure(video([0, 0]), video([1, 1.5, 2]));
  assert.deepEqual(s, { seam: 1, within: 0.5, ratio: 2 });
});
