/**
 * wav2vec2 graph + stage: parity with upstream on the reference case, torch's align_corners interpolation,
 * fused vs plain attention, the weight-norm key variants, and clear errors on bad configs, folders and calls.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Graph } from "../src/onnx/graph.ts";
import { DataType } from "../src/onnx/proto.ts";
import {
  buildWav2Vec2,
  featureFrames,
  linearInterpolation,
  parseWav2Vec2Config,
  Wav2Vec2ConfigError,
} from "../src/models/wav2vec2.ts";
import { Session } from "../src/runtime/session.ts";
import { f32 } from "../src/tensor.ts";
import { loadWav2Vec, runWav2Vec, Wav2VecError, wav2vecFeatures } from "../src/stages/networks/wav2vec.ts";
import { wav2vecCase } from "../src/parity/cases/wav2vec.ts";
import { WeightStore } from "../src/weights/store.ts";
import type { TensorRef } from "../src/onnx/tensor_ref.ts";
import { referenceCase, tinyModel } from "./helpers/shared.ts";
import { relL2 } from "./helpers/tensors.ts";
import { testWithEnv } from "./helpers/env.ts";

/** The tiny wav2vec2 folder (a clear error when tests/reference lacks it). */
const tinyWav2Vec = () => tinyModel("wav2vec", "wav2vec2-base-960h");

// Compiled graphs must not land in a user cache during tests.
const test = testWithEnv({ HALLO_GRAPH_CACHE: "off" });

test({
  name: "wav2vec parity case: every hidden state, audio_emb and windows within 1e-4 of upstream",
  async fn() {
    const input = referenceCase("wav2vec");
    const { tensors } = input;
    const meta = input.meta as { tensors: Record<string, { role?: string }> };
    const res = await wav2vecCase.run(input);
    const compared: string[] = [];
    for (const [name, ref] of tensors) {
      if (meta.tensors[name]?.role === "input") continue;
      const out = res.outputs[name];
      assert.ok(out, `case returned no '${name}'`);
      const data = out instanceof Float32Array ? out : out.data;
      if (!(out instanceof Float32Array)) assert.deepEqual(out.shape, ref.shape, name);
      const err = relL2(data, ref.data);
      assert.ok(err <= wav2vecCase.tolerance, `${name}: relative L2 ${err}`);
      compared.push(name);
    }
    for (const must of ["hidden_states.0", "hidden_states.3", "audio_emb", "audio_windows"]) {
      assert.ok(compared.includes(must), must);
    }
  },
});

/** torch's CPU upsample_linear1d(align_corners=True) index/weight arithmetic, in float32. */
function torchLinearAlignCorners(x: Float32Array, T: number, C: number, L: number): Float32Array {
  const fr = Math.fround;
  const scale = L > 1 ? fr((T - 1) / (L - 1)) : 0;
  const out = new Float32Array(L * C);
  for (let i = 0; i < L; i++) {
    const src = fr(scale * i);
    const i0 = Math.min(Math.floor(src), T - 1);
    const i1 = i0 + (i0 < T - 1 ? 1 : 0);
    const w1 = Math.min(Math.max(fr(src - i0), 0), 1);
    const w0 = fr(1 - w1);
    for (let c = 0; c < C; c++) out[i * C + c] = fr(fr(x[i0 * C + c] * w0) + fr(x[i1 * C + c] * w1));
  }
  return out;
}

test("linear interpolation (align_corners) matches torch's arithmetic for down/up/identity/1-frame cases", async () => {
  const g = new Graph("interp");
  const c = { g, w: { has: () => false, get: (): TensorRef => assert.fail("no weights") }, prefix: "" };
  const x = g.input("x", [1, "T", "C"]);
  const L = g.input("L", [], DataType.INT64);
  g.output(linearInterpolation({ ...c, attention: "plain" }, "linear_interpolation", x, L));
  const s = await Session.create(g.encode(Deno.cwd()), Deno.cwd(), { threads: 1 });
  try {
    for (const [T, len] of [[149, 75], [10, 6], [3, 8], [7, 7], [5, 1], [1, 4], [50, 25]]) {
      const C = 3;
      const data = Float32Array.from({ length: T * C }, (_, i) => Math.sin(i * 1.7) * 3 + i * 0.01);
      const out = await s.run({
        x: f32([1, T, C], data),
        L: { dtype: "int64", shape: [], data: BigInt64Array.of(BigInt(len)) },
      });
      const y = Object.values(out)[0];
      assert.deepEqual(y.shape, [1, len, C]);
      const want = torchLinearAlignCorners(data, T, C, len);
      const got = y.data as Float32Array;
      for (let i = 0; i < want.length; i++) {
        assert.ok(
          Math.abs(got[i] - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])),
          `T=${T} L=${len} i=${i}`,
        );
      }
    }
  } finally {
    await s.release();
  }
});

test({
  name: "fused and plain attention give the same audio_emb; stage output is (seq, layers, hidden)",
  async fn() {
    const wave = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i * 0.05) + 0.3 * Math.sin(i * 0.31));
    const fused = await loadWav2Vec(tinyWav2Vec(), { threads: 1 });
    const plain = await loadWav2Vec(tinyWav2Vec(), { threads: 1, attention: "plain" });
    try {
      const a = await wav2vecFeatures(fused, wave, 9);
      const b = await wav2vecFeatures(plain, wave, 9);
      assert.deepEqual(a.shape, [9, fused.config.num_hidden_layers, fused.config.hidden_size]);
      assert.ok(relL2(a.data, b.data) < 1e-5);
      // Row s of layer l is hidden_states[l+1][0, s].
      const { hiddenStates } = await runWav2Vec(fused, wave, 9);
      const [, layers, H] = a.shape;
      assert.deepEqual(
        a.data.subarray((4 * layers + 1) * H, (4 * layers + 2) * H),
        hiddenStates[2].data.subarray(4 * H, 5 * H),
      );
      assert.deepEqual(fused.unusedKeys, ["wav2vec2.masked_spec_embed", "lm_head.weight", "lm_head.bias"]);
    } finally {
      await fused.release();
      await plain.release();
    }
  },
});

test({
  name: "weight-norm keys in torch>=2.1 parametrization form bind like weight_g/weight_v",
  fn() {
    const store = WeightStore.open(join(tinyWav2Vec(), "model.safetensors"));
    const renamed = (k: string) =>
      k.replace("conv.weight_g", "conv.parametrizations.weight.original0").replace(
        "conv.weight_v",
        "conv.parametrizations.weight.original1",
      );
    const keys = new Map(store.keys().map((k) => [renamed(k), store.get(k)]));
    const src = { has: (k: string) => keys.has(k), get: (k: string) => keys.get(k)! };
    const cfg = parseWav2Vec2Config(JSON.parse(Deno.readTextFileSync(join(tinyWav2Vec(), "config.json"))));
    const bound = buildWav2Vec2(src, cfg, { prefix: "wav2vec2." }).boundKeys().map((b) => b.key);
    assert.ok(bound.includes("wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original0"));
    assert.ok(bound.includes("wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original1"));
  },
});

test({
  name: "a checkpoint tensor of the wrong shape is a one-line error naming the key",
  fn() {
    const store = WeightStore.open(join(tinyWav2Vec(), "model.safetensors"));
    const cfg = parseWav2Vec2Config({
      ...JSON.parse(Deno.readTextFileSync(join(tinyWav2Vec(), "config.json"))),
      intermediate_size: 48,
    });
    assert.throws(
      () => buildWav2Vec2(store, cfg, { prefix: "wav2vec2." }),
      /wav2vec2\.encoder\.layers\.0\.feed_forward\.intermediate_dense\.weight.*\[32,16\].*\[48,16\]/,
    );
  },
});

test("config parsing: defaults are base-960h, unsupported variants and bad values are named", () => {
  const base = parseWav2Vec2Config({});
  assert.equal(base.hidden_size, 768);
  assert.deepEqual(base.conv_kernel, [10, 3, 3, 3, 3, 2, 2]);
  assert.equal(base.num_conv_pos_embeddings, 128);
  // 1 s of audio gives 49 CNN frames; 399 samples give none.
  assert.equal(featureFrames(base, 16000), 49);
  assert.equal(featureFrames(base, 399), 0);
  assert.equal(featureFrames(base, 400), 1);
  assert.throws(() => parseWav2Vec2Config({ feat_extract_norm: "layer" }, "c.json"), Wav2Vec2ConfigError);
  assert.throws(() => parseWav2Vec2Config({ do_stable_layer_norm: true }), /do_stable_layer_norm/);
  assert.throws(() => parseWav2Vec2Config({ hidden_size: 100 }), /divisible/);
  assert.throws(() => parseWav2Vec2Config({ conv_dim: [512, 512] }), /same length/);
  assert.throws(() => parseWav2Vec2Config([1, 2], "x.json"), /x\.json: not a JSON object/);
});

test({
  name: "loader and stage reject bad folders and calls with Wav2VecError",
  async fn() {
    const empty = Deno.makeTempDirSync();
    try {
      await assert.rejects(() => loadWav2Vec(empty), Wav2VecError);
      Deno.writeTextFileSync(join(empty, "config.json"), "{not json");
      await assert.rejects(() => loadWav2Vec(empty), /config\.json: not valid JSON/);
      Deno.writeTextFileSync(join(empty, "config.json"), "{}");
      await assert.rejects(() => loadWav2Vec(empty), /no wav2vec2 weights/);
    } finally {
      Deno.removeSync(empty, { recursive: true });
    }
    const model = await loadWav2Vec(tinyWav2Vec(), { threads: 1 });
    try {
      await assert.rejects(
        () => wav2vecFeatures(model, new Float32Array(100), 4),
        /shorter than one wav2vec2 frame/,
      );
      await assert.rejects(() => wav2vecFeatures(model, new Float32Array(4000), 0), /seq_len/);
      const nan = new Float32Array(4000);
      nan[7] = NaN;
      await assert.rejects(() => wav2vecFeatures(model, nan, 4), /sample 7 is not finite/);
    } finally {
      await model.release();
    }
  },
});
