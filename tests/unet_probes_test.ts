/**
 * Probes on the denoising UNet: tapping an audio cross-attention and a reference self-attention returns
 * probabilities of the right shape that sum to 1 over keys, and the main output is bit-identical with and
 * without probes.
 */
import assert from "node:assert/strict";
import type { HalloUNetKwargs } from "../src/models/unet_config.ts";
import {
  type Bank,
  loadDenoisingUNet,
  type NoiseInputs,
  predictNoise,
} from "../src/stages/networks/unets.ts";
import type { F32Tensor } from "../src/tensor.ts";
import { readCase, readIndex } from "../src/parity/reference.ts";
import { REFERENCE, shared, tinyModel } from "./helpers/shared.ts";

Deno.env.set("HALLO_GRAPH_CACHE", "off");

Deno.test("UNet probes: shapes, rows sum to 1, main output unchanged", async () => {
  shared("reference", "denoising_unet_read_cfg.json");
  const index = readIndex(REFERENCE);
  const input = readCase(REFERENCE, index, "denoising_unet_read_cfg");
  const t = (k: string) => input.tensors.get(k) as F32Tensor;
  const sample = t("sample");
  const [B, , F, h, w] = sample.shape;
  const shape = {
    batch: B,
    frames: F,
    height: h,
    width: w,
    contextTokens: t("encoder_hidden_states").shape[1],
    audioTokens: t("audio_embedding").shape[2],
    motionFrames: 2,
  };
  const src = {
    weightsDir: tinyModel(),
    kwargs: index.common?.configs?.unet_additional_kwargs as HalloUNetKwargs,
  };
  const self = "down_blocks.0.attentions.0.transformer_blocks.0.attn1";
  const audio = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2";
  const plain = await loadDenoisingUNet(src, shape, { threads: 1 });
  const probed = await loadDenoisingUNet(src, shape, {
    threads: 1,
    probes: { attention: { [self]: "mean", [audio]: "heads" } },
  });
  const bank: Bank = (input.meta.pairing as { i: number; reader: string }[]).map((p) => ({
    path: p.reader,
    data: t(`bank_read.${String(p.i).padStart(2, "0")}`),
  }));
  const pyramid = (k: string) => [0, 1, 2, 3].map((l) => t(`${k}_mask.${l}`));
  const ms = t("motion_scale").data;
  const x: NoiseInputs = {
    sample,
    timestep: t("timestep").data[0],
    encoderHiddenStates: t("encoder_hidden_states"),
    audioEmbedding: t("audio_embedding"),
    maskCondFea: t("mask_cond_fea"),
    fullMask: pyramid("full"),
    faceMask: pyramid("face"),
    lipMask: pyramid("lip"),
    motionScale: [ms[0], ms[1], ms[2]],
    bank,
  };
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
