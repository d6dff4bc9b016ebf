/**
 * Reading ORT's node placement and choosing per-device layer forms, without a GPU: the verbose placement report
 * parses into nodes per provider, CPU nodes split into shape-only and compute by data dependence, ORT's
 * verbose chatter is dropped from what is passed on, and a WebGPU build emits MatMul/Softmax attention and
 * two-pass norms while the CPU build keeps its kernels.
 */
import assert from "node:assert/strict";
import { Graph } from "../src/onnx/graph.ts";
import * as L from "../src/onnx/layers.ts";
import { DataType } from "../src/onnx/proto.ts";
import {
  classifyPlacement,
  describeFallback,
  parsePlacement,
  passThrough,
} from "../src/runtime/placement.ts";
import { prng, randTensor, relL2, runTiny } from "./helpers/tensors.ts";

const T = "2026-12-02 02:36:17.616360868";
const V = (msg: string) =>
  `${T} [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp] ${msg}`;
const LOG = [
  `${T} [I:onnxruntime:, inference_session.cc:989 RegisterExecutionProvider] Having memory pattern enabled`,
  V("Node placements"),
  V(" Node(s) placed on [CPUExecutionProvider]. Number of nodes: 3"),
  V("  Concat (fold/Concat_3)"),
  V("  Round (r/Round_1)"),
  V("  Gather (Gather_token_46)"),
  V(" Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 2"),
  V("  Conv (conv_in/Conv_5_token_1)"),
  V("  Add (a/Add_0)"),
  `\x1b[0;93m${T} [W:onnxruntime:, session_state.cc:1397 VerifyEachNodeIsAssignedToAnEp] Some nodes were not ` +
  "assigned to the preferred execution providers\x1b[m",
  `${T} [W:onnxruntime:, graph.cc:42 Something] a real warning`,
  "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced",
  `${T} [V:onnxruntime:, x.cc:1 Dump] multi-line verbose entry`,
  "  its continuation line",
].join("\n");

/** x -> Add -> Round -> Add, with a shape path Shape -> Concat -> Reshape beside it. */
function graph(): Graph {
  const g = new Graph("g");
  const x = g.input("x", [4]);
  const n = g.input("n", [], DataType.INT64);
  const a = g.op1("Add", [x, x], { path: "a" });
  const r = g.op1("Round", [a], { path: "r" });
  const shape = g.op1("Concat", [g.op1("Shape", [r], { path: "fold" }), g.ints("fold/one", [1])], {
    path: "fold",
    attrs: { axis: 0 },
  });
  g.op1("Add", [n, n], { path: "idx" });
  g.output(g.op1("Reshape", [r, shape], { path: "fold" }), "y");
  return g;
}

Deno.test("placement: ORT's verbose report parses into nodes per provider", () => {
  const by = parsePlacement(LOG)!;
  assert.deepEqual(by.CPUExecutionProvider.map((n) => n.name), [
    "fold/Concat_3",
    "r/Round_1",
    "Gather_token_46",
  ]);
  assert.deepEqual(by.WebGpuExecutionProvider, [
    { opType: "Conv", name: "conv_in/Conv_5_token_1" },
    { opType: "Add", name: "a/Add_0" },
  ]);
  assert.equal(parsePlacement("no report here"), undefined);
  const all = parsePlacement(V(" All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 7"))!;
  assert.equal(all.WebGpuExecutionProvider.length, 7);
});

Deno.test("placement: CPU nodes are compute when their output depends on tensor data", () => {
  const g = graph();
  const names = (ns: { name: string }[]) => ns.map((n) => n.name);
  const names0 = g.nodes.map((n) => n.name);
  const round = names0.find((n) => n.startsWith("r/Round"))!;
  const concat = names0.find((n) => n.startsWith("fold/Concat"))!;
  const idx = names0.find((n) => n.startsWith("idx/Add"))!;
  const by = {
    CPUExecutionProvider: [
      { opType: "Round", name: round },
      { opType: "Concat", name: concat },
      { opType: "Add", name: idx },
      { opType: "Gather", name: "Gather_token_46" },
      { opType: "Softmax", name: "Softmax_fused_by_ort" },
    ],
  };
  const p = classifyPlacement(by, g);
  // Round computes on x; the Concat builds a shape; an Add over the int64 input `n` is index arithmetic; an
  // optimiser-made node is judged by its op type.
  assert.deepEqual(names(p.cpuCompute), [round, "Softmax_fused_by_ort"]);
  assert.deepEqual(names(p.cpuShape), [concat, idx, "Gather_token_46"]);
  // "All nodes placed on [CPU]" names none: the graph's own nodes stand for them
  const all = classifyPlacement({ CPUExecutionProvider: [{ opType: "?", name: "?" }] }, g);
  assert.ok(all.cpuCompute.some((n) => n.name === round));
  assert.match(
    describeFallback("vae_decoder", "webgpu", p.cpuCompute),
    /^vae_decoder: 2 compute node\(s\) placed on the CPU under --device webgpu: Round \(r\/Round_1\), Softmax/,
  );
});

Deno.test("placement: only warnings, errors and foreign lines of a captured log are passed on", () => {
  const kept = passThrough(LOG);
  assert.equal(kept.length, 2, kept.join("\n"));
  assert.match(kept[0], /a real warning/);
  assert.match(kept[1], /^Warning: maxDynamicUniformBuffers/);
});

Deno.test("device forms: WebGPU builds plain attention and two-pass norms; the CPU keeps its kernels", async () => {
  assert.deepEqual(L.formsFor("cpu"), { attention: "fused", norm: "kernel" });
  assert.deepEqual(L.formsFor("cuda"), { attention: "fused", norm: "kernel" });
  assert.deepEqual(L.formsFor("webgpu"), { attention: "plain", norm: "two_pass" });
  assert.equal(L.currentTarget(), "cpu");

  const rand = prng(7);
  const D = 16;
  const weights = {
    "a.to_q.weight": randTensor(rand, [D, D], 0.3),
    "a.to_k.weight": randTensor(rand, [D, D], 0.3),
    "a.to_v.weight": randTensor(rand, [D, D], 0.3),
    "a.to_out.0.weight": randTensor(rand, [D, D], 0.3),
    "a.to_out.0.bias": randTensor(rand, [D]),
    "n.weight": randTensor(rand, [D]),
    "n.bias": randTensor(rand, [D]),
    "ln.weight": randTensor(rand, [D]),
    "ln.bias": randTensor(rand, [D]),
  };
  // offset data: a one-pass variance would lose accuracy here, the two-pass one does not
  const x = randTensor(rand, [2, D, 4, 4]);
  for (let i = 0; i < x.data.length; i++) x.data[i] += 30;
  const build = (c: L.Ctx, i: Record<string, string>) => {
    const gn = L.groupNorm(c, "n", i.x, { channels: D, groups: 4, eps: 1e-6, rank: 4 });
    const tokens = L.transpose(c, "t", L.reshape(c, "t", gn, [0, D, -1]), [0, 2, 1]);
    const ln = L.layerNorm(c, "ln", tokens, D, 1e-5);
    return { y: L.attention(c, "a", ln, ln, { queryDim: D, heads: 2, dimHead: D / 2 }) };
  };
  const ops = (g: Graph) => new Set(g.nodes.map((n) => n.opType));
  const cpu = await runTiny(weights, { x }, build);
  // runTiny builds before its first await, so the whole build runs inside buildFor
  const gpu = await L.buildFor("webgpu", () => runTiny(weights, { x }, build));
  assert.equal(L.currentTarget(), "cpu", "the target is restored after the build");
  for (const op of ["MultiHeadAttention", "InstanceNormalization", "LayerNormalization"]) {
    assert.ok(ops(cpu.graph).has(op), `cpu build has ${op}`);
    assert.ok(!ops(gpu.graph).has(op), `webgpu build has no ${op}`);
  }
  assert.ok(ops(gpu.graph).has("Softmax") && ops(gpu.graph).has("ReduceMean"));
  // both forms compute the same function (here both on the CPU EP)
  const e = relL2(gpu.outputs.y.data as Float32Array, cpu.outputs.y.data as Float32Array);
  assert.ok(e < 1e-5, `forms differ by ${e}`);
});
