/**
 * The inspect figures: each measure's description carries its numbers in the summary and is drawn the same
 * by both renderings (Plotly and PNG).
 */
import assert from "node:assert/strict";
import {
  describeAudioAttribution,
  describeBankReads,
  describeGuidanceRegions,
  describeIdentityDrift,
  describeMotionAttention,
  describeOcclusion,
  describeSeams,
} from "../src/viz/inspect_figures.ts";
import { VizError } from "../src/viz/figure.ts";
import { audioAttribution } from "../src/stages/inspect/audio_attribution.ts";
import { bankShare, identityDrift } from "../src/stages/inspect/identity.ts";
import { motionAttention } from "../src/stages/inspect/temporal.ts";
import { f32 } from "../src/tensor.ts";
import { assertRenderersAgree } from "./helpers/figure_agreement.ts";
import { lcg, softmaxAttention } from "./helpers/attention.ts";

Deno.test("inspect figures: audio attribution, drift, motion, guidance and occlusion draw alike in both renderings", async () => {
  const probs = softmaxAttention(lcg(2 * 16 * 4, 1).map((v) => 3 * v), lcg(2 * 2 * 4, 2).map((v) => 3 * v), {
    rows: 2,
    heads: 1,
    queries: 16,
    keys: 2,
    dim: 4,
  });
  const audio = audioAttribution([{ probs, mask: f32([1, 16], new Float32Array(16).fill(1)) }], {
    frames: 2,
    height: 4,
    width: 4,
  });
  const a = describeAudioAttribution(audio, "lip", {
    portrait: f32([3, 8, 8], lcg(192, 3)),
  });
  assert.equal(a.rows.length, 2);
  assert.deepEqual(a.summary?.totalPerFrame, [1, 1]);
  const motion = motionAttention("m", f32([1, 2, 2], Float32Array.from([0.75, 0.25, 0.5, 0.5])), 1, 1);
  const figures = [
    a,
    describeIdentityDrift(identityDrift([[{ mean: 0.5 }], [{ mean: 0.25 }]])),
    describeMotionAttention(motion, { seam: 1, within: 0.5, ratio: 2 }),
    describeGuidanceRegions([0, 1].flatMap((step) =>
      ["lip", "face"].map((region) => ({
        step,
        region,
        condDelta: step + 1,
        update: 0.5,
        perFrame: { condDelta: [step + 1], update: [0.5] },
      }))
    )),
    describeOcclusion({
      windows: [0, 1],
      frames: 2,
      change: f32([2, 2], Float32Array.from([0.5, 0, 0, 0.25])),
    }),
  ];
  for (const spec of figures) await assertRenderersAgree(spec);
  assert.deepEqual(figures[2].summary, { motionShare: [0.5], seam: 1, within: 0.5, ratio: 2 });
  assert.equal(figures[4].summary?.ownFrameShare, 1);
});

Deno.test("drift per layer, reference pixels read and seams: the numbers drawn are the measures', in both renderings", async () => {
  // One frame, 4 query pixels on a 2x2 grid; keys: 4 own, then 4 reference. Every query puts 0.5 on its own
  // tokens and 0.5 on reference pixel 0, except query 3, which puts it on reference pixel 3.
  const P = new Float32Array(4 * 8);
  for (let q = 0; q < 4; q++) {
    P[q * 8 + q] = 0.5;
    P[q * 8 + 4 + (q === 3 ? 3 : 0)] = 0.5;
  }
  const share = bankShare("attn1", f32([1, 4, 8], P));
  const reads = describeBankReads([{ label: "clip 0", layers: [{ layer: "mid", share }] }], {
    portrait: f32([3, 8, 8], lcg(192, 4)),
  });
  // T x received: reference pixel 0 gets 3 x 0.5 / 4 of the mass, x 4 = 1.5; pixel 3 0.5; the mean is the share.
  const heat = reads.rows[0].panels[0]!.layers[1];
  assert.ok(heat.kind === "heatmap");
  assert.deepEqual(Array.from(heat.values), [1.5, 0, 0, 0.5]);
  assert.equal([heat.width, heat.height].join("x"), "2x2");
  assert.deepEqual(reads.summary, { "clip 0": { mid: { share: 0.5, peak: 1.5 } } });

  const drift = describeIdentityDrift(identityDrift([[{ mean: 0.5 }], [{ mean: 0.25 }]]), {
    layers: { a: [0.6, 0.3], b: [0.4, 0.2] },
  });
  const lines = drift.rows[0].panels[0]!.layers.map((l) => l.name);
  assert.deepEqual(lines, ["a", "b", "mean"]);
  assert.deepEqual(drift.summary?.layers, { a: [0.6, 0.3], b: [0.4, 0.2] });
  assert.throws(
    () => describeIdentityDrift(identityDrift([[{ mean: 1 }]]), { layers: { a: [1, 2] } }),
    VizError,
  );

  // Clips of 2 frames over 6 frames: t = 2 and 4 start clips (seams 3 and 5), the rest change by 1.
  const seams = describeSeams({
    framesPerClip: 2,
    difference: [1, 3, 1, 5, 1],
    motionShare: [0.5, 0.25, 0.75, 0.25, 0.5, 0.25],
  });
  assert.deepEqual(seams.summary, { seams: [3, 5], seam: 4, within: 1, ratio: 4 });
  const bars = seams.rows[0].panels[0]!.layers.flatMap((l) => l.kind === "bars" ? [Array.from(l.x)] : []);
  assert.deepEqual(bars, [[1, 3, 5], [2, 4]]);
  assert.throws(() => describeSeams({ framesPerClip: 2, difference: [1, 2], motionShare: [1] }), VizError);

  for (const spec of [reads, drift, seams]) await assertRenderersAgree(spec);
});
