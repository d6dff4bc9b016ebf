/**
 * The inspect pieces on the tiny denoising UNet's real probes: the measures take the probes as the UNet names
 * and shapes them, the cache records and spills them, and patching behaves as the acceptance asks: with lip
 * weight 0 the lip branch's patch changes nothing, and patching with the same tensor is bit-identical.
 */
import assert from "node:assert/strict";
import { loadDenoisingUNet, type NoiseInputs, predictNoise } from "../src/stages/networks/unets.ts";
import { audioAttribution } from "../src/stages/inspect/audio_attribution.ts";
import { bankShare } from "../src/stages/inspect/identity.ts";
import { motionAttention } from "../src/stages/inspect/temporal.ts";
import { ActivationCache } from "../src/stages/inspect/cache.ts";
import { applyIntervention } from "../src/stages/inspect/interventions.ts";
import type { F32Tensor } from "../src/tensor.ts";
import { denoisingCase } from "./helpers/denoising_case.ts";
import { testWithEnv } from "./helpers/env.ts";

const test = testWithEnv({ HALLO_GRAPH_CACHE: "off" });

const SELF = "down_blocks.0.attentions.0.transformer_blocks.0.attn1";
const LIP = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2";
const MOTION = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0";
const bytes = (t: F32Tensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

test("inspect on the tiny UNet: measures read real probes, the cache spills them, patches behave", async () => {
  const { src, shape, x } = denoisingCase();
  const model = await loadDenoisingUNet(src, shape, {
    threads: 1,
    probes: { attention: { [SELF]: "mean", [LIP]: "heads", [MOTION]: "heads" } },
  });
  const dir = await Deno.makeTempDir();
  try {
    const { frames: F, height: h, width: w } = shape;
    const T = h * w;
    const base = await predictNoise(model, x);
    const probe = (k: string) => base.probes[`${k}.probs`] as F32Tensor;

    // audio -> pixels: token masses sum to 1 per pixel, so a frame's total is w * mean(lip mask of its cond row).
    const lipW = x.motionScale[2];
    const audio = audioAttribution([{ probs: probe(LIP), mask: x.lipMask[0] }], {
      frames: F,
      height: h,
      width: w,
      weight: lipW,
    });
    const m = x.lipMask[0];
    for (let f = 0; f < F; f++) {
      const row = m.shape[0] === 1 ? 0 : m.shape[0] - F + f;
      let s = 0;
      for (let p = 0; p < T; p++) s += m.data[row * T + p];
      assert.ok(Math.abs(audio.total[f] - (lipW * s) / T) < 1e-5, `frame ${f}: ${audio.total[f]}`);
    }
    // reference -> identity: shares are fractions and the reference pixels' reads add up to the mean share.
    const bank = bankShare(SELF, probe(SELF));
    assert.ok(bank.share.data.every((v) => v >= 0 && v <= 1 + 1e-6) && bank.mean > 0);
    const received = bank.received.data.reduce((a, v) => a + v, 0) / F;
    assert.ok(Math.abs(received - bank.mean) < 1e-5);
    // time: a (M+F)^2 frame matrix over the cond locations, rows summing to 1.
    const motion = motionAttention(MOTION, probe(MOTION), T, shape.motionFrames);
    assert.equal(motion.frames, shape.motionFrames + F);
    for (let i = 0; i < motion.frames; i++) {
      const row = motion.matrix.data.subarray(i * motion.frames, (i + 1) * motion.frames);
      assert.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-5);
    }

    // The cache over two steps, spilling past a small limit, reads back bit for bit.
    const next = await predictNoise(model, { ...x, timestep: x.timestep - 100 });
    // Room for one motion probe and the lip site's float64 step-mean (heads averaged): the second step spills.
    const [rows, , q, keys] = probe(LIP).shape;
    const limit = probe(MOTION).data.byteLength + rows * q * keys * 8;
    const cache = new ActivationCache({
      sites: {
        [`${MOTION}.probs`]: { mean: [] },
        [`${LIP}.probs`]: { mean: ["heads", "steps"], headAxis: 1 },
      },
      maxBytes: limit,
      spillDir: dir,
    });
    assert.equal(cache.recordAll(0, base.probes), 2);
    assert.equal(cache.recordAll(1, next.probes), 2);
    assert.ok(cache.spillFiles.length >= 1 && cache.peakBytes <= limit, `${cache.peakBytes}`);
    assert.deepEqual(bytes(cache.get(`${MOTION}.probs`, 0)), bytes(probe(MOTION)));
    assert.deepEqual(
      bytes(cache.get(`${MOTION}.probs`, 1)),
      bytes(next.probes[`${MOTION}.probs`] as F32Tensor),
    );

    // Patching with the same tensor changes nothing.
    const same = await predictNoise(
      model,
      applyIntervention({ kind: "bank-image", image: "same" }, x, { bank: x.bank }),
    );
    assert.deepEqual(bytes(same.noisePred), bytes(base.noisePred));
    // Lip weight 0: zeroing the lip branch's mask changes nothing; with weight 1 it does (so this can fail).
    const withLip = (lip: number): NoiseInputs => ({
      ...x,
      motionScale: [x.motionScale[0], x.motionScale[1], lip],
    });
    const effect = async (lip: number) => {
      const a = await predictNoise(model, withLip(lip));
      const b = await predictNoise(
        model,
        applyIntervention({ kind: "mask", region: "lip", fill: 0 }, withLip(lip)),
      );
      return [bytes(a.noisePred), bytes(b.noisePred)];
    };
    const [a0, b0] = await effect(0);
    assert.deepEqual(b0, a0);
    const [a1, b1] = await effect(1);
    assert.notDeepEqual(b1, a1);
  } finally {
    await model.session.release();
    await Deno.remove(dir, { recursive: true });
  }
});
