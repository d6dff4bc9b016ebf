/**
 * ImageProjModel, AudioProjModel and FaceLocator: parity with upstream, the face locator's single-image path,
 * the full-size key sets of net.pth (shape-only) and clear errors on bad configs, checkpoints and inputs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AUDIO_PROJ_CONFIG, buildAudioProj } from "../src/models/audio_proj.ts";
import { buildFaceLocator, FACE_LOCATOR_CONFIG } from "../src/models/face_locator.ts";
import { buildImageProj, IMAGE_PROJ_CONFIG } from "../src/models/image_proj.ts";
import { GraphBuildError, type WeightSource } from "../src/onnx/graph.ts";
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
import { f32, type F32Tensor } from "../src/tensor.ts";
import { openCheckpoint } from "../src/weights/checkpoint.ts";
import { loadTensorF32 } from "../src/weights/convert.ts";
import { WeightStore } from "../src/weights/store.ts";
import type { StorageDType, TensorRef } from "../src/weights/types.ts";

const REF = "/work/shared/reference";
const NET = join(REF, "tiny_models", "hallo", "net.pth");
const FULL_KEYS = join(REF, "full_keys.json");
const exists = (p: string) => {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
};
const haveRef = exists(NET) && exists(join(REF, "face_locator.safetensors"));

// Compiled graphs must not land in a user cache during tests.
Deno.env.set("HALLO_GRAPH_CACHE", "off");

function relL2(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function reference(name: string): { meta: Record<string, unknown>; tensors: Map<string, F32Tensor> } {
  const tensors = new Map<string, F32Tensor>();
  for (const [k, r] of openCheckpoint(join(REF, `${name}.safetensors`)).tensors) {
    tensors.set(k, loadTensorF32(r));
  }
  return { meta: JSON.parse(Deno.readTextFileSync(join(REF, `${name}.json`))), tensors };
}

for (const c of [imageProjCase, audioProjCase, faceLocatorCase] as ParityCase[]) {
  Deno.test({
    name: `${c.name} parity case: every output within 1e-4 of upstream`,
    ignore: !haveRef,
    async fn() {
      const { meta, tensors } = reference(c.name);
      const index = JSON.parse(Deno.readTextFileSync(join(REF, "index.json")));
      const res = await c.run({ dir: REF, index, meta, tensors });
      const roles = meta.tensors as Record<string, { role: string }>;
      const outputs = Object.keys(roles).filter((k) => roles[k].role === "output").sort();
      assert.deepEqual(Object.keys(res.outputs).sort(), outputs);
      for (const name of outputs) {
        const got = res.outputs[name] as F32Tensor;
        const ref = tensors.get(name)!;
        assert.deepEqual(got.shape, ref.shape, name);
        const err = relL2(got.data, ref.data);
        assert.ok(err <= c.tolerance, `${name}: relative L2 ${err}`);
      }
    },
  });
}

Deno.test({
  name: "locateFace on the single face-region image, repeated over f frames, equals upstream on the video",
  ignore: !haveRef,
  async fn() {
    const { meta, tensors } = reference("face_locator");
    const video = tensors.get("face_mask_video")!;
    const [b, c, f, H, W] = video.shape;
    assert.equal(b, 1);
    // The reference video is one mask repeated: take frame 0 as the image.
    const image = new Float32Array(c * H * W);
    for (let ci = 0; ci < c; ci++) {
      image.set(video.data.subarray((ci * f) * H * W, (ci * f + 1) * H * W), ci * H * W);
    }
    const model = await loadFaceLocator(NET, { config: meta.config as never, threads: 1 });
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

Deno.test({
  name: "projection stages check their inputs and the checkpoint they are given",
  ignore: !haveRef,
  async fn() {
    const index = JSON.parse(Deno.readTextFileSync(join(REF, "index.json")));
    const configs = index.common.configs;
    const store = WeightStore.open(NET);
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
    const vaeFile = join(REF, "tiny_models", "sd-vae-ft-mse", "diffusion_pytorch_model.safetensors");
    await assert.rejects(() => loadImageProj(vaeFile), /no 'imageproj\.\*' tensors/);
    // The full-size default config over the tiny checkpoint: a shape error naming the key.
    await assert.rejects(
      () => loadAudioProj(NET),
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

interface KeyEntry {
  name: string;
  shape: number[];
}

/** A weight source over full_keys.json entries pointing at a dummy file: enough for a graph build. */
function fakeSource(keys: readonly KeyEntry[]): WeightSource {
  const refs = new Map<string, TensorRef>(keys.map((k) => [k.name, {
    name: k.name,
    file: "/nonexistent/hallo/net.pth",
    offset: 0,
    length: 4 * k.shape.reduce((a, b) => a * b, 1),
    dtype: "F32" as StorageDType,
    shape: k.shape,
  }]));
  return { has: (k) => refs.has(k), get: (k) => refs.get(k)! };
}

Deno.test({
  name: "full-size ImageProj, AudioProj and FaceLocator bind exactly their net.pth keys with their shapes",
  ignore: !exists(FULL_KEYS),
  fn() {
    const full = JSON.parse(Deno.readTextFileSync(FULL_KEYS));
    const keys: KeyEntry[] = full.files["hallo/net.pth"].keys;
    const src = fakeSource(keys);
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
