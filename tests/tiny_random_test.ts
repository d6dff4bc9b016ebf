/**
 * The tiny random weight set: deterministic bytes, the exact layout the graph builders bind (at Hallo's
 * 512 px geometry too: 64x64 latents, 16 frames), every network runs on it without NaN through the ordinary
 * loaders, idempotent, and a killed run never counts as complete. Also the safetensors writer and the net
 * resolver.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { buildDenoisingUNet } from "../src/models/denoising_unet.ts";
import { buildReferenceUNet } from "../src/models/reference_unet.ts";
import { parseUNetConfig } from "../src/models/unet_config.ts";
import { buildVaeDecoder, buildVaeEncoder, parseVaeConfig } from "../src/models/vae.ts";
import { buildWav2Vec2, parseWav2Vec2Config } from "../src/models/wav2vec2.ts";
import { buildAudioProj } from "../src/models/audio_proj.ts";
import { buildFaceLocator } from "../src/models/face_locator.ts";
import { buildImageProj } from "../src/models/image_proj.ts";
import { loadHalloModels } from "../src/stages/generate/models.ts";
import { runClip } from "../src/stages/generate/pipeline.ts";
import { projectAudio } from "../src/stages/networks/projections.ts";
import { loadWav2Vec, wav2vecFeatures } from "../src/stages/networks/wav2vec.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";
import { openCheckpoint } from "../src/weights/checkpoint.ts";
import { readTensorF32 } from "../src/weights/convert.ts";
import { MissingNetCheckpointError, resolveNetCheckpoint } from "../src/weights/locate.ts";
import { readSafetensors } from "../src/weights/safetensors.ts";
import { encodeSafetensors, SafetensorsWriteError } from "../src/weights/safetensors_write.ts";
import { MemorySource } from "../src/weights/source.ts";
import { WeightStore } from "../src/weights/store.ts";
import {
  readTinyConfigs,
  TINY_CONFIGS,
  TINY_JSON,
  TINY_UNET_CONFIG,
  TINY_VAE_CONFIG,
  TINY_WAV2VEC2_CONFIG,
  TinyWeightsError,
} from "../src/tiny/configs.ts";
import { TINY_NET_FILE, tinyLayout } from "../src/tiny/layout.ts";
import { ensureTinyWeights, isTinySetComplete } from "../src/tiny/random.ts";

const CHECKPOINTS = [
  TINY_NET_FILE,
  "sd-vae-ft-mse/diffusion_pytorch_model.safetensors",
  "wav2vec/wav2vec2-base-960h/model.safetensors",
];

function digest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of [...CHECKPOINTS, TINY_JSON]) {
    out[p] = createHash("sha256").update(Deno.readFileSync(join(dir, p))).digest("hex");
  }
  return out;
}

function tmpDir(): string {
  return Deno.makeTempDirSync({ prefix: "tiny_random_test_" });
}

/** One set shared by the tests that only read it. */
const root = tmpDir();
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));
const shared = join(root, "tiny_pretrained_models");
let firstSeconds = 0;
let made: Promise<{ dir: string; created: boolean }> | undefined;
/** Generates the shared set on first use (inside a test, so the sanitizers see its ops there). */
function ready(): Promise<{ dir: string; created: boolean }> {
  return made ??= (async () => {
    const t0 = performance.now();
    const r = await ensureTinyWeights(shared);
    firstSeconds = (performance.now() - t0) / 1000;
    return r;
  })();
}

function allFinite(t: F32Tensor, what: string): void {
  let sq = 0;
  for (const v of t.data) {
    assert.ok(Number.isFinite(v), `${what} has a non-finite value`);
    sq += v * v;
  }
  assert.ok(sq > 0, `${what} is all zeros`);
}

function random(shape: number[], seed: number, lo = -1, hi = 1): F32Tensor {
  let s = seed;
  const n = shape.reduce((a, d) => a * d, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = lo + (hi - lo) * (s / 4294967296);
  }
  return f32(shape, data);
}

Deno.test("generation: complete set in under 5 s, byte-identical on a second run, seed-dependent", async () => {
  const r = await ready();
  assert.equal(r.created, true);
  assert.ok(firstSeconds < 5, `generation took ${firstSeconds.toFixed(2)} s`);
  const again = join(root, "again");
  assert.equal((await ensureTinyWeights(again)).created, true);
  assert.deepEqual(digest(again), digest(shared));
  const other = join(root, "other");
  await ensureTinyWeights(other, { seed: 7 });
  const d = digest(other);
  assert.notEqual(d[TINY_NET_FILE], digest(shared)[TINY_NET_FILE]);
  // The seed is recorded: the default-seed set is not "complete" for seed 7 and vice versa.
  assert.equal(isTinySetComplete(other, 7), true);
  assert.equal(isTinySetComplete(other), false);
  Deno.removeSync(again, { recursive: true });
  Deno.removeSync(other, { recursive: true });
});

Deno.test("idempotent: a second call finds the complete set quickly and writes nothing", async () => {
  await ready();
  const before = digest(shared);
  const mtime = Deno.statSync(join(shared, TINY_NET_FILE)).mtime?.getTime();
  const t0 = performance.now();
  const r = await ensureTinyWeights(shared);
  const ms = performance.now() - t0;
  assert.deepEqual(r, { dir: shared, created: false });
  assert.ok(ms < 1000, `check took ${ms.toFixed(0)} ms`);
  assert.equal(Deno.statSync(join(shared, TINY_NET_FILE)).mtime?.getTime(), mtime);
  assert.deepEqual(digest(shared), before);
});

Deno.test("files hold exactly the recorded layout; values: norms 1, biases 0, sinusoidal pe, g = |v|", async () => {
  await ready();
  const layout = tinyLayout();
  for (const f of layout) {
    if (!f.tensors) {
      assert.deepEqual(JSON.parse(Deno.readTextFileSync(join(shared, f.path))), f.json);
      continue;
    }
    const ck = openCheckpoint(join(shared, f.path));
    assert.deepEqual([...ck.tensors.keys()].sort(), f.tensors.map((t) => t.name));
    for (const t of f.tensors) assert.deepEqual(ck.tensors.get(t.name)!.shape, t.shape, t.name);
  }
  const net = WeightStore.open(join(shared, TINY_NET_FILE));
  const pe = net.get(
    "denoising_unet.mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0" +
      ".attention_blocks.0.pos_encoder.pe",
  );
  const peV = readTensorF32(pe);
  const d = pe.shape[2];
  assert.equal(peV[0], 0); // sin(0)
  assert.equal(peV[1], 1); // cos(0)
  assert.ok(Math.abs(peV[d] - Math.sin(1)) < 1e-6 && Math.abs(peV[d + 1] - Math.cos(1)) < 1e-6);
  assert.ok(net.readF32("imageproj.norm.weight").every((v) => v === 1));
  assert.ok(net.readF32("imageproj.norm.bias").every((v) => v === 0));
  assert.ok(net.readF32("imageproj.proj.bias").every((v) => v === 0));
  const w = net.readF32("imageproj.proj.weight");
  const bound = 1 / Math.sqrt(512);
  assert.ok(w.every((v) => Math.abs(v) <= bound) && w.some((v) => Math.abs(v) > bound / 2));
  const wv = WeightStore.open(join(shared, "wav2vec/wav2vec2-base-960h/model.safetensors"));
  const conv = "wav2vec2.encoder.pos_conv_embed.conv";
  const g = wv.readF32(`${conv}.weight_g`);
  const v = wv.readF32(`${conv}.weight_v`);
  const k = g.length;
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let i = j; i < v.length; i += k) s += v[i] * v[i];
    assert.ok(Math.abs(g[j] - Math.sqrt(s)) < 1e-6 * g[j]);
  }
});

Deno.test("configs agree with each other and are picked up from tiny.json", async () => {
  await ready();
  const c = readTinyConfigs(shared)!;
  assert.deepEqual(c, TINY_CONFIGS);
  assert.equal(readTinyConfigs(root), undefined);
  assert.equal(c.audioProj!.blocks, TINY_WAV2VEC2_CONFIG.num_hidden_layers);
  assert.equal(c.audioProj!.channels, TINY_WAV2VEC2_CONFIG.hidden_size);
  assert.equal(c.unetKwargs!.audio_attention_dim, c.audioProj!.output_dim);
  assert.equal(c.imageProj!.cross_attention_dim, TINY_UNET_CONFIG.cross_attention_dim);
  assert.equal(c.faceLocator!.conditioning_embedding_channels, TINY_UNET_CONFIG.block_out_channels[0]);
  assert.equal(c.imageProj!.clip_embeddings_dim, 512); // ArcFace's width: the real face analysis feeds it
});

Deno.test("at Hallo's 512 px geometry (64x64 latent, 16 frames) the builders bind every tensor of the set", async () => {
  await ready();
  const net = WeightStore.open(join(shared, TINY_NET_FILE));
  const cfg = parseUNetConfig({ ...TINY_UNET_CONFIG } as Record<string, unknown>);
  const c = TINY_CONFIGS;
  const tokens = c.imageProj.clip_extra_context_tokens;
  buildReferenceUNet(cfg, net, { batch: 6, contextBatch: 2, contextTokens: tokens, height: 64, width: 64 });
  buildDenoisingUNet(cfg, c.unetKwargs, net, {
    batch: 2,
    frames: 16,
    height: 64,
    width: 64,
    contextTokens: tokens,
    audioTokens: c.audioProj.context_tokens,
    motionFrames: c.nMotionFrames,
  });
  buildFaceLocator(net, c.faceLocator);
  buildImageProj(net, c.imageProj);
  buildAudioProj(net, c.audioProj);
  assert.deepEqual(net.unusedKeys(), []);
  const vae = WeightStore.open(join(shared, "sd-vae-ft-mse/diffusion_pytorch_model.safetensors"));
  const vcfg = parseVaeConfig({ ...TINY_VAE_CONFIG });
  buildVaeEncoder(vae, vcfg);
  buildVaeDecoder(vae, vcfg);
  assert.deepEqual(vae.unusedKeys(), []);
  const w2v = WeightStore.open(join(shared, "wav2vec/wav2vec2-base-960h/model.safetensors"));
  buildWav2Vec2(w2v, parseWav2Vec2Config({ ...TINY_WAV2VEC2_CONFIG }), { prefix: "wav2vec2." });
  assert.deepEqual(w2v.unusedKeys().sort(), ["lm_head.bias", "lm_head.weight", "wav2vec2.masked_spec_embed"]);
});

Deno.test("every network runs once through the ordinary loaders without NaN (configs from tiny.json)", async () => {
  await ready();
  const F = 4, h = 8, w = 8;
  const wav = await loadWav2Vec(join(shared, "wav2vec/wav2vec2-base-960h"), { threads: 1 });
  const audioEmb = await wav2vecFeatures(wav, random([16000], 1).data, 25);
  await wav.release();
  allFinite(audioEmb, "wav2vec2 features");
  const m = await loadHalloModels(shared, { frames: F, size: 8 * h, guidance: true, threads: 1 });
  try {
    const [, layers, hidden] = audioEmb.shape;
    // Any F windows of 5 frames: the values only need the right shape.
    const windows = f32([1, F, 5, layers, hidden], audioEmb.data.slice(0, F * 5 * layers * hidden));
    const audioTokens = await projectAudio(m.audioProj, windows);
    allFinite(audioTokens, "audio tokens");
    const level = (l: number) =>
      f32([F, (h >> l) * (w >> l)], new Float32Array(F * (h >> l) * (w >> l)).fill(1));
    const masks = [0, 1, 2, 3].map(level);
    const { video, latents } = await runClip(m, {
      refImages: random([3, 3, 8 * h, 8 * w], 2),
      faceEmb: random([1, 512], 3),
      audioTokens,
      faceRegion: random([1, 3, 8 * h, 8 * w], 4, 0, 1),
      masks: { full: masks, face: masks, lip: masks },
    }, { steps: 2, cfg: 3.5, motionScale: [1, 1, 1], initialLatents: random([1, 4, F, h, w], 5) });
    allFinite(latents.latents, "latents");
    for (const e of latents.bank) allFinite(e.data, `bank ${e.path}`);
    allFinite(video, "video");
    assert.deepEqual(video.shape, [1, 3, F, 8 * h, 8 * w]);
  } finally {
    await m.release();
  }
});

Deno.test("a killed run (leftover temp folder, truncated file) is never taken for a complete set", async () => {
  await ready();
  const dir = join(root, "killed", "tiny");
  Deno.mkdirSync(join(root, "killed"));
  // A run that died: its temp folder holds some files but no tiny.json, and its process is gone.
  const child = new Deno.Command("true").spawn();
  await child.status;
  const leftover = `${dir}.tmp-${child.pid}-x`;
  Deno.mkdirSync(join(leftover, "hallo"), { recursive: true });
  Deno.writeFileSync(join(leftover, TINY_NET_FILE), new Uint8Array(100));
  assert.equal(isTinySetComplete(dir), false);
  assert.equal((await ensureTinyWeights(dir)).created, true);
  assert.equal(isTinySetComplete(dir), true);
  assert.deepEqual([...Deno.readDirSync(join(root, "killed"))].map((e) => e.name), ["tiny"]);
  // A set whose file was cut short is replaced.
  const netPath = join(dir, TINY_NET_FILE);
  Deno.truncateSync(netPath, 1000);
  assert.equal(isTinySetComplete(dir), false);
  assert.equal((await ensureTinyWeights(dir)).created, true);
  assert.deepEqual(digest(dir), digest(shared));
  // A folder that is not a tiny set is never replaced.
  const foreign = join(root, "foreign");
  Deno.mkdirSync(foreign);
  Deno.writeTextFileSync(join(foreign, "keep.txt"), "mine");
  await assert.rejects(() => ensureTinyWeights(foreign), TinyWeightsError);
  assert.equal(Deno.readTextFileSync(join(foreign, "keep.txt")), "mine");
});

Deno.test("resolveNetCheckpoint: net.pth first, else net.safetensors, else an error naming both", () => {
  const dir = tmpDir();
  try {
    assert.throws(() => resolveNetCheckpoint(dir), (e: Error) => {
      assert.ok(e instanceof MissingNetCheckpointError);
      assert.match(e.message, /net\.pth/);
      assert.match(e.message, /net\.safetensors/);
      return true;
    });
    Deno.mkdirSync(join(dir, "hallo"));
    Deno.writeFileSync(join(dir, "hallo", "net.safetensors"), new Uint8Array(0));
    assert.equal(resolveNetCheckpoint(dir), join(dir, "hallo", "net.safetensors"));
    Deno.writeFileSync(join(dir, "hallo", "net.pth"), new Uint8Array(0));
    assert.equal(resolveNetCheckpoint(dir), join(dir, "hallo", "net.pth"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("safetensors writer: aligned header, reads back exactly; bad input is a one-line error", () => {
  const a = Float32Array.from([1.5, -2, 3.25, 0]);
  const b = new Uint16Array([1, 2, 3]);
  const bytes = encodeSafetensors([
    { name: "a", dtype: "F32", shape: [2, 2], data: a },
    { name: "b.c", dtype: "F16", shape: [3], data: b },
    { name: "empty", dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  ], { format: "pt" });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLen % 8, 0);
  const ck = readSafetensors(new MemorySource("mem", bytes));
  assert.deepEqual(ck.metadata, { format: "pt" });
  assert.deepEqual([...readTensorF32(ck.tensors.get("a")!, new MemorySource("mem", bytes))], [...a]);
  const refB = ck.tensors.get("b.c")!;
  assert.deepEqual([...new Uint16Array(bytes.slice(refB.offset, refB.offset + refB.length).buffer)], [
    1,
    2,
    3,
  ]);
  assert.deepEqual(ck.tensors.get("empty")!.shape, [0, 4]);
  const bad = (t: Parameters<typeof encodeSafetensors>[0], re: RegExp) =>
    assert.throws(
      () => encodeSafetensors(t),
      (e: Error) => e instanceof SafetensorsWriteError && re.test(e.message),
    );
  bad([{ name: "x", dtype: "F32", shape: [3], data: a }], /needs 12 bytes, got 16/);
  bad(
    [{ name: "x", dtype: "F32", shape: [4], data: a }, { name: "x", dtype: "F32", shape: [4], data: a }],
    /twice/,
  );
  bad([{ name: "__metadata__", dtype: "F32", shape: [4], data: a }], /bad tensor name/);
  bad([{ name: "x", dtype: "F32", shape: [-4], data: a }], /bad shape/);
});
