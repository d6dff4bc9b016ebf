/**
 * fp16 graphs: the tiny ImageProj / FaceLocator / reference UNet in fp16 match their fp32 graphs within fp16
 * tolerance on CPU; fp16 computes in float16 on CUDA and in float32 over the fp16 weights elsewhere; the fp16 weights cache is written once beside a writable checkpoint (in the user cache
 * for read-only ones), reused, and rewritten only when the source or the cache file changes. Every
 * checkpoint these tests load is a copy in a temp folder they made; no test relies on the permissions of
 * a folder it did not create.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildImageProj } from "../src/models/image_proj.ts";
import { DataType } from "../src/onnx/proto.ts";
import { buildReferenceUNet } from "../src/models/reference_unet.ts";
import { parseUNetConfig } from "../src/models/unet_config.ts";
import { computeDType, DTypeError, parseDType, warnIfFp16OnCpu } from "../src/runtime/dtype.ts";
import { buildForDtype } from "../src/runtime/fp16_graph.ts";
import { loadFaceLocator, locateFace } from "../src/stages/networks/face_locator.ts";
import { loadImageProj, projectFaceEmbedding } from "../src/stages/networks/projections.ts";
import { loadReferenceUNet, runReferenceUNet } from "../src/stages/networks/unets.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";
import { userCacheDir } from "../src/weights/cache_dirs.ts";
import { fp16Weights, weightsForDtype } from "../src/weights/fp16_cache.ts";
import { WeightStore } from "../src/weights/store.ts";
import { REFERENCE, tinyModel } from "./helpers/shared.ts";
import { withEnv } from "./helpers/env.ts";
import { relL2 } from "./helpers/tensors.ts";

const NET = tinyModel("hallo", "net.pth");
const FP16_TOL = 5e-3;

/** The case configs of the reference set (tiny sizes), as the parity cases read them. */
function configs(): Record<string, Record<string, unknown>> {
  return JSON.parse(Deno.readTextFileSync(join(REFERENCE, "index.json"))).common.configs;
}

function refTensor(file: string, name: string): F32Tensor {
  const s = WeightStore.open(join(REFERENCE, file));
  return f32(s.get(name).shape, s.readF32(name));
}

/** Runs `fn` with the graph and per-user caches pointed at a fresh temp folder. */
async function withCaches(fn: (tmp: string) => Promise<void> | void, graphCache = true): Promise<void> {
  const tmp = Deno.makeTempDirSync({ prefix: "hallo-fp16-" });
  const vars = {
    XDG_CACHE_HOME: join(tmp, "xdg"),
    HALLO_GRAPH_CACHE: graphCache ? join(tmp, "graphs") : undefined,
  };
  try {
    await withEnv(vars, () => fn(tmp));
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
}

function fp16Files(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".safetensors")).sort();
  } catch {
    return [];
  }
}

const mtime = (p: string) => Deno.statSync(p).mtime!.getTime();

Deno.test("fp16 ImageProj and FaceLocator match fp32 within 5e-3 on CPU; fp16 weights cached beside the checkpoint", async () => {
  await withCaches(async (tmp) => {
    const cfg = configs();
    // NET is this module's own copy of the tiny checkpoint (tests/helpers/shared.ts), in a temp folder.
    const besideFp16 = join(NET, "..", ".hallo-cache", "fp16");

    const emb = refTensor("image_proj.safetensors", "face_emb");
    const ipc = cfg.image_proj as never;
    const ip32 = await loadImageProj(NET, { config: ipc, threads: 1 });
    const ip16 = await loadImageProj(NET, { config: ipc, threads: 1, dtype: "float16" });
    const a = await projectFaceEmbedding(ip32, emb);
    const b = await projectFaceEmbedding(ip16, emb);
    // The graph interface stays float32 whatever the precision inside.
    assert.equal(b.dtype, "float32");
    assert.deepEqual(b.shape, a.shape);
    const eImage = relL2(b.data, a.data);

    const video = refTensor("face_locator.safetensors", "face_mask_video");
    const flc = cfg.face_locator as never;
    const fl32 = await loadFaceLocator(NET, { config: flc, threads: 1 });
    const fl16 = await loadFaceLocator(NET, { config: flc, threads: 1, dtype: "float16" });
    const c = await locateFace(fl32, video);
    const d = await locateFace(fl16, video);
    assert.equal(d.dtype, "float32");
    const eFace = relL2(d.data, c.data);
    for (const m of [ip32, ip16, fl32, fl16]) await m.release();

    console.log(
      `fp16 vs fp32 rel L2: image_proj ${eImage.toExponential(2)}, face_locator ${eFace.toExponential(2)}`,
    );
    assert.ok(eImage <= FP16_TOL, `image_proj fp16 rel L2 ${eImage}`);
    assert.ok(eFace <= FP16_TOL, `face_locator fp16 rel L2 ${eFace}`);
    // fp16 really differs (weights and activations rounded): not an fp32 graph in disguise.
    assert.ok(eImage > 1e-6 && eFace > 1e-6);

    // The copy's folder is writable: the converted weights went beside net.pth, none to the user cache.
    const beside = fp16Files(besideFp16);
    assert.ok(
      beside.some((n) => n.startsWith("image_proj-")) && beside.some((n) => n.startsWith("face_locator-")),
      beside.join(", "),
    );
    assert.deepEqual(fp16Files(userCacheDir("fp16", join(NET, ".."))), []);
    assert.ok(userCacheDir("fp16", join(NET, "..")).startsWith(join(tmp, "xdg")));
  });
});

Deno.test("fp16 on CUDA binds the F16 initializers directly and computes in float16 behind a float32 interface", async () => {
  await withCaches(() => {
    const store = WeightStore.open(NET);
    const cfg = configs().image_proj as never;
    const built = buildForDtype(
      "image_proj",
      "float16",
      (w = store, dtype) => buildImageProj(w, cfg, { dtype }),
      { weights: store, files: [NET], device: "cuda" },
    );
    const g = built.graph;
    assert.equal(g.dtype, "float16");
    assert.equal(built.compute, "float16");
    const bound = g.boundKeys();
    assert.equal(bound.length, 4);
    for (const b of bound) {
      assert.equal(b.ref.dtype, "F16", b.key);
      assert.equal(b.ref.file, built.fp16?.file);
    }
    const keys = new Set(bound.map((b) => b.key));
    assert.ok(
      !g.nodes.some((n) => n.opType === "Cast" && n.inputs.some((i) => keys.has(i))),
      "no weight Cast",
    );
    assert.deepEqual(g.inputs.map((i) => i.elemType), [DataType.FLOAT]);
    assert.deepEqual(g.outputs.map((o) => o.elemType), [DataType.FLOAT]);
    // The first build marked the keys used in the original store (unused-key reports stay right).
    assert.ok(store.isUsed("imageproj.proj.weight"));
    // float32 asks for nothing: the source and files are the checkpoint's own.
    const same = weightsForDtype("image_proj", store, [...keys], "float32");
    assert.equal(same.source, store);
    assert.deepEqual(same.files, [NET]);
  });
});

Deno.test("fp16 on the CPU and WebGPU computes in float32 over the same F16 weights, rounding inputs and outputs", async () => {
  assert.equal(computeDType("float16", "cpu"), "float32");
  assert.equal(computeDType("float16", "webgpu"), "float32");
  assert.equal(computeDType("float16", undefined), "float32");
  assert.equal(computeDType("float16", "cuda"), "float16");
  assert.equal(computeDType("float32", "cuda"), "float32");
  await withCaches(() => {
    const store = WeightStore.open(NET);
    const unetDir = tinyModel("stable-diffusion-v1-5", "unet");
    const cfg = parseUNetConfig(JSON.parse(Deno.readTextFileSync(join(unetDir, "config.json"))));
    const shape = { batch: 2, contextBatch: 2, contextTokens: 4, height: 8, width: 8 };
    const build = (device: "cpu" | "webgpu" | "cuda") =>
      buildForDtype(
        "reference_unet",
        "float16",
        (w = store, dtype) => buildReferenceUNet(cfg, w, shape, { dtype }),
        { weights: store, files: [NET], device },
      );
    const cuda = build("cuda");
    assert.equal(cuda.graph.dtype, "float16");
    for (const device of ["cpu", "webgpu"] as const) {
      const built = build(device);
      assert.equal(built.graph.dtype, "float32", device);
      assert.equal(built.compute, "float32", device);
      // the same f16 weights, from the same cache file, as the float16 graph
      assert.deepEqual(built.files, cuda.files);
      const bound = built.graph.boundKeys();
      assert.deepEqual(bound.map((b) => b.key), cuda.graph.boundKeys().map((b) => b.key));
      assert.ok(bound.every((b) => b.ref.dtype === "F16" && b.ref.file === built.fp16?.file));
      const castsTo = (to: number) =>
        built.graph.nodes.filter((n) => n.opType === "Cast" && n.attrs?.to?.v === to).flatMap((n) =>
          n.inputs
        );
      // every weight is cast to float32 in-graph ...
      const toF32 = new Set(castsTo(DataType.FLOAT));
      assert.ok(bound.every((b) => toF32.has(b.key)), device);
      // ... and values are rounded to float16 only at the float inputs and outputs
      const floatInputs = built.graph.inputs.filter((i) => i.elemType === DataType.FLOAT).length;
      assert.equal(castsTo(DataType.FLOAT16).length, floatInputs + built.graph.outputs.length, device);
    }
  });
});

Deno.test("fp16 weights cache: written once beside a writable checkpoint, reused, rewritten when stale", async () => {
  await withCaches(async (tmp) => {
    const dir = join(tmp, "weights", "hallo");
    Deno.mkdirSync(dir, { recursive: true });
    const net = join(dir, "net.pth");
    Deno.copyFileSync(NET, net);
    const cfg = configs().face_locator as never;
    const video = refTensor("face_locator.safetensors", "face_mask_video");

    const first = await loadFaceLocator(net, { config: cfg, threads: 1, dtype: "float16" });
    const out1 = await locateFace(first, video);
    await first.release();
    const cacheDir = join(dir, ".hallo-cache", "fp16");
    const files = fp16Files(cacheDir);
    assert.equal(files.length, 1);
    assert.match(files[0], /^face_locator-[0-9a-f]{16}\.safetensors$/);
    const cacheFile = join(cacheDir, files[0]);
    const t1 = mtime(cacheFile);
    // Its tensors are F16 copies of the bound ones.
    const cached = WeightStore.open(cacheFile);
    assert.equal(cached.size, 16);
    assert.ok(cached.keys().every((k) => cached.get(k).dtype === "F16"));
    const w = WeightStore.open(net).readF32("face_locator.conv_in.weight");
    assert.deepEqual(cached.readF32("face_locator.conv_in.weight"), Float32Array.from(w, Math.f16round));

    await new Promise((r) => setTimeout(r, 20));
    const second = await loadFaceLocator(net, { config: cfg, threads: 1, dtype: "float16" });
    const out2 = await locateFace(second, video);
    await second.release();
    assert.equal(mtime(cacheFile), t1, "second load must not rewrite the cache");
    assert.deepEqual(fp16Files(cacheDir), files);
    assert.deepEqual(out2.data, out1.data);

    // A damaged cache file is detected and written again; a changed checkpoint gets a new cache file.
    const refs = [...WeightStore.open(net).keys()].filter((k) => k.startsWith("face_locator."))
      .map((k) => WeightStore.open(net).get(k));
    Deno.truncateSync(cacheFile, 100);
    const again = fp16Weights("face_locator", refs);
    assert.equal(again.written, true);
    assert.equal(again.file, cacheFile);
    assert.equal(fp16Weights("face_locator", refs).written, false);
    Deno.utimeSync(net, new Date(), new Date(Date.now() + 5000));
    const stale = fp16Weights("face_locator", refs);
    assert.equal(stale.written, true);
    assert.notEqual(stale.file, cacheFile);
    // Beside the checkpoint, compile() also gets the checkpoint so the graph root stays its folder.
    assert.deepEqual(stale.files, [net, stale.file]);
  });
});

Deno.test("a checkpoint folder without write permission gets its fp16 cache in the user cache", async () => {
  await withCaches((tmp) => {
    const dir = join(tmp, "ro");
    Deno.mkdirSync(dir);
    const net = join(dir, "net.pth");
    Deno.copyFileSync(NET, net);
    Deno.chmodSync(dir, 0o555);
    try {
      const store = WeightStore.open(net);
      const refs = store.keys().filter((k) => k.startsWith("imageproj.")).map((k) => store.get(k));
      const w = fp16Weights("image_proj", refs, store);
      assert.ok(w.file!.startsWith(userCacheDir("fp16", dir)), w.file);
      assert.deepEqual(w.files, [w.file]);
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["net.pth"]);
      assert.equal(w.source.has("imageproj.proj.weight"), true);
      assert.equal(w.source.get("imageproj.proj.weight").dtype, "F16");
      // Keys not collected are refused with a message saying why, not silently read in fp32.
      assert.throws(() => w.source.get("face_locator.conv_in.weight"), /not bound when the fp16 weights/);
    } finally {
      Deno.chmodSync(dir, 0o755);
    }
  });
});

Deno.test("fp16 reference UNet matches its fp32 graph on CPU (float32 bank and output)", async () => {
  await withCaches(async () => {
    const kwargs = configs().unet_additional_kwargs as never;
    const src = { weightsDir: tinyModel(), kwargs };
    const sample = refTensor("reference_unet_write_cfg.safetensors", "sample");
    const ctx = refTensor("reference_unet_write_cfg.safetensors", "encoder_hidden_states");
    const t = refTensor("reference_unet_write_cfg.safetensors", "timestep").data[0];
    const shape = {
      batch: sample.shape[0],
      contextBatch: ctx.shape[0],
      contextTokens: ctx.shape[1],
      height: sample.shape[2],
      width: sample.shape[3],
    };
    const res = [];
    for (const dtype of ["float32", "float16"] as const) {
      const m = await loadReferenceUNet(src, shape, { dtype, threads: 1 });
      res.push(await runReferenceUNet(m, sample, ctx, t));
      await m.session.release();
    }
    const [r32, r16] = res;
    const eOut = relL2(r16.outSample.data, r32.outSample.data);
    const eBank = Math.max(...r16.bank.map((e, i) => relL2(e.data.data, r32.bank[i].data.data)));
    console.log(
      `reference UNet fp16 vs fp32 rel L2: out_sample ${eOut.toExponential(2)}, bank max ${
        eBank.toExponential(2)
      }`,
    );
    assert.equal(r16.outSample.dtype, "float32");
    assert.ok(eOut <= FP16_TOL, `out_sample ${eOut}`);
    // Tiny random weights give norm1 outputs of small spread, where fp16 rounding weighs more.
    assert.ok(eBank <= 3e-2, `bank ${eBank}`);
  });
});

Deno.test("--dtype values and the one-time CPU warning", () => {
  assert.equal(parseDType("fp16"), "float16");
  assert.equal(parseDType("FP32"), "float32");
  assert.equal(parseDType("float16"), "float16");
  assert.throws(() => parseDType("int8"), DTypeError);
  assert.throws(() => parseDType("bf16"), /unknown dtype 'bf16': use fp32 or fp16/);
  const warn = console.warn;
  const lines: string[] = [];
  console.warn = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    assert.equal(warnIfFp16OnCpu("float16", "cuda"), false);
    assert.equal(warnIfFp16OnCpu("float32", "cpu"), false);
    warnIfFp16OnCpu("float16", undefined);
    warnIfFp16OnCpu("float16", "cpu");
  } finally {
    console.warn = warn;
  }
  // The earlier tests of this file may have warned already; never more than once per process.
  assert.ok(lines.length <= 1);
  assert.equal(warnIfFp16OnCpu("float16", "cpu"), false);
});
