/**
 * Probes on the denoising UNet: tapping an audio cross-attention and a reference self-attention returns
 * probabilities of the right shape that sum to 1 over keys, and the main output is bit-identical with and
 * without probes.
 */
import assert from "node:assert/strict";
import { loadDenoisingUNet, predictNoise } from "../src/stages/networks/unets.ts";
import type { F32Tensor } from "../src/tensor.ts";
import { denoisingCase } from "./helpers/denoising_case.ts";
import { testWithEnv } from "./helpers/env.ts";

const test = testWithEnv({ HALLO_GRAPH_CACHE: "off" });

test("UNet probes: shapes, rows sum to 1, main output unchanged", async () => {
  const { src, shape, x } = denoisingCase();
  const { batch: B, frames: F, height: h, width: w } = shape;
  const self = "down_blocks.0.attentions.0.transformer_blocks.0.attn1";
  const audio = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2";
  const plain = await loadDenoisingUNet(src, shape, { threads: 1 });
  const probed = await loadDenoisingUNet(src, shape, {
    threads: 1,
    probes: { attention: { [self]: "mean", [audio]: "heads" } },
  });
  const a = await predictNoise(plain, x);
  const b = await predictNoise(probed, x);
  assert.deepEqual(b.noisePred.data, a.noisePred.data, "main output changed by probes");

  const tokens = h * w;
  // Reference self-attention (cond half): queries = own tokens, keys = own + reference tokens.
  const sp = b.probes[`${self}.probs`] as F32Tensor;
  assert.deepEqual(sp.shape, [F, tokens, 2 * tokens]);
  // Audio cross-attention: every frame's tokens attend to its audio tokens, per head.
  const ap = b.probes[`${audio}.probs`] as F32Tensor;
  const heads = 2;
  assert.deepEqual(ap.shape, [B * F, heads, tokens, shape.audioTokens]);
  for (const p of [sp, ap]) {
    const L = p.shape[p.shape.length - 1];
    for (let r = 0; r < p.data.length / L; r++) {
      let s = 0;
      for (let j = 0; j < L; j++) s += p.data[r * L + j];
      assert.ok(Math.abs(s - 1) < 1e-5, `row ${r} sums to ${s}`);
    }
  }
  await plain.session.release();
  await probed.session.release();
});
