/**
 * `weights check`, requireWeights, resolveWeightsDir and the format checks of verify.ts: the tiny upstream
 * checkpoints in tests/reference/tiny_models pass, an empty folder names every required file, and
 * each kind of broken file is caught with a message naming the problem.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  MissingWeightsError,
  requireWeights,
  resolveWeightsDir,
  WEIGHTS_ENV,
} from "../src/weights/locate.ts";
import { MANIFEST, parseStages, selectFiles, stageFiles } from "../src/weights/manifest.ts";
import {
  checkWeights,
  enabledStages,
  missingFor,
  verifyFormat,
  WeightsFormatError,
} from "../src/weights/verify.ts";
import type { WeightsFormat } from "../src/weights/manifest.ts";
import { tinyOnnx, tinySafetensors, tinyTorchZip, tinyZip } from "./helpers/hf_server.ts";
import { shared, tinyModel } from "./helpers/shared.ts";
import { withEnv } from "./helpers/env.ts";
import { Graph } from "../src/onnx/graph.ts";
import { createHash } from "node:crypto";
import { openCheckpoint } from "../src/weights/checkpoint.ts";
import { parseManifest } from "../src/weights/manifest.ts";
import type { HalloConfigs } from "../src/models/hallo_configs.ts";
import {
  f32Bytes,
  makePth,
  makeSafetensors,
  op,
  pickle,
  stateDictPickle,
} from "./helpers/weights_fixtures.ts";

const REQUIRED = MANIFEST.files.filter((f) => f.status === "required").map((f) => f.path);

async function tmp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "hallo_check_" });
}

/** Runs the CLI as a user would and captures both streams. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const main = new URL("../src/cli/main.ts", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", main, "weights", ...args] })
    .output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("manifest: paths unique, required files per stage as the spec lists them", () => {
  assert.equal(new Set(MANIFEST.files.map((f) => f.path)).size, MANIFEST.files.length);
  assert.equal(MANIFEST.repo, "fudan-generative-ai/hallo");
  assert.deepEqual(stageFiles("networks").map((f) => f.path), [
    "hallo/net.pth",
    "stable-diffusion-v1-5/unet/config.json",
    "sd-vae-ft-mse/config.json",
    "sd-vae-ft-mse/diffusion_pytorch_model.safetensors",
  ]);
  assert.deepEqual(stageFiles("audio").map((f) => f.path.split("/").pop()), [
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
  ]);
  assert.deepEqual(stageFiles("audio", ["optional"]).map((f) => f.name), ["Kim_Vocal_2", "mdx_model_data"]);
  assert.deepEqual(stageFiles("image").map((f) => f.name), [
    "face_landmarker",
    "scrfd_10g_bnkps",
    "glintr100",
  ]);
  assert.deepEqual(selectFiles("net,hallo/net.pth,vae_config").map((f) => f.name), ["net", "vae_config"]);
  assert.throws(() => selectFiles("nope"), /no weights file named 'nope'/);
  assert.throws(() => parseStages("image,video"), /unknown stage 'video'/);
  const entry = { ...MANIFEST.files[0] };
  const withHash = (sha256: unknown) => parseManifest({ ...MANIFEST, files: [{ ...entry, sha256 }] });
  assert.equal(withHash("ab".repeat(32)).files[0].sha256, "ab".repeat(32));
  assert.throws(() => withHash("AB".repeat(32)), /bad entry/);
  assert.throws(() => withHash("abc"), /bad entry/);
});

/** The sizes the reference set was made with (upstream hard-codes others), as the parity runner passes them. */
function referenceConfigs(): HalloConfigs {
  const index = JSON.parse(Deno.readTextFileSync(shared("reference", "index.json")));
  const c = index.common.configs;
  return {
    imageProj: c.image_proj,
    audioProj: c.audio_proj,
    faceLocator: c.face_locator,
    unetKwargs: c.unet_additional_kwargs,
    nMotionFrames: c.n_motion_frames,
  };
}

const TINY_FILES = [
  "hallo/net.pth",
  "stable-diffusion-v1-5/unet/config.json",
  "sd-vae-ft-mse/config.json",
  "sd-vae-ft-mse/diffusion_pytorch_model.safetensors",
  "wav2vec/wav2vec2-base-960h/config.json",
  "wav2vec/wav2vec2-base-960h/model.safetensors",
  "wav2vec/wav2vec2-base-960h/preprocessor_config.json",
];

Deno.test("check: tiny_models is loadable with the sizes it was made with, and not with upstream's", async () => {
  const tiny = tinyModel();
  const checks = await checkWeights(tiny, MANIFEST, { configs: referenceConfigs() });
  assert.deepEqual(checks.filter((c) => c.valid).map((c) => c.file.path), TINY_FILES);
  assert.deepEqual(enabledStages(checks), ["audio", "networks"]);
  assert.deepEqual(missingFor(checks, ["audio", "networks"]), []);
  assert.equal(checks.find((c) => c.file.name === "net")!.detail, "torch zip, 1690 entries, 1688 tensors");
  assert.equal(checks.find((c) => c.file.name === "net")!.size, 18902681);

  // animate builds the networks with inference.py's sizes unless the folder has a tiny.json: it cannot
  // load these, and check says so instead of calling them valid.
  const plain = await checkWeights(tiny);
  const net = plain.find((c) => c.file.name === "net")!;
  assert.equal(net.valid, false);
  assert.match(
    net.detail,
    /^the networks cannot be built from it with the sizes upstream's inference\.py hard-codes: checkpoint tensor 'imageproj\.proj\.weight' in .*net\.pth has shape \[64,24\], the network expects \[3072,512\]$/,
  );
  assert.deepEqual(enabledStages(plain), ["audio"]);

  const ok = await cli("check", "--dir", tiny, "--stages", "audio");
  assert.equal(ok.code, 0, ok.err);
  assert.match(
    ok.out,
    /^wav2vec\/wav2vec2-base-960h\/model\.safetensors +yes +yes +61\.9 KiB +audio +safetensors/m,
  );
  assert.match(ok.out, /^hallo\/net\.pth +yes +NO +18\.0 MiB +networks +the networks cannot be built/m);
  assert.match(ok.out, /^stages enabled: audio$/m);
  const deep = await cli("check", "--dir", tiny, "--stages", "audio", "--deep");
  assert.equal(deep.code, 0, deep.err);
  assert.match(
    deep.out,
    /^wav2vec\/wav2vec2-base-960h\/model\.safetensors +yes +yes .* no sha256 in the manifest, every tensor read \(55744 bytes\)$/m,
  );

  const all = await cli("check", "--dir", tiny);
  assert.equal(all.code, 1);
  assert.match(
    all.err,
    /missing for stage 'networks': hallo\/net\.pth \(invalid: the networks cannot be built/,
  );
  assert.match(
    all.err,
    /fetch with: deno task hallo weights download --only net,face_landmarker,scrfd_10g_bnkps,glintr100/,
  );
});

/** A weights folder: links to tests/reference/tiny_models, with some files replaced by `bytes`. */
async function tinyWith(bytes: Record<string, Uint8Array>): Promise<string> {
  const dir = await tmp();
  for (const p of new Set([...TINY_FILES, ...Object.keys(bytes)])) {
    await Deno.mkdir(join(dir, p, ".."), { recursive: true });
    if (bytes[p]) await Deno.writeFile(join(dir, p), bytes[p]);
    else await Deno.symlink(tinyModel(p), join(dir, p));
  }
  return dir;
}

const enc = new TextEncoder();

/** A net.pth holding a 2x2 float tensor under `name`, whose storage has `storageBytes` bytes. */
function smallPth(name: string, opts: { storageBytes?: number; deflate?: string[] } = {}): Uint8Array {
  const pkl = stateDictPickle([{ name, storage: "FloatStorage", key: "0", storageNumel: 4, size: [2, 2] }]);
  const data = f32Bytes([1, 2, 3, 4]).subarray(0, opts.storageBytes ?? 16);
  return makePth(pkl, { "0": data }, { deflate: opts.deflate });
}

/** A safetensors file with a valid JSON header of more than 100 MB (the readers' limit). */
function hugeHeaderSafetensors(): Uint8Array {
  const pad = "x".repeat(100_000_100);
  return makeSafetensors(`{"__metadata__":{"pad":"${pad}"}}`, new Uint8Array(0));
}

Deno.test("check: each broken file the stages refuse is invalid, with the reader's problem, where the format check passed it", async () => {
  const markerDir = await tmp();
  const marker = join(markerDir, "pwned");
  try {
    const osSystem = pickle(
      op.proto(2),
      op.global("os", "system"),
      op.str(`touch ${marker}`),
      op.tuple1,
      op.reduce,
      op.stop,
    );
    const net = "hallo/net.pth";
    const vae = "sd-vae-ft-mse/diffusion_pytorch_model.safetensors";
    const overlap = makeSafetensors({
      "a": { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      "b": { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    }, new Uint8Array(12));
    const realNet = await Deno.readFile(tinyModel(net));
    const zeroed = realNet.slice();
    zeroed.fill(0, 7 << 20, 11 << 20); // 4 MiB in the middle: across hundreds of small entries
    const cases: [string, string, Uint8Array, RegExp][] = [
      ["pickle calling os.system", net, makePth(osSystem, {}), /global 'os\.system' is not allowed/],
      [
        "another model's checkpoint",
        net,
        smallPth("fc.weight"),
        /^the networks cannot be built from it with the sizes given: .*no tensor 'imageproj\.proj\.weight'/,
      ],
      [
        "a compressed zip entry",
        net,
        smallPth("fc.weight", { deflate: ["data.pkl"] }),
        /zip entry 'archive\/data\.pkl' is compressed \(method 8\)/,
      ],
      [
        "a storage too small for its tensor",
        net,
        smallPth("fc.weight", { storageBytes: 8 }),
        /storage entry 'archive\/data\/0' has 8 bytes, expected 16/,
      ],
      ["4 MiB zeroed across zip entries", net, zeroed, /zip entry '.*': local header not found/],
      ["overlapping safetensors offsets", vae, overlap, /tensors 'a' and 'b' overlap/],
      [
        "a 100 MB safetensors header",
        vae,
        hugeHeaderSafetensors(),
        /header length 1000001\d+ exceeds the 100000000 byte limit/,
      ],
      [
        "a config.json that is a JSON array",
        "stable-diffusion-v1-5/unet/config.json",
        enc.encode("[1, 2]"),
        /^expected a JSON object, found an array$/,
      ],
    ];
    for (const [what, path, bytes, expect] of cases) {
      const dir = await tinyWith({ [path]: bytes });
      try {
        const before = await verifyFormat(
          join(dir, path),
          MANIFEST.files.find((f) => f.path === path)!.format,
        )
          .then(() => "passes", (e) => `fails: ${e.message}`);
        const checks = await checkWeights(dir, MANIFEST, { configs: referenceConfigs() });
        const c = checks.find((x) => x.file.path === path)!;
        assert.equal(c.valid, false, `${what}: called valid (${c.detail})`);
        assert.match(c.detail, expect, what);
        assert.ok(!/[\n\r]/.test(c.detail), what);
        assert.deepEqual(enabledStages(checks), ["audio"], what);
        // The cheap format check alone let most of these through: that was the bug.
        if (what !== "a 100 MB safetensors header") assert.equal(before, "passes", what);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
    assert.equal(await Deno.stat(marker).then(() => true, () => false), false, "the pickle ran nothing");
  } finally {
    await Deno.remove(markerDir, { recursive: true });
  }
});

Deno.test("check --stages audio: a broken wav2vec2 checkpoint exits 1 naming file and problem (was exit 0)", async () => {
  const path = "wav2vec/wav2vec2-base-960h/model.safetensors";
  const dir = await tinyWith({
    [path]: makeSafetensors({
      "a": { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      "b": { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    }, new Uint8Array(12)),
  });
  try {
    const r = await cli("check", "--dir", dir, "--stages", "audio");
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^stages enabled: none$/m);
    assert.match(
      r.err,
      /^missing for stage 'audio': wav2vec\/wav2vec2-base-960h\/model\.safetensors \(invalid: tensors 'a' and 'b' overlap\)$/m,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: an ONNX model whose graph ONNX Runtime refuses is invalid, though its top-level fields are fine", async () => {
  const dir = await tmp();
  try {
    const model = (op: string) => {
      const g = new Graph("m");
      g.output(g.op1(op, [g.input("x", [2])], { path: "a", outName: "y" }));
      return g.encode("/");
    };
    await Deno.mkdir(join(dir, "face_analysis/models"), { recursive: true });
    const scrfd = join(dir, "face_analysis/models/scrfd_10g_bnkps.onnx");
    await Deno.writeFile(scrfd, model("NoSuchOperator"));
    await Deno.writeFile(join(dir, "face_analysis/models/glintr100.onnx"), model("Relu"));
    assert.match(await verifyFormat(scrfd, "onnx"), /^onnx, ir_version \d+$/);
    const checks = await checkWeights(dir);
    const bad = checks.find((c) => c.file.name === "scrfd_10g_bnkps")!;
    assert.equal(bad.valid, false);
    assert.match(bad.detail, /^ONNX Runtime cannot load it: .*NoSuchOperator/);
    assert.equal(checks.find((c) => c.file.name === "glintr100")!.valid, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check --deep: zeros inside tensor data change no structure; only the manifest's sha256 finds them", async () => {
  const path = "hallo/net.pth";
  const original = await Deno.readFile(tinyModel(path));
  const biggest =
    [...openCheckpoint(tinyModel(path)).tensors.values()].sort((a, b) => b.length - a.length)[0];
  const damaged = original.slice();
  damaged.fill(0, biggest.offset, biggest.offset + biggest.length);
  const sha256 = createHash("sha256").update(original).digest("hex");
  const withHash = parseManifest({
    ...MANIFEST,
    files: MANIFEST.files.map((f) => f.name === "net" ? { ...f, sha256, size: original.length } : f),
  });
  const configs = referenceConfigs();
  const dir = await tinyWith({ [path]: damaged });
  try {
    const net = async (manifest: typeof MANIFEST, deep: boolean) =>
      (await checkWeights(dir, manifest, { deep, configs })).find((c) => c.file.name === "net")!;
    // Structure, storages and every key are intact: nothing but a hash can tell.
    assert.equal((await net(MANIFEST, false)).valid, true);
    const deepNoHash = await net(MANIFEST, true);
    assert.equal(deepNoHash.valid, true);
    assert.match(deepNoHash.detail, /no sha256 in the manifest, every tensor read \(\d+ bytes\)$/);
    const deep = await net(withHash, true);
    assert.equal(deep.valid, false);
    assert.equal(
      deep.detail,
      `sha256 ${createHash("sha256").update(damaged).digest("hex")} differs from the manifest's ${sha256}`,
    );
    // The intact file passes the same deep check.
    await Deno.writeFile(join(dir, path), original);
    assert.match((await net(withHash, true)).detail, /sha256 ok, every tensor read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: an empty folder exits 1 naming every required file", async () => {
  const dir = await tmp();
  try {
    const r = await cli("check", "--dir", dir);
    assert.equal(r.code, 1);
    assert.match(r.out, /^stages enabled: none$/m);
    for (const p of REQUIRED) assert.ok(r.err.includes(`: ${p} (missing)`), `${p} not named in:\n${r.err}`);
    const names = MANIFEST.files.filter((f) => f.status === "required").map((f) => f.name).join(",");
    assert.ok(r.err.includes(`--only ${names}`), r.err);
    assert.equal((await cli("check", "--dir", dir, "--stages", "sound")).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("requireWeights: returns the paths a stage reads, or fails naming the files and the command", async () => {
  const tiny = tinyModel();
  const paths = await requireWeights(tiny, "networks");
  assert.deepEqual(paths, {
    net: join(tiny, "hallo/net.pth"),
    unet_config: join(tiny, "stable-diffusion-v1-5/unet/config.json"),
    vae_config: join(tiny, "sd-vae-ft-mse/config.json"),
    vae_weights: join(tiny, "sd-vae-ft-mse/diffusion_pytorch_model.safetensors"),
  });
  await assert.rejects(() => requireWeights(tiny, "image"), (e: unknown) => {
    assert.ok(e instanceof MissingWeightsError);
    assert.equal(
      e.message,
      `stage 'image' needs weights not found in ${tiny}: ` +
        "face_analysis/models/face_landmarker_v2_with_blendshapes.task (missing), " +
        "face_analysis/models/scrfd_10g_bnkps.onnx (missing), face_analysis/models/glintr100.onnx (missing); " +
        `fetch with: deno task hallo weights download --only face_landmarker,scrfd_10g_bnkps,glintr100 --dir "${tiny}"`,
    );
    return true;
  });
  // A broken file counts as missing, with its problem named.
  const dir = await tmp();
  try {
    await Deno.mkdir(join(dir, "wav2vec/wav2vec2-base-960h"), { recursive: true });
    for (const f of ["config.json", "preprocessor_config.json"]) {
      await Deno.copyFile(
        join(tiny, "wav2vec/wav2vec2-base-960h", f),
        join(dir, "wav2vec/wav2vec2-base-960h", f),
      );
    }
    const model = await Deno.readFile(join(tiny, "wav2vec/wav2vec2-base-960h/model.safetensors"));
    await Deno.writeFile(join(dir, "wav2vec/wav2vec2-base-960h/model.safetensors"), model.subarray(0, 30000));
    await assert.rejects(
      () => requireWeights(dir, "audio"),
      /model\.safetensors \(invalid: tensor '.*' ends at byte \d+ of a \d+-byte data section: truncated\?\); fetch with: .* --only wav2vec_weights/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveWeightsDir: --weights, then HALLO_WEIGHTS, then weights/pretrained_models", async () => {
  await withEnv({ [WEIGHTS_ENV]: undefined }, () => {
    const root = new URL("..", import.meta.url).pathname;
    assert.equal(resolveWeightsDir(), resolve(root, "weights/pretrained_models"));
    Deno.env.set(WEIGHTS_ENV, "/data/hallo");
    assert.equal(resolveWeightsDir(), "/data/hallo");
    assert.equal(resolveWeightsDir("rel/dir"), resolve("rel/dir"));
  });
});

/** Rewrites a small zip into the zip64 layout torch uses for checkpoints over 4 GB. */
function toZip64(zip: Uint8Array): Uint8Array {
  const eocdAt = zip.length - 22;
  const v = new DataView(zip.buffer, zip.byteOffset);
  const count = v.getUint16(eocdAt + 10, true);
  const cdSize = v.getUint32(eocdAt + 12, true);
  const cdOffset = v.getUint32(eocdAt + 16, true);
  const rec = new DataView(new ArrayBuffer(56 + 20 + 22));
  rec.setUint32(0, 0x06064b50, true);
  rec.setBigUint64(4, 44n, true);
  rec.setBigUint64(24, BigInt(count), true);
  rec.setBigUint64(32, BigInt(count), true);
  rec.setBigUint64(40, BigInt(cdSize), true);
  rec.setBigUint64(48, BigInt(cdOffset), true);
  rec.setUint32(56, 0x07064b50, true);
  rec.setBigUint64(64, BigInt(eocdAt), true);
  rec.setUint32(72, 1, true);
  rec.setUint32(76, 0x06054b50, true);
  rec.setUint16(76 + 8, 0xffff, true);
  rec.setUint16(76 + 10, 0xffff, true);
  rec.setUint32(76 + 12, 0xffffffff, true);
  rec.setUint32(76 + 16, 0xffffffff, true);
  const out = new Uint8Array(eocdAt + rec.byteLength);
  out.set(zip.subarray(0, eocdAt));
  out.set(new Uint8Array(rec.buffer), eocdAt);
  return out;
}

Deno.test("verify: each format accepts a valid file and names the problem of a broken one", async () => {
  const dir = await tmp();
  const enc = new TextEncoder();
  const st = tinySafetensors(16);
  const zip = tinyTorchZip(256);
  const onnx = tinyOnnx();
  const legacy = new Uint8Array([
    0x80,
    0x02,
    0x8a,
    0x0a,
    0x6c,
    0xfc,
    0x9c,
    0x46,
    0xf9,
    0x20,
    0x6a,
    0xa8,
    0x50,
    0x19,
    0x2e,
  ]);
  const cases: [string, WeightsFormat, Uint8Array, RegExp][] = [
    ["ok.safetensors", "safetensors", st, /^safetensors, 1 tensors$/],
    ["ok.pth", "pth", zip, /^torch zip, 3 entries$/],
    ["ok64.pth", "pth", toZip64(zip), /^torch zip, 3 entries$/],
    ["ok.ckpt", "ckpt", zip, /^torch zip, 3 entries$/],
    ["legacy.ckpt", "ckpt", legacy, /^legacy torch pickle$/],
    ["ok.onnx", "onnx", onnx, /^onnx, ir_version 8$/],
    [
      "ok.task",
      "task",
      tinyZip({ "face_detector.tflite": new Uint8Array(8) }),
      /^task bundle, 1 tflite models$/,
    ],
    ["ok.json", "json", enc.encode('{"a": 1, "b": [2]}'), /^JSON object, 2 keys$/],
    [
      "cut.safetensors",
      "safetensors",
      st.subarray(0, st.length - 1),
      /ends at byte 64 of a 63-byte data section/,
    ],
    ["hdr.safetensors", "safetensors", st.subarray(0, 20), /header length \d+ does not fit a 20-byte file/],
    [
      "lfs.safetensors",
      "safetensors",
      enc.encode("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"),
      /Git LFS pointer/,
    ],
    ["cut.pth", "pth", zip.subarray(0, zip.length - 10), /no zip end-of-central-directory record/],
    ["nopkl.pth", "pth", tinyZip({ "a/data/0": new Uint8Array(4) }), /no data\.pkl entry/],
    ["html.ckpt", "ckpt", enc.encode("<!DOCTYPE html><html></html>"), /neither a torch zip.*HTML page/],
    ["cut.onnx", "onnx", onnx.subarray(0, 4), /field 7 ends at byte 7, past the end \(4 bytes\)/],
    ["nograph.onnx", "onnx", new Uint8Array([0x08, 0x08]), /no graph \(field 7\)/],
    ["notonnx.onnx", "onnx", st, /not an ONNX model/],
    ["empty.task", "task", tinyZip({ "readme.txt": new Uint8Array(1) }), /no \.tflite model/],
    ["bad.json", "json", enc.encode('{"a": '), /not valid JSON/],
    ["empty.json", "json", new Uint8Array(0), /empty file/],
  ];
  try {
    for (const [name, format, bytes, expect] of cases) {
      const path = join(dir, name);
      await Deno.writeFile(path, bytes);
      const t0 = performance.now();
      const got = await verifyFormat(path, format).catch((e) => {
        assert.ok(e instanceof WeightsFormatError, `${name}: ${e}`);
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        return e.problem as string;
      });
      assert.match(got, expect, name);
      assert.ok(performance.now() - t0 < 500, name);
    }
    await assert.rejects(() => verifyFormat(join(dir, "absent.json"), "json"), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
