/**
 * Shape inference and FLOP counting over built graphs (src/onnx/shape_infer.ts, src/onnx/flops.ts) on small
 * graphs whose shapes and FLOPs are worked out by hand; a multiply-add counts 2 FLOPs.
 */
import assert from "node:assert/strict";
import { Graph } from "../src/onnx/graph.ts";
import { graphCost, opClass } from "../src/onnx/flops.ts";
import { inferShapes, ShapeInferenceError } from "../src/onnx/shape_infer.ts";
import * as L from "../src/onnx/layers.ts";
import { LayoutRecorder } from "../src/tiny/layout.ts";

function ctx(name: string): L.Ctx {
  return { g: new Graph(name), w: new LayoutRecorder(), prefix: "", attention: "fused" };
}

Deno.test("a 3x3 conv with padding 1 and bias: 2 x out elements x Cin x 9 + bias adds", () => {
  const c = ctx("conv");
  const x = c.g.input("x", [1, 3, 8, 8]);
  c.g.output(L.conv2d(c, "conv", x, { inC: 3, outC: 4, k: 3, pad: 1 }));
  const cost = graphCost(c.g);
  // out (1, 4, 8, 8) = 256 elements, each 3 x 3 x 3 = 27 multiply-adds, plus one bias add
  assert.equal(cost.flops.conv, 2 * 256 * 27 + 256);
  assert.equal(cost.totalFlops, cost.flops.conv);
  assert.equal(cost.weightBytes, (4 * 3 * 9 + 4) * 4);
});

Deno.test("a strided grouped conv: output size floor((in + pads - k) / stride) + 1, Cin/groups per output", () => {
  const c = ctx("conv_s2");
  const x = c.g.input("x", [2, 4, 9, 9]);
  const y = L.conv2d(c, "conv", x, {
    inC: 4,
    outC: 6,
    k: 3,
    stride: 2,
    pad: [0, 0, 1, 1],
    groups: 2,
    bias: false,
  });
  c.g.output(y);
  // (9 + 0 + 1 - 3) / 2 + 1 = 4 (floor)
  assert.deepEqual(inferShapes(c.g).dims.get(y), [2, 6, 4, 4]);
  assert.equal(graphCost(c.g).flops.conv, 2 * (2 * 6 * 4 * 4) * (2 * 9));
});

Deno.test("a batched MatMul: 2 x batch x M x N x K", () => {
  const g = new Graph("mm");
  const a = g.input("a", [2, 5, 7]);
  const b = g.input("b", [7, 3]);
  const y = g.op1("MatMul", [a, b], { path: "mm" });
  g.output(y);
  assert.deepEqual(inferShapes(g).dims.get(y), [2, 5, 3]);
  const cost = graphCost(g);
  assert.equal(cost.flops.matmul, 2 * 2 * 5 * 3 * 7);
  assert.equal(cost.totalFlops, 420);
});

Deno.test("linear over a 3-D input: shapes flow through Shape/Slice/Concat/Reshape, Gemm counts 2MNK + bias", () => {
  const c = ctx("linear");
  const x = c.g.input("x", [2, 3, 8]);
  const y = L.linear(c, "proj", x, 8, 5);
  c.g.output(y);
  assert.deepEqual(inferShapes(c.g).dims.get(y), [2, 3, 5]);
  const cost = graphCost(c.g);
  assert.equal(cost.flops.matmul, 2 * 6 * 5 * 8 + 6 * 5);
  assert.equal(cost.flops.other, 0, "reshapes and shape arithmetic cost nothing");
});

Deno.test("multi-head attention: Q K^T and P V (2 B S L D each) plus 5 FLOPs of softmax per score", () => {
  const g = new Graph("mha");
  const q = g.input("q", [2, 10, 16]);
  const k = g.input("k", [2, 12, 16]);
  const v = g.input("v", [2, 12, 16]);
  const y = g.op1("MultiHeadAttention", [q, k, v], {
    path: "attn",
    domain: "com.microsoft",
    attrs: { num_heads: 4, scale: { float: 0.5 } },
  });
  g.output(y);
  assert.deepEqual(inferShapes(g).dims.get(y), [2, 10, 16]);
  const cost = graphCost(g);
  // B=2, S=10, L=12, D=16, heads=4: 2*2*10*12*(16+16) + 5*(2*4*10*12)
  assert.equal(cost.flops.attention, 15360 + 4800);
  // the CPU kernel materialises every score: 2*4*10*12 floats
  assert.equal(cost.attentionScoresBytes, 960 * 4);
  // inputs (3 x 320 + 384 + 384 floats alive) + output 320 + scores 960, all at once
  assert.equal(cost.activationPeakBytes, (320 + 384 + 384 + 320 + 960) * 4);
});

Deno.test("a full attention layer: projections count as matmul, the kernel as attention", () => {
  const c = ctx("attn");
  const x = c.g.input("x", [1, 6, 8]);
  c.g.output(L.attention(c, "attn", x, x, { queryDim: 8, heads: 2, dimHead: 4 }));
  const cost = graphCost(c.g);
  // q, k, v: 2*6*8*8 each without bias; out: 2*6*8*8 + 6*8 bias
  assert.equal(cost.flops.matmul, 4 * 2 * 6 * 8 * 8 + 6 * 8);
  assert.equal(cost.flops.attention, 2 * 6 * 6 * (8 + 8) + 5 * 2 * 6 * 6);
});

Deno.test("group norm counts 7 FLOPs per element as norm, its affine pair as other", () => {
  const c = ctx("gn");
  const x = c.g.input("x", [2, 8, 4, 4]);
  c.g.output(L.groupNorm(c, "norm", x, { channels: 8, groups: 4, eps: 1e-5, rank: 4 }));
  const cost = graphCost(c.g);
  assert.equal(cost.flops.norm, 7 * 256);
  assert.equal(cost.flops.other, 2 * 256);
});

Deno.test("activation peak frees each value after its last reader", () => {
  const g = new Graph("chain");
  const x = g.input("x", [1000]);
  const a = g.op1("Relu", [x], { path: "a" });
  const b = g.op1("Relu", [a], { path: "b" });
  g.output(g.op1("Relu", [b], { path: "c" }));
  // never more than one input and one output alive: 2 x 1000 floats (3 if nothing were freed)
  assert.equal(graphCost(g).activationPeakBytes, 2 * 1000 * 4);
});

Deno.test("a symbolic input needs its dims; an op without a rule is named in the error", () => {
  const g = new Graph("sym");
  const x = g.input("z", ["batch", 4]);
  g.output(g.op1("Relu", [x], { path: "r" }));
  assert.throws(() => graphCost(g), /input 'z' has dims \[batch,4\]; give its shape/);
  assert.equal(graphCost(g, { z: [3, 4] }).totalFlops, 12);
  const h = new Graph("odd");
  h.output(h.op1("Einsum", [h.input("x", [2, 2])], { path: "e" }));
  assert.throws(
    () => inferShapes(h),
    (e) => e instanceof ShapeInferenceError && /no shape rule for op Einsum/.test(e.message),
  );
});

Deno.test("op classes cover the fused ops ORT's optimiser makes of ours", () => {
  assert.equal(opClass("FusedConv"), "conv");
  assert.equal(opClass("FusedMatMul"), "matmul");
  assert.equal(opClass("Gemm"), "matmul");
  assert.equal(opClass("MultiHeadAttention"), "attention");
  assert.equal(opClass("InstanceNormalization"), "norm");
  assert.equal(opClass("QuickGelu"), "other");
});
