/**
 * `fp16Rounding`: a float32 graph over fp16 weights (how fp16 networks run on the CPU and WebGPU) rounds its
 * inputs and outputs to fp16 and nothing in between. Known answers on ORT's CPU EP: an input of 2049 reads as
 * 2048 (fp16 has no odd integers above 2048), (x + 1) - x is 1 where fp16 arithmetic would give 0, and x / 3
 * comes out as the fp16 nearest to 2048 / 3.
 */
import assert from "node:assert/strict";
import { Graph } from "../src/onnx/graph.ts";
import { fp16Rounding } from "../src/onnx/f32_interface.ts";
import { DataType } from "../src/onnx/proto.ts";
import { Session } from "../src/runtime/session.ts";
import { f32 } from "../src/tensor.ts";
import { tempDir } from "./helpers/tensors.ts";

/** y = x, (x + 1) - x and x / 3, in the graph's own float type. */
function build(dtype: "float32" | "float16"): Graph {
  const g = new Graph("rounding", dtype);
  const x = g.input("x", [1]);
  const one = g.floats("one", [1], [1]);
  const three = g.floats("three", [3], [1]);
  g.output(g.op1("Identity", [x], { path: "same", outName: "same" }));
  const plus = g.op1("Add", [x, one], { path: "plus" });
  g.output(g.op1("Sub", [plus, x], { path: "diff", outName: "diff" }));
  g.output(g.op1("Div", [x, three], { path: "third", outName: "third" }));
  return g;
}

async function run(g: Graph, x: number): Promise<Record<string, number>> {
  const dir = tempDir("hallo-fp16-rounding-");
  try {
    const s = await Session.create(g.encode(dir), dir, { threads: 1 });
    const out = await s.run({ x: f32([1], Float32Array.of(x)) });
    await s.release();
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, (v.data as Float32Array)[0]]));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("fp16Rounding: inputs and outputs rounded to fp16, float32 arithmetic in between", async () => {
  const out = await run(fp16Rounding(build("float32")), 2049);
  assert.equal(out.same, 2048);
  assert.equal(out.diff, 1);
  assert.equal(out.third, Math.f16round(2048 / 3));
  assert.notEqual(out.third, Math.fround(2048 / 3));
});

Deno.test("fp16Rounding adds one Cast pair per float input and output, none inside", () => {
  const g = fp16Rounding(build("float32"));
  const casts = g.nodes.filter((n) => n.opType === "Cast");
  assert.equal(casts.length, 2 * (1 + 3));
  assert.equal(casts.filter((n) => n.attrs?.to?.v === DataType.FLOAT16).length, 4);
  assert.deepEqual(g.inputs.map((i) => i.elemType), [DataType.FLOAT]);
  assert.deepEqual(g.outputs.map((o) => o.name), ["same", "diff", "third"]);
  // the Add reads the rounded input, and the Sub the unrounded sum (no rounding inside)
  const add = g.nodes.find((n) => n.opType === "Add")!;
  const sub = g.nodes.find((n) => n.opType === "Sub")!;
  assert.match(add.inputs[0], /^x:rounded/);
  assert.equal(sub.inputs[0], add.outputs[0]);
});

Deno.test("fp16Rounding refuses a float16 graph", () => {
  assert.throws(() => fp16Rounding(build("float16")), /computes in float16/);
});
