/**
 * The graph builder (src/onnx/graph.ts): names after module paths, any named value as an extra output, clear
 * errors for bad probes and mismatched checkpoints, weights as external data (zero copy), and a graph over the
 * tiny net.pth reproducing ImageProjModel's proj + norm computed by the TypeScript references.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { Graph, GraphBuildError } from "../src/onnx/graph.ts";
import { type Ctx, layerNorm, linear, reshape, silu } from "../src/onnx/layers.ts";
import { Session } from "../src/runtime/session.ts";
import { f32 } from "../src/tensor.ts";
import { readTensorF32 } from "../src/weights/convert.ts";
import { WeightStore } from "../src/weights/store.ts";
import * as R from "./helpers/ref_ops.ts";
import { tinyModel } from "./helpers/shared.ts";
import { expectClose, prng, randTensor, runTiny, tempDir, writeSafetensors } from "./helpers/tensors.ts";

/** Asserts `fn` throws a one-line GraphBuildError matching every pattern. */
function expectBuildError(fn: () => unknown, ...patterns: RegExp[]): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof GraphBuildError, `expected a GraphBuildError, got ${e}`);
    for (const p of patterns) assert.match(e.message, p);
    assert.doesNotMatch(e.message, /\n/);
    return;
  }
  assert.fail(`expected a GraphBuildError matching ${patterns.join(", ")}`);
}

/** A store over a temp safetensors file with the given tensors (caller removes `dir`). */
function tempStore(
  tensors: Record<string, ReturnType<typeof f32>>,
): { dir: string; file: string; store: WeightStore } {
  const dir = tempDir("hallo-graph-");
  const file = writeSafetensors(dir, "w.safetensors", tensors);
  return { dir, file, store: WeightStore.open(file) };
}

Deno.test("nodes and values are named after module paths; any named value is an extra output", async () => {
  const rand = prng(21);
  const x = randTensor(rand, [2, 3, 8]);
  const weights = {
    "blocks.0.proj.weight": randTensor(rand, [8, 8], 0.4),
    "blocks.0.proj.bias": randTensor(rand, [8]),
    "blocks.0.norm.weight": randTensor(rand, [8]),
    "blocks.0.norm.bias": randTensor(rand, [8]),
  };
  let matmulOut = "";
  const { outputs, graph } = await runTiny(weights, { x }, (c, i) => {
    const h = linear(c, "blocks.0.proj", i.x, 8, 8);
    matmulOut = c.g.nodes.find((n) => n.opType === "Gemm")!.outputs[0];
    const n = layerNorm(c, "blocks.0.norm", h, 8, 1e-5);
    return { y: silu(c, "blocks.0.act", n) };
  }, { extra: ["blocks.0.proj", "blocks.0.norm", matmulOutName()] });

  // node names start with their module path; a module's result is the value named exactly its path
  for (const n of graph.nodes) assert.match(n.name, /^(blocks\.0\.(proj|norm|act)|y)\/[A-Za-z]+_\d+$/);
  assert.ok(
    graph.nodes.some((n) => n.outputs.includes("blocks.0.proj") && n.name.startsWith("blocks.0.proj/")),
  );
  assert.ok(
    graph.nodes.some((n) => n.outputs.includes("blocks.0.norm") && n.name.startsWith("blocks.0.norm/")),
  );
  assert.equal(matmulOut, matmulOutName());

  const proj = R.linear(x, weights["blocks.0.proj.weight"], weights["blocks.0.proj.bias"]);
  const norm = R.layerNorm(proj, weights["blocks.0.norm.weight"], weights["blocks.0.norm.bias"], 1e-5);
  expectClose("probe blocks.0.proj", outputs["blocks.0.proj"], proj);
  expectClose("probe blocks.0.norm", outputs["blocks.0.norm"], norm);
  expectClose(
    "probe of an inner value (the 2-D Gemm before the reshape back)",
    outputs[matmulOut],
    { ...proj, shape: [6, 8] },
  );
  expectClose("output", outputs.y, R.silu(norm));
  assert.deepEqual(Object.keys(outputs).sort(), ["blocks.0.norm", "blocks.0.proj", matmulOut, "y"].sort());
});

/** The builder's deterministic name for the first node's output: `${path}/${op}_${counter}:0`. */
function matmulOutName(): string {
  return "blocks.0.proj/Gemm_1:0";
}

Deno.test("a probe naming no value is a clear error", () => {
  const g = new Graph("tinynet");
  g.output(g.op1("Relu", [g.input("x", [2])], { path: "act", outName: "act" }));
  expectBuildError(
    () => g.encode("/tmp", ["act", "down_blocks.9.attn"]),
    /probe 'down_blocks\.9\.attn'/,
    /tinynet/,
  );
  // a valid probe of the same graph encodes
  assert.ok(g.encode("/tmp", ["act"]).length > 0);
});

Deno.test("checkpoint shape mismatch, missing key, double binding and out-of-tree files are clear errors", () => {
  const rand = prng(22);
  const { dir, file, store } = tempStore({ "net.fc.weight": randTensor(rand, [7, 10]) });
  try {
    const g = new Graph("t");
    const c: Ctx = { g, w: store, prefix: "net.", attention: "fused" };
    const x = g.input("x", [1, 12]);
    expectBuildError(
      () => linear(c, "fc", x, 12, 7, false),
      /'net\.fc\.weight'/,
      /\[7,10\]/,
      /\[7,12\]/,
      new RegExp(file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")),
    );
    expectBuildError(() => linear(c, "fc2", x, 12, 7), /no tensor 'net\.fc2\.weight'/, /\[7,12\]/);
    g.weight(store, "net.fc.weight", [7, 10]);
    expectBuildError(
      () => g.weight(store, "net.fc.weight", [70, 1]),
      /'net\.fc\.weight'/,
      /\[7,10\]/,
      /\[70,1\]/,
    );
    // ORT refuses external data outside the model's folder, so encoding for such a folder fails early
    expectBuildError(() => g.encode(join(dir, "sub")), /not inside/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("weights are external data into the checkpoint, never copied into the model", () => {
  const rand = prng(23);
  const { dir, file, store } = tempStore({
    "fc.weight": randTensor(rand, [64, 64]),
    "fc.bias": randTensor(rand, [64]),
  });
  try {
    const g = new Graph("t");
    const c: Ctx = { g, w: store, prefix: "", attention: "fused" };
    g.output(linear(c, "fc", g.input("x", [1, 64]), 64, 64));
    const bytes = g.encode(dir);
    assert.deepEqual(g.externalFiles(), [file]);
    assert.deepEqual(g.boundKeys().map((b) => b.key).sort(), ["fc.bias", "fc.weight"]);
    assert.ok(bytes.length < 2048, `model is ${bytes.length} bytes: weights (16 KiB) were inlined`);
    assert.ok(new TextDecoder().decode(bytes).includes("w.safetensors"));
    assert.deepEqual(store.unusedKeys(), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("float16 graph: float32 checkpoint weights are cast in-graph", async () => {
  const rand = prng(24);
  const x = randTensor(rand, [2, 16]);
  const w = randTensor(rand, [8, 16], 0.3), b = randTensor(rand, [8]);
  const { dir, store } = tempStore({ "fc.weight": w, "fc.bias": b });
  try {
    const g = new Graph("t16", "float16");
    const c: Ctx = { g, w: store, prefix: "", attention: "fused" };
    const xin = g.input("x", [2, 16], 1 /* FLOAT */);
    const x16 = g.op1("Cast", [xin], { path: "in", attrs: { to: g.floatType } });
    const y = linear(c, "fc", x16, 16, 8);
    g.output(g.op1("Cast", [y], { path: "out", attrs: { to: 1 }, outName: "y" }), "y", 1);
    const s = await Session.create(g.encode(dir), dir, { threads: 1 });
    const out = (await s.run({ x })).y;
    await s.release();
    const e = expectClose("float16 linear", out, R.linear(x, w, b), 2e-3);
    console.log(`  float16 linear rel L2 ${e.toExponential(2)}`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a graph with external data into the tiny net.pth reproduces imageproj.proj + imageproj.norm", async () => {
  const pth = tinyModel("hallo", "net.pth");
  const store = WeightStore.open(pth);
  const ref = (k: string) => {
    const r = store.get(k);
    return f32(r.shape, readTensorF32(r));
  };
  const pw = ref("imageproj.proj.weight"), pb = ref("imageproj.proj.bias");
  const nw = ref("imageproj.norm.weight"), nb = ref("imageproj.norm.bias");
  // every size from the checkpoint's shapes, none assumed
  const [projOut, clipDim] = pw.shape;
  const d = nw.shape[0];
  const tokens = projOut / d;

  const g = new Graph("image_proj_test");
  const c: Ctx = { g, w: store, prefix: "imageproj.", attention: "fused" };
  const x = g.input("image_embeds", ["batch", clipDim]);
  const t = reshape(c, "proj", linear(c, "proj", x, clipDim, projOut), [-1, tokens, d]);
  g.output(layerNorm(c, "norm", t, d, 1e-5), "tokens");
  const root = dirname(pth);
  const bytes = g.encode(root, ["proj"]);
  assert.deepEqual(g.externalFiles(), [pth]);
  assert.ok(bytes.length < 4096);

  const emb = randTensor(prng(25), [3, clipDim]);
  const s = await Session.create(bytes, root, { threads: 1 });
  const out = await s.run({ image_embeds: emb });
  await s.release();
  const proj = R.linear(emb, pw, pb);
  const norm = R.layerNorm(f32([3, tokens, d], proj.data), nw, nb, 1e-5);
  const e1 = expectClose("net.pth imageproj.proj", out.proj, proj);
  const e2 = expectClose("net.pth imageproj.norm", out.tokens, norm);
  console.log(`  net.pth imageproj.proj rel L2 ${e1.toExponential(2)}, norm ${e2.toExponential(2)}`);
  assert.ok(["imageproj.proj.weight", "imageproj.norm.bias"].every((k) => store.isUsed(k)));
});
