/**
 * Interventions as data: applying one is pure, patching with the same tensor changes nothing (bit for bit),
 * each kind rewrites exactly the cond rows / bank rows / masks it names, and the JSON form round-trips.
 */
import assert from "node:assert/strict";
import {
  appliesAt,
  applyIntervention,
  applyInterventions,
  type Conditioning,
  type Intervention,
} from "../src/stages/inspect/interventions.ts";
import { parseIntervention, parseInterventions } from "../src/stages/inspect/interventions_json.ts";
import type { NoiseInputs } from "../src/stages/networks/unets.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";
import { lcg } from "./helpers/attention.ts";

// The UNet call's inputs are a Conditioning as they are: the wiring passes NoiseInputs straight through.
const _fits: (x: NoiseInputs) => Conditioning = (x) => x;

const F = 3, A = 2, D = 2, M = 2, L = 2, C = 2;
const LAYERS = [
  "down_blocks.0.attentions.0.transformer_blocks.0",
  "up_blocks.1.attentions.0.transformer_blocks.0",
];

function conditioning(seed: number): Conditioning {
  const audio = new Float32Array(2 * F * A * D);
  audio.set(lcg(F * A * D, seed), F * A * D); // uncond half stays zero
  return {
    encoderHiddenStates: f32([2, 2, 3], lcg(12, seed + 1)),
    audioEmbedding: f32([2, F, A, D], audio),
    fullMask: [f32([F, 4], lcg(12, seed + 2)), f32([F, 1], lcg(3, seed + 3))],
    faceMask: [f32([F, 4], lcg(12, seed + 4)), f32([F, 1], lcg(3, seed + 5))],
    lipMask: [f32([F, 4], lcg(12, seed + 6)), f32([F, 1], lcg(3, seed + 7))],
    bank: LAYERS.map((path, i) => ({
      path,
      data: f32([2 * (1 + M), L, C], lcg(2 * (1 + M) * L * C, seed + 8 + i)),
    })),
  };
}

const bytes = (t: F32Tensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
const cond = (t: F32Tensor) => f32([1, ...t.shape.slice(1)], t.data.slice(t.data.length / 2));
const snapshot = (x: Conditioning) => structuredClone(x);

Deno.test("interventions: patching with the same tensor changes nothing, bit for bit, and writes no input", () => {
  const x = conditioning(1);
  const before = snapshot(x);
  const same: [Intervention, Parameters<typeof applyIntervention>[2]][] = [
    [{ kind: "audio-clip", clip: 0 }, { audio: cond(x.audioEmbedding) }],
    [{ kind: "bank-image", image: "ref.png" }, { bank: x.bank }],
    [{ kind: "motion-frames-clip", clip: 0, layers: [LAYERS[1]] }, { bank: x.bank }],
    [{ kind: "face-embedding-image", image: "ref.png" }, { faceEmbedding: cond(x.encoderHiddenStates) }],
    [{ kind: "audio-shift", by: 0 }, {}],
  ];
  for (const [iv, src] of same) {
    const y = applyIntervention(iv, x, src);
    assert.deepEqual(bytes(y.audioEmbedding), bytes(x.audioEmbedding), iv.kind);
    assert.deepEqual(bytes(y.encoderHiddenStates), bytes(x.encoderHiddenStates), iv.kind);
    y.bank.forEach((e, i) => assert.deepEqual(bytes(e.data), bytes(x.bank[i].data), iv.kind));
  }
  assert.deepEqual(x, before);
});

Deno.test("interventions: audio silence, shift and another clip's audio change the cond half only", () => {
  const x = conditioning(2);
  const half = F * A * D, per = A * D;
  const silent = applyIntervention({ kind: "audio-silence", windows: [1] }, x);
  const shifted = applyIntervention({ kind: "audio-shift", by: 1 }, x);
  const other = conditioning(3);
  const swapped = applyIntervention({ kind: "audio-clip", clip: 1 }, x, {
    audio: cond(other.audioEmbedding),
  });
  const a = x.audioEmbedding.data;
  for (let i = 0; i < half; i++) {
    assert.equal(silent.audioEmbedding.data[i], 0); // uncond stays zero
    const f = Math.floor(i / per);
    assert.equal(silent.audioEmbedding.data[half + i], f === 1 ? 0 : a[half + i]);
    assert.equal(shifted.audioEmbedding.data[half + i], a[half + Math.max(0, f - 1) * per + (i % per)]);
    assert.equal(swapped.audioEmbedding.data[half + i], other.audioEmbedding.data[half + i]);
  }
  assert.throws(() => applyIntervention({ kind: "audio-clip", clip: 1 }, x), /source audio was not given/);
});

Deno.test("interventions: bank and motion-frame rows are replaced in the named layers only", () => {
  const x = conditioning(4);
  const row = L * C, per = 1 + M;
  const zero = applyIntervention({ kind: "bank-zero", layers: [LAYERS[0]] }, x);
  assert.equal(zero.bank[1], x.bank[1]); // untouched layer: the same entry
  const motion = applyIntervention({ kind: "motion-frames-zero" }, x);
  const other = conditioning(5);
  const image = applyIntervention({ kind: "bank-image", image: "other.png" }, x, { bank: other.bank });
  for (let b = 0; b < 2; b++) {
    for (let s = 0; s < per; s++) {
      for (let j = 0; j < row; j++) {
        const at = (b * per + s) * row + j;
        const orig = x.bank[0].data.data[at];
        assert.equal(zero.bank[0].data.data[at], s === 0 ? 0 : orig);
        assert.equal(motion.bank[0].data.data[at], s === 0 ? orig : 0);
        assert.equal(image.bank[0].data.data[at], s === 0 ? other.bank[0].data.data[at] : orig);
      }
    }
  }
  assert.throws(
    () => applyIntervention({ kind: "bank-zero", layers: ["mid_block.x"] }, x),
    /no bank layer mid_block\.x/,
  );
});

Deno.test("interventions: face embedding to uncond, masks filled, steps honoured", () => {
  const x = conditioning(6);
  const e = applyIntervention({ kind: "face-embedding-uncond" }, x).encoderHiddenStates.data;
  assert.deepEqual(e.slice(6), e.slice(0, 6));
  assert.deepEqual(e.slice(0, 6), x.encoderHiddenStates.data.slice(0, 6));
  const m = applyIntervention({ kind: "mask", region: "lip", fill: 0 }, x);
  assert.ok(m.lipMask.every((t) => t.data.every((v) => v === 0)));
  assert.equal(m.faceMask, x.faceMask);
  const list = [{ intervention: { kind: "mask", region: "lip", fill: 0, steps: [2] } as Intervention }];
  assert.equal(applyInterventions(list, x, 1), x);
  assert.ok(applyInterventions(list, x, 2).lipMask[0].data.every((v) => v === 0));
  assert.ok(appliesAt({ kind: "bank-zero" }, 7));
});

Deno.test("interventions: the JSON form round-trips and bad records are named", () => {
  const list: Intervention[] = [
    { kind: "audio-clip", clip: 2, steps: [0, 1] },
    { kind: "audio-silence", windows: [3] },
    { kind: "audio-shift", by: -2 },
    { kind: "bank-image", image: "b.png", layers: [LAYERS[0]] },
    { kind: "bank-zero" },
    { kind: "motion-frames-clip", clip: 0 },
    { kind: "motion-frames-zero", steps: [4] },
    { kind: "face-embedding-image", image: "c.png" },
    { kind: "face-embedding-uncond" },
    { kind: "mask", region: "face", fill: 1 },
  ];
  assert.deepEqual(parseInterventions(JSON.parse(JSON.stringify(list)), "run.json"), list);
  assert.throws(
    () => parseIntervention({ kind: "paint" }, "run.json"),
    /run\.json: unknown intervention kind "paint"/,
  );
  assert.throws(() => parseIntervention({ kind: "audio-shift" }, "r"), /audio-shift needs 'by'/);
  assert.throws(() => parseIntervention({ kind: "mask", region: "ear", fill: 0 }, "r"), /full, face or lip/);
  assert.throws(
    () => parseIntervention({ kind: "bank-zero", clip: 1 }, "r"),
    /bank-zero has no field 'clip'/,
  );
  assert.throws(() => parseIntervention({ kind: "bank-zero", steps: [-1] }, "r"), /steps/);
});
