/**
 * The runtime (src/runtime): devices that are not there fail loudly and never fall back to CPU, unknown device
 * names are clear errors, float16 tensors cross the ORT boundary intact (Deno's Float16Array quirk), and the
 * compile cache keys graphs by config, probes, dtype and checkpoint identity, falling back to the user cache for
 * read-only weight folders. Every cache lives in a temp dir (HALLO_GRAPH_CACHE / XDG_CACHE_HOME).
 */
import assert from "node:assert/strict";
import { join, sep } from "node:path";
import * as ort from "onnxruntime-node";
import { Graph } from "../src/onnx/graph.ts";
import { type Ctx, linear, silu } from "../src/onnx/layers.ts";
import { DataType } from "../src/onnx/proto.ts";
import { cacheDirFor, commonRoot, compile, type CompileKey } from "../src/runtime/cache.ts";
import { type Device, DeviceError, parseDevice } from "../src/runtime/device.ts";
import { Session } from "../src/runtime/session.ts";
import { fromOrt, toOrt } from "../src/runtime/tensors.ts";
import type { Tensor } from "../src/tensor.ts";
import { WeightStore } from "../src/weights/store.ts";
import * as R from "./helpers/ref_ops.ts";
import { expectClose, prng, randTensor, tempDir, writeSafetensors } from "./helpers/tensors.ts";
import { withEnv } from "./helpers/env.ts";

function reluModel(): Uint8Array {
  const g = new Graph("relu");
  g.output(g.op1("Relu", [g.input("x", [2])], { path: "act", outName: "y" }));
  return g.encode("/tmp");
}

// ---------------------------------------------------------------- devices

Deno.test("cuda and webgpu: a DeviceError saying how to get them, never a CPU session instead", async () => {
  const how: Record<string, RegExp> = {
    cuda: /deno install --allow-scripts=npm:onnxruntime-node/,
    webgpu: /Vulkan/,
  };
  const seen: unknown[] = [];
  const original = ort.InferenceSession.create;
  // record what Session.create asks ORT for: the requested EP alone, CPU never appended as a fallback
  ort.InferenceSession.create = ((...args: unknown[]) => {
    seen.push(args[1]);
    return (original as (...a: unknown[]) => unknown).apply(ort.InferenceSession, args);
  }) as typeof original;
  try {
    for (const device of ["cuda", "webgpu"] as const) {
      seen.length = 0;
      let session: Session | undefined;
      try {
        session = await Session.create(reluModel(), "/tmp", { device });
      } catch (e) {
        assert.ok(e instanceof DeviceError, `${device}: expected a DeviceError, got ${e}`);
        assert.match(e.message, new RegExp(`^device '${device}' is not available: `));
        assert.match(e.message, how[device]);
        assert.doesNotMatch(e.message, /\n/);
      }
      const opts = seen[0] as ort.InferenceSession.SessionOptions;
      assert.deepEqual(opts.executionProviders, [device]);
      if (session) {
        // the device exists on this machine: the session must be on it and work
        assert.equal(session.device, device);
        const y = await session.run({
          x: { dtype: "float32", shape: [2], data: Float32Array.from([-1, 2]) },
        });
        assert.deepEqual([...(y.y.data as Float32Array)], [0, 2]);
        await session.release();
      }
    }
  } finally {
    ort.InferenceSession.create = original;
  }
});

Deno.test("unknown device names are a clear DeviceError, from parseDevice and Session.create", async () => {
  for (const bad of ["tpu", "CUDA", "", "gpu"]) {
    assert.throws(() => parseDevice(bad), (e: unknown) => {
      assert.ok(e instanceof DeviceError);
      assert.equal(e.message, `unknown device '${bad}': use one of cpu, cuda, webgpu`);
      return true;
    });
  }
  for (const good of ["cpu", "cuda", "webgpu"]) assert.equal(parseDevice(good), good);
  await assert.rejects(
    () => Session.create(reluModel(), "/tmp", { device: "tpu" as Device }),
    (e: unknown) =>
      e instanceof DeviceError && /^unknown device 'tpu': use one of cpu, cuda, webgpu$/.test(e.message),
  );
  const s = await Session.create(reluModel(), "/tmp", { threads: 1 });
  assert.equal(s.device, "cpu");
  await s.release();
});

// ---------------------------------------------------------------- float16

Deno.test("float16 tensors round-trip through a session (Cast graph) as raw half bits", async () => {
  const g = new Graph("cast");
  const x16 = g.input("x16", [8], DataType.FLOAT16);
  const x32 = g.input("x32", [4], DataType.FLOAT);
  const up = g.op1("Cast", [x16], { path: "up", attrs: { to: DataType.FLOAT }, outName: "up" });
  g.output(up, "up", DataType.FLOAT);
  g.output(
    g.op1("Cast", [up], { path: "back", attrs: { to: DataType.FLOAT16 }, outName: "back" }),
    "back",
    DataType.FLOAT16,
  );
  g.output(
    g.op1("Cast", [x32], { path: "down", attrs: { to: DataType.FLOAT16 }, outName: "down" }),
    "down",
    DataType.FLOAT16,
  );
  const s = await Session.create(g.encode("/tmp"), "/tmp", { threads: 1 });
  // 1, -2, 0.5, 65504 (max), 2^-24 (smallest subnormal), 0, -0, +inf
  const bits = Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x0000, 0x8000, 0x7c00]);
  const values = [1, -2, 0.5, 65504, 2 ** -24, 0, -0, Infinity];
  const out = await s.run({
    x16: { dtype: "float16", shape: [8], data: bits },
    x32: { dtype: "float32", shape: [4], data: Float32Array.from([0.1, -1 / 3, 70000, 1e-8]) },
  });
  await s.release();
  assert.deepEqual([...(out.up.data as Float32Array)], values);
  for (const name of ["back", "down"]) {
    assert.equal(out[name].dtype, "float16");
    assert.equal(out[name].data.constructor, Uint16Array, `${name} comes back as raw bits, not Float16Array`);
  }
  assert.deepEqual([...out.back.data as Uint16Array], [...bits]);
  // round to nearest even: 0.1 -> 0x2e66, -1/3 -> 0xb555, overflow -> inf, underflow -> 0
  assert.deepEqual([...out.down.data as Uint16Array], [0x2e66, 0xb555, 0x7c00, 0x0000]);
  // the workaround hides the global Float16Array only while ORT looks
  if ("Float16Array" in globalThis) {
    toOrt({ dtype: "float16", shape: [1], data: Uint16Array.of(0x3c00) });
    assert.ok("Float16Array" in globalThis, "Float16Array restored");
  }
});

Deno.test("toOrt/fromOrt copy out of ORT's buffer and keep shapes and dtypes", () => {
  const cases: Tensor[] = [
    { dtype: "float32", shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
    { dtype: "int64", shape: [3], data: BigInt64Array.from([-1n, 0n, 2n ** 40n]) },
    { dtype: "int32", shape: [1, 2], data: Int32Array.from([-5, 7]) },
    { dtype: "uint8", shape: [2], data: Uint8Array.from([0, 255]) },
    { dtype: "float16", shape: [2], data: Uint16Array.from([0x3c00, 0xbc00]) },
  ];
  for (const t of cases) {
    const o = toOrt(t);
    assert.equal(o.size, t.data.length, `${t.dtype}: ORT sees every element`);
    const back = fromOrt(o);
    assert.equal(back.dtype, t.dtype);
    assert.deepEqual(back.shape, t.shape);
    assert.deepEqual([...back.data as ArrayLike<unknown> as unknown[]], [
      ...t.data as ArrayLike<unknown> as unknown[],
    ]);
    assert.notEqual(back.data.buffer, t.data.buffer, `${t.dtype}: fromOrt copies`);
  }
});

// ---------------------------------------------------------------- compile cache

Deno.test("commonRoot: deepest folder holding every file, by path component", () => {
  assert.equal(commonRoot(["/a/b/c/x.pth", "/a/b/d/y.pth"]), "/a/b");
  assert.equal(commonRoot(["/a/b/c/x.pth"]), "/a/b/c");
  assert.equal(commonRoot(["/a/b/x.pth", "/a/b/c/d/y.safetensors", "/a/b/c/z.bin"]), "/a/b");
  // component-wise, not a string prefix: /a/bc and /a/b share only /a
  assert.equal(commonRoot(["/a/bc/x", "/a/b/y"]), "/a");
  assert.equal(commonRoot(["/a/x", "/b/y"]), sep);
  assert.equal(commonRoot(["rel/dir/x", "rel/y"]), join(Deno.cwd(), "rel"));
  assert.equal(commonRoot([]), Deno.cwd());
});

/** A checkpoint `ckpt/w.safetensors` under a temp dir, and a build over it counting its calls. */
function cacheFixture(dir: string, sub = "ckpt") {
  const rand = prng(31);
  Deno.mkdirSync(join(dir, sub), { recursive: true });
  const w = randTensor(rand, [16, 8], 0.3), b = randTensor(rand, [16]);
  const file = writeSafetensors(join(dir, sub), "w.safetensors", { "fc.weight": w, "fc.bias": b });
  let builds = 0;
  const build = (layers = 1) => () => {
    builds++;
    const g = new Graph("fc");
    const c: Ctx = { g, w: WeightStore.open(file), prefix: "", attention: "fused" };
    let h = g.input("x", [2, 8]);
    h = linear(c, "fc", h, 8, 16);
    // padding nodes so a build costs measurably more than a cached read
    for (let i = 0; i < layers; i++) h = g.op1("Identity", [h], { path: `pad.${i}` });
    g.output(silu(c, "act", h), "y");
    return g;
  };
  const key = (over: Partial<CompileKey> = {}): CompileKey => ({
    network: "fc",
    config: { dim: 8 },
    dtype: "float32",
    files: [file],
    ...over,
  });
  const check = async (bytes: Uint8Array, root: string) => {
    const x = randTensor(prng(32), [2, 8]);
    const s = await Session.create(bytes, root, { threads: 1 });
    const y = (await s.run({ x })).y;
    await s.release();
    expectClose("cached graph output", y, R.silu(R.linear(x, w, b)));
  };
  return { file, build, key, check, builds: () => builds };
}

Deno.test("compile cache: same key is cached; config, probes, dtype and file mtime make new entries", async () => {
  const dir = tempDir("hallo-cache-");
  const cache = join(dir, "graphs");
  try {
    await withEnv({ HALLO_GRAPH_CACHE: cache }, async () => {
      const f = cacheFixture(dir);
      const first = compile(f.key(), f.build(2000));
      assert.equal(first.cached, false);
      assert.equal(f.builds(), 1);
      assert.ok(first.path?.startsWith(cache + sep), `${first.path} not in ${cache}`);
      assert.ok(first.graph);
      assert.equal(first.externalRoot, join(dir, "ckpt"));
      const second = compile(f.key(), f.build(2000));
      assert.equal(second.cached, true);
      assert.equal(f.builds(), 1, "a cached compile does not build");
      assert.equal(second.path, first.path);
      assert.deepEqual(second.bytes, first.bytes);
      assert.ok(
        second.buildSeconds < first.buildSeconds,
        `cached ${second.buildSeconds}s vs built ${first.buildSeconds}s`,
      );
      console.log(
        `  build ${(first.buildSeconds * 1e3).toFixed(1)} ms, cached ${
          (second.buildSeconds * 1e3).toFixed(2)
        } ms`,
      );
      await f.check(second.bytes, second.externalRoot);

      const paths = new Set([first.path]);
      const fresh = (what: string, k: CompileKey, extra: string[] = []) => {
        const before = f.builds();
        const c = compile(k, f.build(), extra);
        assert.equal(c.cached, false, `${what}: expected a new entry`);
        assert.equal(f.builds(), before + 1);
        assert.ok(!paths.has(c.path), `${what}: reused ${c.path}`);
        paths.add(c.path);
        assert.equal(compile(k, f.build(), extra).cached, true, `${what}: second compile cached`);
        return c;
      };
      fresh("config", f.key({ config: { dim: 8, other: 1 } }));
      fresh("probes", f.key({ probes: ["fc"] }), ["fc"]);
      fresh("dtype", f.key({ dtype: "float16" }));
      fresh("network", f.key({ network: "fc2" }));
      const st = Deno.statSync(f.file);
      Deno.utimeSync(f.file, st.atime ?? new Date(), new Date(st.mtime!.getTime() + 10_000));
      const touched = fresh("file mtime", f.key());
      await f.check(touched.bytes, touched.externalRoot);
      assert.equal([...Deno.readDirSync(cache)].filter((e) => e.name.endsWith(".onnx")).length, paths.size);
      assert.ok([...Deno.readDirSync(cache)].every((e) => !e.name.endsWith(".tmp")));
    });
    await withEnv({ HALLO_GRAPH_CACHE: "off" }, () => {
      const f = cacheFixture(dir, "ckpt2");
      const a = compile(f.key(), f.build()), b = compile(f.key(), f.build());
      assert.equal(a.cached || b.cached, false);
      assert.equal(a.path, undefined);
      assert.equal(f.builds(), 2);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a graph over a read-only weight folder still loads: the cache falls back to the user cache", async () => {
  const dir = tempDir("hallo-rocache-");
  const ckpt = join(dir, "ckpt");
  try {
    const f = cacheFixture(dir);
    // root ignores permission bits, so also put a file where the beside-the-weights cache folder would go
    Deno.writeTextFileSync(join(ckpt, ".hallo-cache"), "");
    Deno.chmodSync(ckpt, 0o555);
    const xdg = join(dir, "xdg");
    await withEnv({ HALLO_GRAPH_CACHE: undefined, XDG_CACHE_HOME: xdg }, async () => {
      const dirFor = cacheDirFor(ckpt);
      assert.ok(dirFor?.startsWith(join(xdg, "hallo-lab", "graphs") + sep), `cache dir ${dirFor}`);
      const a = compile(f.key(), f.build());
      assert.equal(a.cached, false);
      assert.ok(a.path?.startsWith(dirFor + sep));
      const b = compile(f.key(), f.build());
      assert.equal(b.cached, true);
      assert.equal(b.externalRoot, ckpt);
      await f.check(b.bytes, b.externalRoot);
      assert.deepEqual([...Deno.readDirSync(ckpt)].map((e) => e.name).sort(), [
        ".hallo-cache",
        "w.safetensors",
      ]);
    });
    // no writable cache anywhere: still builds and loads, uncached
    const blocked = join(dir, "blocked");
    Deno.writeTextFileSync(blocked, "");
    await withEnv({ HALLO_GRAPH_CACHE: undefined, XDG_CACHE_HOME: blocked }, async () => {
      assert.equal(cacheDirFor(ckpt), undefined);
      const c = compile(f.key(), f.build());
      assert.equal(c.cached, false);
      assert.equal(c.path, undefined);
      await f.check(c.bytes, c.externalRoot);
    });
  } finally {
    Deno.chmodSync(ckpt, 0o755);
    Deno.removeSync(dir, { recursive: true });
  }
});
