/**
 * VAE graphs + stages: parity with upstream AutoencoderKL, the deprecated attention key names giving the
 * same network, the pipeline's scaling and per-frame decode, and clear errors on bad configs and inputs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { GraphBuildError, type WeightSource } from "../src/onnx/graph.ts";
import { buildVaeDecoder, buildVaeEncoder, parseVaeConfig } from "../src/models/vae.ts";
import { vaeCase } from "../src/parity/cases/vae.ts";
import { Session } from "../src/runtime/session.ts";
import { NetworkStageError } from "../src/stages/networks/load.ts";
import {
  decodeLatents,
  encodeImages,
  loadVae,
  VAE_SCALING_FACTOR,
  vaeDecode,
  vaeEncode,
} from "../src/stages/networks/vae.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";
import { WeightStore } from "../src/weights/store.ts";
import { referenceCase, tinyModel } from "./helpers/shared.ts";
import { assertCaseOutputs } from "./helpers/parity.ts";
import { relL2 } from "./helpers/tensors.ts";
import { testWithEnv } from "./helpers/env.ts";

/** The tiny sd-vae-ft-mse folder (a clear error when tests/reference lacks it). */
const vaeDir = () => tinyModel("sd-vae-ft-mse");

// Compiled graphs must not land in a user cache during tests.
const test = testWithEnv({ HALLO_GRAPH_CACHE: "off" });

test({
  name: "vae parity case: latent mean, clamped logvar and decoded sample within 1e-4 of upstream",
  fn: () => assertCaseOutputs(vaeCase, referenceCase("vae")),
});

/** The tiny store with the mid-block attention keys spelled as diffusers' deprecated AttentionBlock did. */
function oldNameSource(store: WeightStore): WeightSource & { keys: string[] } {
  const rename: [string, string][] = [
    ["to_q", "query"],
    ["to_k", "key"],
    ["to_v", "value"],
    ["to_out.0", "proj_attn"],
  ];
  const map = new Map<string, string>();
  for (const k of store.keys()) {
    let old = k;
    for (const [n, o] of rename) old = old.replace(`.attentions.0.${n}.`, `.attentions.0.${o}.`);
    map.set(old, k);
  }
  return {
    keys: [...map.keys()],
    has: (k) => map.has(k),
    get: (k) => store.get(map.get(k) ?? k),
  };
}

test({
  name: "vae graphs over old attention names (query/key/value/proj_attn) bind them and compute the same",
  async fn() {
    const { tensors } = referenceCase("vae");
    const folder = vaeDir();
    const cfg = parseVaeConfig(JSON.parse(Deno.readTextFileSync(join(folder, "config.json"))));
    const file = join(folder, "diffusion_pytorch_model.safetensors");
    const store = WeightStore.open(file);
    const old = oldNameSource(store);
    assert.ok(old.keys.includes("encoder.mid_block.attentions.0.proj_attn.weight"));
    const run = async (
      src: WeightSource,
      build: typeof buildVaeEncoder,
      feeds: Record<string, F32Tensor>,
    ) => {
      const g = build(src, cfg);
      const s = await Session.create(g.encode(folder), folder, { threads: 1 });
      try {
        return { keys: g.boundKeys().map((b) => b.key), out: await s.run(feeds) };
      } finally {
        await s.release();
      }
    };
    const x = tensors.get("x")!, z = tensors.get("z")!;
    const encOld = await run(old, buildVaeEncoder, { x });
    const encNew = await run(store, buildVaeEncoder, { x });
    assert.ok(encOld.keys.includes("encoder.mid_block.attentions.0.query.weight"));
    assert.ok(!encOld.keys.some((k) => k.includes(".to_q.") || k.includes(".to_out.")));
    assert.equal(encOld.keys.length, encNew.keys.length);
    assert.deepEqual(encOld.out.mean.data, encNew.out.mean.data);
    const decOld = await run(old, buildVaeDecoder, { z });
    const decNew = await run(store, buildVaeDecoder, { z });
    assert.ok(decOld.keys.includes("decoder.mid_block.attentions.0.value.bias"));
    assert.deepEqual(decOld.out.sample.data, decNew.out.sample.data);
  },
});

test({
  name: "vae stages: encodeImages scales the mean by 0.18215; decodeLatents is per-frame decode of /0.18215",
  async fn() {
    const { tensors } = referenceCase("vae");
    const vae = await loadVae(vaeDir(), { threads: 1, attention: "plain" });
    try {
      assert.deepEqual(vae.unusedKeys, []);
      const x = tensors.get("x")!;
      const mean = tensors.get("latent_mean")!;
      const scaled = await encodeImages(vae, x);
      const s = Math.fround(VAE_SCALING_FACTOR);
      assert.ok(relL2(scaled.data, mean.data.map((v) => v * s)) <= 1e-4);

      // Reference z (2,4,h,w) as two frames of one clip (1,4,2,h,w), pre-multiplied by the scaling factor.
      const z = tensors.get("z")!;
      const [n, c, h, w] = z.shape;
      const lat = new Float32Array(z.data.length);
      for (let fi = 0; fi < n; fi++) {
        for (let ci = 0; ci < c; ci++) {
          for (let i = 0; i < h * w; i++) {
            lat[(ci * n + fi) * h * w + i] = z.data[(fi * c + ci) * h * w + i] * VAE_SCALING_FACTOR;
          }
        }
      }
      const seen: number[] = [];
      const video = await decodeLatents(vae, f32([1, c, n, h, w], lat), { onFrame: (i) => seen.push(i) });
      assert.deepEqual(seen, [0, 1]);
      const dec = tensors.get("decoded")!;
      const [, oc, H, W] = dec.shape;
      assert.deepEqual(video.shape, [1, oc, n, H, W]);
      const want = new Float32Array(dec.data.length);
      for (let fi = 0; fi < n; fi++) {
        for (let ci = 0; ci < oc; ci++) {
          for (let i = 0; i < H * W; i++) {
            const v = dec.data[(fi * oc + ci) * H * W + i] / 2 + 0.5;
            want[(ci * n + fi) * H * W + i] = Math.min(1, Math.max(0, v));
          }
        }
      }
      assert.ok(want.some((v) => v === 0 || v === 1), "the reference should exercise the clamp");
      assert.ok(relL2(video.data, want) <= 1e-4);
      assert.ok(video.data.every((v) => v >= 0 && v <= 1));

      await assert.rejects(() => vaeEncode(vae, f32([1, 4, 8, 8])), NetworkStageError);
      await assert.rejects(() => vaeDecode(vae, f32([1, 3, 8, 8])), NetworkStageError);
      await assert.rejects(() => decodeLatents(vae, f32([1, 4, 8, 8])), /expected float32/);
    } finally {
      await vae.release();
    }
  },
});

test("vae config errors name the file and the field", async () => {
  assert.throws(() => parseVaeConfig([], "a/config.json"), /a\/config\.json: not a JSON object/);
  assert.throws(
    () => parseVaeConfig({ block_out_channels: [16, 24], norm_num_groups: 16 }, "c.json"),
    (e: Error) => e instanceof GraphBuildError && /c\.json: norm_num_groups 16/.test(e.message),
  );
  assert.throws(
    () => parseVaeConfig({ block_out_channels: [16], down_block_types: ["CrossAttnDownBlock2D"] }, "c.json"),
    /only DownEncoderBlock2D/,
  );
  assert.throws(
    () => parseVaeConfig({ block_out_channels: [32], latent_channels: 0 }, "c.json"),
    /latent_channels/,
  );
  const cfg = parseVaeConfig({ block_out_channels: [32, 64] });
  assert.equal(cfg.normNumGroups, 32);
  assert.equal(cfg.layersPerBlock, 1);
  assert.equal(cfg.midBlockAddAttention, true);
  await assert.rejects(() => loadVae("/nonexistent/vae"), /\/nonexistent\/vae\/config\.json: cannot read/);
});

test({
  name: "vae graph over a checkpoint whose shapes disagree with the config fails naming the key",
  fn() {
    const store = WeightStore.open(join(vaeDir(), "diffusion_pytorch_model.safetensors"));
    const cfg = parseVaeConfig({ block_out_channels: [16, 16, 32, 64], norm_num_groups: 8 });
    assert.throws(
      () => buildVaeEncoder(store, cfg),
      /'encoder\.down_blocks\.3\.resnets\.0\.conv1\.weight' in .* has shape \[32,32,3,3\], the network expects \[64,32,3,3\]/,
    );
  },
});
