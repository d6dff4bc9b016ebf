/**
 * The inspect figures: each measure's description carries its numbers in the summary and is drawn the same
 * by both renderings (Plotly and PNG).
 */
import assert from "node:assert/strict";
import {
  describeAudioAttribution,
  describeGuidanceRegions,
  describeIdentityDrift,
  describeMotionAttention,
  describeOcclusion,
} from "../src/viz/inspect_figures.ts";
import { audioAttribution } from "../src/stages/inspect/audio_attribution.ts";
import { identityDrift } from "../src/stages/inspect/identity.ts";
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
