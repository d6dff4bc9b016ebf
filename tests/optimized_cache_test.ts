/**
 * The ORT-optimised model cache: a UNet loaded through it (first load writing the entry, second load reading
 * it with optimisation disabled) gives the uncached outputs bit for bit; a damaged or partial entry is never
 * used but rebuilt; new weights replace the old entry; `weights clean` finds entries beside the checkpoints
 * and in the user cache; small graphs are not copied. Everything runs on a copy of the tiny checkpoints in a
 * temp folder (tests/reference is never written).
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { Graph } from "../src/onnx/graph.ts";
import { linear } from "../src/onnx/layers.ts";
import type { Ctx } from "../src/onnx/layers.ts";
import { externalData } from "../src/onnx/proto_read.ts";
import type { HalloUNetKwargs } from "../src/models/unet_config.ts";
import { readCase, readIndex } from "../src/parity/reference.ts";
import {
  loadDenoisingUNet,
  loadReferenceUNet,
  predictNoise,
  runReferenceUNet,
} from "../src/stages/networks/unets.ts";
import type { F32Tensor } from "../src/tensor.ts";
import { userCacheDir } from "../src/weights/cache_dirs.ts";
import { findCompiledCaches, removeCaches } from "../src/weights/clean_caches.ts";
import { WeightStore } from "../src/weights/store.ts";
import { withEnv } from "./helpers/env.ts";
import { REFERENCE, tinyModel } from "./helpers/shared.ts";
import { denoisingCase } from "./helpers/denoising_case.ts";

const index = readIndex(REFERENCE);
const kwargs = index.common?.configs?.unet_additional_kwargs as HalloUNetKwargs;

/**
 * A copy of the tiny UNet checkpoints in a temp folder, the caches pointed inside it, HALLO_OPTIMIZED_CACHE
 * set to `cacheMode` ("all": cache even these small graphs; "": unset).
 */
async function withTinyCopy(fn: (weights: string) => Promise<void>, cacheMode = "all"): Promise<void> {
  const tmp = Deno.makeTempDirSync({ prefix: "hallo-optcache-" });
  const weights = join(tmp, "pretrained_models");
  Deno.mkdirSync(join(weights, "hallo"), { recursive: true });
  Deno.mkdirSync(join(weights, "stable-diffusion-v1-5", "unet"), { recursive: true });
  Deno.copyFileSync(tinyModel("hallo", "net.pth"), join(weights, "hallo", "net.pth"));
  const cfg = join("stable-diffusion-v1-5", "unet", "config.json");
  Deno.copyFileSync(tinyModel(cfg), join(weights, cfg));
  try {
    await withEnv(
      {
        XDG_CACHE_HOME: join(tmp, "xdg"),
        HALLO_GRAPH_CACHE: undefined,
        HALLO_OPTIMIZED_CACHE: cacheMode || undefined,
      },
      () => fn(weights),
    );
  } finally {
    Deno.chmodSync(join(weights, "hallo"), 0o755);
    Deno.removeSync(tmp, { recursive: true });
  }
}

function caseTensors(name: string): (k: string) => F32Tensor {
  const c = readCase(REFERENCE, index, name);
  return (k) => c.tensors.get(k) as F32Tensor;
}

/** Every output of the reference UNet on the public case, concatenated. */
async function referenceOutputs(weights: string, mmapWeights = false): Promise<Float32Array[]> {
  const t = caseTensors("reference_unet_write_cfg");
  const sample = t("sample"), ctx = t("encoder_hidden_states");
  const shape = {
    batch: sample.shape[0],
    contextBatch: ctx.shape[0],
    contextTokens: ctx.shape[1],
    height: sample.shape[2],
    width: sample.shape[3],
  };
  const m = await loadReferenceUNet({ weightsDir: weights, kwargs }, shape, { threads: 1, mmapWeights });
  try {
    const r = await runReferenceUNet(m, sample, ctx, t("timestep").data[0]);
    return [r.outSample.data, ...r.bank.map((e) => e.data.data)];
  } finally {
    await m.session.release();
  }
}

/** The denoising UNet's noise prediction on the public case. */
async function denoisingOutputs(weights: string): Promise<Float32Array[]> {
  const { src, shape, x } = denoisingCase();
  const m = await loadDenoisingUNet({ ...src, weightsDir: weights }, shape, { threads: 1 });
  try {
    return [(await predictNoise(m, x)).noisePred.data];
  } finally {
    await m.session.release();
  }
}

function assertSameBits(a: Float32Array[], b: Float32Array[], what: string): void {
  assert.equal(a.length, b.length, `${what}: output count`);
  a.forEach((x, i) => {
    const xb = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    const yb = new Uint8Array(b[i].buffer, b[i].byteOffset, b[i].byteLength);
    assert.ok(xb.length === yb.length && xb.every((v, j) => v === yb[j]), `${what}: output ${i} differs`);
  });
}

/** Runs `fn` and returns what it printed on stderr (console.error and console.warn). */
async function captured<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const [err, warn] = [console.error, console.warn];
  console.error = console.warn = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { value: await fn(), lines };
  } finally {
    [console.error, console.warn] = [err, warn];
  }
}

const optimizedDir = (weights: string) => join(weights, "hallo", ".hallo-cache", "optimized");
const entries = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
const written = (lines: string[]) =>
  lines.filter((l) => /^cached the optimised model in .* on disk\)$/.test(l));

for (const [name, run] of [["reference", referenceOutputs], ["denoising", denoisingOutputs]] as const) {
  Deno.test(`${name} UNet: cached optimised model gives the uncached outputs bit for bit, on first and later loads`, async () => {
    await withTinyCopy(async (weights) => {
      const plain = await withEnv({ HALLO_OPTIMIZED_CACHE: "off" }, () => run(weights));
      const first = await captured(() => run(weights));
      assert.equal(written(first.lines).length, 1, first.lines.join("\n"));
      const [entry] = entries(optimizedDir(weights));
      assert.deepEqual(entries(join(optimizedDir(weights), entry)), [
        "manifest.json",
        "model.data",
        "model.onnx",
      ]);
      const manifest = join(optimizedDir(weights), entry, "manifest.json");
      const stamp = Deno.statSync(manifest).mtime?.getTime();
      assertSameBits(first.value, plain, "first load (optimised and saved)");

      const second = await captured(() => run(weights));
      assert.deepEqual(second.lines, [], "a second load neither writes nor warns");
      assert.deepEqual(entries(optimizedDir(weights)), [entry]);
      assert.equal(Deno.statSync(manifest).mtime?.getTime(), stamp);
      assertSameBits(second.value, plain, "second load (from the cache)");
    });
  });
}

Deno.test("weights memory-mapped (no pre-packing) get an entry of their own, with the uncached outputs", async () => {
  await withTinyCopy(async (weights) => {
    const plain = await withEnv({ HALLO_OPTIMIZED_CACHE: "off" }, () => referenceOutputs(weights, true));
    await captured(() => referenceOutputs(weights));
    const [packed] = entries(optimizedDir(weights));
    const first = await captured(() => referenceOutputs(weights, true));
    assert.equal(written(first.lines).length, 1, "not served by the pre-packed entry");
    assert.equal(entries(optimizedDir(weights)).length, 2);
    assert.ok(entries(optimizedDir(weights)).includes(packed), "the pre-packed entry is kept");
    assertSameBits(first.value, plain, "first mmap load");
    const second = await captured(() => referenceOutputs(weights, true));
    assert.deepEqual(second.lines, []);
    assertSameBits(second.value, plain, "second mmap load");
  });
});

Deno.test("a damaged or partial cached entry is never used: it is rebuilt and the outputs stay the same", async () => {
  await withTinyCopy(async (weights) => {
    const plain = await withEnv({ HALLO_OPTIMIZED_CACHE: "off" }, () => referenceOutputs(weights));
    await captured(() => referenceOutputs(weights));
    const dir = optimizedDir(weights);
    const [entry] = entries(dir);
    const file = (f: string) => join(dir, entry, f);
    const flipByte = (f: string, at: number) => {
      const b = Deno.readFileSync(file(f));
      b[at] ^= 0x55;
      Deno.writeFileSync(file(f), b);
    };
    const damages: [string, () => void, RegExp][] = [
      [
        "truncated data",
        () => Deno.truncateSync(file("model.data"), 1000),
        /model\.data has 1000 bytes, not \d+/,
      ],
      ["flipped data byte", () => flipByte("model.data", 0), /model\.data does not match its sampled hash/],
      ["flipped model byte", () => flipByte("model.onnx", 100), /model\.onnx does not match its hash/],
      ["no manifest", () => Deno.removeSync(file("manifest.json")), /no readable manifest\.json/],
      ["no data file", () => Deno.removeSync(file("model.data")), /model\.data has no bytes/],
    ];
    for (const [what, damage, problem] of damages) {
      damage();
      // a killed writer's leftover is a .tmp folder under another name: never read, not in the way
      Deno.mkdirSync(join(dir, `${entry}.999-dead.tmp`), { recursive: true });
      Deno.writeFileSync(join(dir, `${entry}.999-dead.tmp`, "model.onnx"), new Uint8Array(7));
      const r = await captured(() => referenceOutputs(weights));
      assert.ok(r.lines.some((l) => problem.test(l)), `${what}: ${r.lines.join("\n")}`);
      assert.equal(written(r.lines).length, 1, `${what}: rebuilt`);
      assertSameBits(r.value, plain, what);
      const again = await captured(() => referenceOutputs(weights));
      assert.deepEqual(again.lines, [], `${what}: the rebuilt entry is used`);
    }
  });
});

Deno.test("new weights get a new entry and the entry of the old weights is removed", async () => {
  await withTinyCopy(async (weights) => {
    await captured(() => referenceOutputs(weights));
    const [old] = entries(optimizedDir(weights));
    const net = join(weights, "hallo", "net.pth");
    Deno.utimeSync(net, new Date(), new Date(Date.now() + 60_000));
    const r = await captured(() => referenceOutputs(weights));
    assert.equal(written(r.lines).length, 1);
    const now = entries(optimizedDir(weights));
    assert.equal(now.length, 1);
    assert.notEqual(now[0], old);
    assert.equal(now[0].split("-")[0], old.split("-")[0], "same graph slot");
  });
});

Deno.test("weights clean removes optimised models beside the checkpoints and in the user cache", async () => {
  await withTinyCopy(async (weights) => {
    await captured(() => referenceOutputs(weights));
    const beside = findCompiledCaches(weights);
    assert.ok(beside.some((e) => e.where === "beside" && e.path === dirname(optimizedDir(weights))));
    removeCaches(beside);
    assert.throws(() => Deno.statSync(optimizedDir(weights)), Deno.errors.NotFound);

    // a read-only checkpoint folder: the entry goes to the per-user cache, which clean finds too
    const hallo = join(weights, "hallo");
    Deno.chmodSync(hallo, 0o555);
    await captured(() => referenceOutputs(weights));
    const user = userCacheDir("optimized", hallo);
    assert.equal(entries(user).length, 1);
    const found = findCompiledCaches(weights).filter((e) => e.where === "user optimized");
    assert.deepEqual(found.map((e) => e.path), [user]);
    assert.ok(found[0].bytes > 0);
    removeCaches(found);
    assert.throws(() => Deno.statSync(user), Deno.errors.NotFound);
  });
});

Deno.test("graphs reading under 64 MiB of weights are not copied into the cache unless asked", async () => {
  await withTinyCopy(async (weights) => {
    const r = await captured(() => referenceOutputs(weights));
    assert.deepEqual(written(r.lines), []);
    assert.throws(() => Deno.statSync(optimizedDir(weights)), Deno.errors.NotFound);
  }, "");
});

Deno.test("externalData names the files a model's weights point at and the bytes read from them", () => {
  const pth = tinyModel("hallo", "net.pth");
  const store = WeightStore.open(pth);
  const g = new Graph("external_data_test");
  const c: Ctx = { g, w: store, prefix: "imageproj.", attention: "fused" };
  const [out, dim] = store.get("imageproj.proj.weight").shape;
  const x = g.input("x", [1, dim]);
  g.output(linear(c, "proj", x, dim, out), "y");
  const ext = externalData(g.encode(dirname(pth)));
  assert.deepEqual(ext.locations, ["net.pth"]);
  assert.equal(ext.bytes, (out * dim + out) * 4);

  const inline = new Graph("inline");
  const y = inline.input("y", [2]);
  inline.output(
    inline.op1("Add", [y, inline.constant("one", Float32Array.of(1, 1), [2])], { path: "add" }),
    "z",
  );
  assert.deepEqual(externalData(inline.encode(Deno.cwd())), { locations: [], bytes: 0 });
});
