/**
 * ImageProjModel, AudioProjModel and FaceLocator: parity with upstream, the face locator's single-image path,
 * the full-size key sets of net.pth (shape-only) and clear errors on bad configs, checkpoints and inputs.
 */
import assert from "node:assert/strict";
import { AUDIO_PROJ_CONFIG, buildAudioProj } from "../src/models/audio_proj.ts";
import { buildFaceLocator, FACE_LOCATOR_CONFIG } from "../src/models/face_locator.ts";
import { buildImageProj, IMAGE_PROJ_CONFIG } from "../src/models/image_proj.ts";
import { GraphBuildError } from "../src/onnx/graph.ts";
import type { ParityCase } from "../src/parity/types.ts";
import { audioProjCase } from "../src/parity/cases/audio_proj.ts";
import { faceLocatorCase } from "../src/parity/cases/face_locator.ts";
import { imageProjCase } from "../src/parity/cases/image_proj.ts";
import { loadFaceLocator, locateFace } from "../src/stages/networks/face_locator.ts";
import { NetworkStageError } from "../src/stages/networks/load.ts";
import {
  loadAudioProj,
  loadImageProj,
  projectAudio,
  projectFaceEmbedding,
} from "../src/stages/networks/projections.ts";
import { f32 } from "../src/tensor.ts";
import { WeightStore } from "../src/weights/store.ts";
import { fakeStore, fullKeys, referenceCase, shared, tinyModel } from "./helpers/shared.ts";
import { assertCaseOutputs } from "./helpers/parity.ts";
import { relL2 } from "./helpers/tensors.ts";
import { testWithEnv } from "./helpers/env.ts";

/** The tiny net.pth (a clear error when tests/reference lacks it). */
const tinyNet = () => tinyModel("hallo", "net.pth");

// Compiled graphs must not land in a user cache during tests.
const test = testWithEnv({ HALLO_GRAPH_CACHE: "off" });

for (const c of [imageProjCase, audioProjCase, faceLocatorCase] as ParityCase[]) {
  test({
    name: `${c.name} parity case: every output within 1e-4 of upstream`,
    fn: () => assertCaseOutputs(c, referenceCase(c.name)),
  });
}

test({
  name: "locateFace on the single face-region image, repeated over f frames, equals upstream on the video",
  async fn() {
    const { meta, tensors } = referenceCase("face_locator");
    const video = tensors.get("face_mask_video")!;
    const [b, c, f, H, W] = video.shape;
    assert.equal(b, 1);
    // The reference video is one mask repeated: take frame 0 as the image.
    const image = new Float32Array(c * H * W);
    for (let ci = 0; ci < c; ci++) {
      image.set(video.data.subarray((ci * f) * H * W, (ci * f + 1) * H * W), ci * H * W);
    }
    const model = await loadFaceLocator(tinyNet(), { config: meta.config as never, threads: 1 });
    try {
      const got = await locateFace(model, f32([c, H, W], image), { frames: f });
      const ref = tensors.get("mask_cond_fea")!;
      assert.deepEqual(got.shape, ref.shape);
      assert.ok(relL2(got.data, ref.data) <= 1e-4);
      await assert.rejects(() => locateFace(model, f32([c, H, W], image), { frames: 0 }), NetworkStageError);
      await assert.rejects(
        () => locateFace(model, f32([1, c + 1, f, H, W])),
        /expected float32 \(\*, 3, \*, \*, \*\)/,
      );
    } finally {
      await model.release();
    }
  },
});

test({
  name: "projection stages check their inputs and the checkpoint they are given",
  async fn() {
    const configs = JSON.parse(Deno.readTextFileSync(shared("reference", "index.json"))).common.configs;
    const net = tinyNet();
    const store = WeightStore.open(net);
    const ip = await loadImageProj(store, { config: configs.image_proj, threads: 1 });
    const ap = await loadAudioProj(store, { config: configs.audio_proj, threads: 1 });
    try {
      const d = configs.image_proj.clip_embeddings_dim;
      // A bare (d,) embedding is taken as a batch of one.
      const one = await projectFaceEmbedding(ip, f32([d], new Float32Array(d).fill(0.5)));
      assert.deepEqual(one.shape, [
        1,
        configs.image_proj.clip_extra_context_tokens,
        configs.image_proj.cross_attention_dim,
      ]);
      await assert.rejects(() => projectFaceEmbedding(ip, f32([1, d + 1])), NetworkStageError);
      const a = configs.audio_proj;
      const tokens = await projectAudio(ap, f32([2, 3, a.seq_len, a.blocks, a.channels]));
      assert.deepEqual(tokens.shape, [2, 3, a.context_tokens, a.output_dim]);
      await assert.rejects(
        () => projectAudio(ap, f32([1, 3, a.seq_len + 1, a.blocks, a.channels])),
        /audio windows/,
      );
    } finally {
      await ip.release();
      await ap.release();
    }
    const vaeFile = tinyModel("sd-vae-ft-mse", "diffusion_pytorch_model.safetensors");
    await assert.rejects(() => loadImageProj(vaeFile), /no 'imageproj\.\*' tensors/);
    // The full-size default config over the tiny checkpoint: a shape error naming the key.
    await assert.rejects(
      () => loadAudioProj(net),
      (e: Error) =>
        e instanceof GraphBuildError &&
        /'audioproj\.proj1\.weight'.*\[24,240\].*\[512,46080\]/.test(e.message),
    );
    assert.throws(
      () => buildImageProj(store, { ...configs.image_proj, clip_extra_context_tokens: 0 }),
      /clip_extra_context_tokens' must be a positive integer/,
    );
  },
});

test({
  name: "full-size ImageProj, AudioProj and FaceLocator bind exactly their net.pth keys with their shapes",
  fn() {
    const full = fullKeys();
    const keys = full.files["hallo/net.pth"].keys;
    const src = fakeStore(keys, "/nonexistent/hallo/net.pth");
    const graphs: [string, ReturnType<typeof buildImageProj>][] = [
      ["imageproj.", buildImageProj(src, { ...IMAGE_PROJ_CONFIG, ...full.configs.image_proj })],
      ["audioproj.", buildAudioProj(src, { ...AUDIO_PROJ_CONFIG, ...full.configs.audio_proj })],
      ["face_locator.", buildFaceLocator(src, { ...FACE_LOCATOR_CONFIG, ...full.configs.face_locator })],
    ];
    for (const [prefix, g] of graphs) {
      const expected = keys.filter((k) => k.name.startsWith(prefix));
      const bound = new Map(g.boundKeys().map((b) => [b.key, b.shape.join(",")]));
      assert.equal(bound.size, expected.length, prefix);
      for (const k of expected) assert.equal(bound.get(k.name), k.shape.join(","), k.name);
    }
    assert.deepEqual(graphs.map(([, g]) => g.boundKeys().length), [4, 8, 16]);
  },
});
