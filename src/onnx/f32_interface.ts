/**
 * The float32 interface of fp16 networks. Stage functions feed and read float32 tensors whatever the precision
 * of the network, so an fp16 network takes float32 inputs and gives float32 outputs, with the conversions
 * inside the graph, where they cost a fraction of one layer, instead of in every stage. A float16 graph (CUDA)
 * gets Casts at its inputs and outputs (`f32Interface`); a float32 graph over fp16 weights (CPU, WebGPU)
 * rounds its inputs and outputs to fp16 (`fp16Rounding`), so that both exchange fp16 values.
 */
import type { Graph, Value } from "./graph.ts";
import { DataType } from "./proto.ts";

type Node = Graph["nodes"][number];

function renamed(values: readonly string[], from: string, to: string): string[] {
  return values.map((v) => (v === from ? to : v));
}

function cast(name: string, input: Value, output: Value, to: number): Node {
  return { opType: "Cast", name, inputs: [input], outputs: [output], attrs: { to: { kind: "int", v: to } } };
}

/** Every node of `g` that reads `from` reads `to` instead. */
function readInstead(g: Graph, from: Value, to: Value): void {
  for (let n = 0; n < g.nodes.length; n++) {
    const node = g.nodes[n];
    if (node.inputs.includes(from)) g.nodes[n] = { ...node, inputs: renamed(node.inputs, from, to) };
  }
}

/**
 * The float outputs of `g` (of element type `type`) that a node computes: not a graph input passed straight
 * through, not an initializer.
 */
function computedOutputs(g: Graph, type: number): Graph["outputs"] {
  const inputNames = new Set(g.inputs.map((i) => i.name));
  return g.outputs.filter((o) =>
    o.elemType === type && !inputNames.has(o.name) && g.nodes.some((node) => node.outputs.includes(o.name))
  );
}

/**
 * Renames the graph output `name` to a fresh `inner` value wherever a node writes or reads it, so that a Cast
 * appended after can write `name`; returns `inner`.
 */
function freeOutput(g: Graph, name: Value, base: string): Value {
  const inner = g.fresh(base);
  for (let n = 0; n < g.nodes.length; n++) {
    const node = g.nodes[n];
    if (node.inputs.includes(name) || node.outputs.includes(name)) {
      g.nodes[n] = {
        ...node,
        inputs: renamed(node.inputs, name, inner),
        outputs: renamed(node.outputs, name, inner),
      };
    }
  }
  return inner;
}

/**
 * Rewrites `g` in place: every float16 graph input becomes a float32 input cast to float16, every float16
 * output (and every probe in `probes`, which `encode` would otherwise declare float16) is cast to float32
 * under its own name. Graphs in float32 are returned untouched. Returns `g`.
 */
export function f32Interface(g: Graph, probes: readonly Value[] = []): Graph {
  if (g.floatType !== DataType.FLOAT16) return g;
  const head: Node[] = [];
  g.inputs.forEach((input, i) => {
    if (input.elemType !== DataType.FLOAT16) return;
    const inner = g.fresh(`${input.name}:f16`);
    readInstead(g, input.name, inner);
    head.push(cast(`${input.name}/f32_interface/Cast`, input.name, inner, DataType.FLOAT16));
    g.inputs[i] = { ...input, elemType: DataType.FLOAT };
  });
  g.nodes.unshift(...head);

  for (const p of probes) {
    if (!g.outputs.some((o) => o.name === p) && g.hasValue(p)) {
      g.outputs.push({ name: p, elemType: DataType.FLOAT16 });
    }
  }
  // A graph input passed straight through is float32 already; an initializer output is left as it is.
  for (const output of computedOutputs(g, DataType.FLOAT16)) {
    const inner = freeOutput(g, output.name, `${output.name}:f16`);
    g.nodes.push(cast(`${output.name}/f32_interface/Cast`, inner, output.name, DataType.FLOAT));
    g.outputs[g.outputs.indexOf(output)] = { ...output, elemType: DataType.FLOAT };
  }
  return g;
}

/**
 * Rewrites the float32 graph `g` of an fp16 network in place so that it exchanges fp16 values: every float
 * input is rounded to fp16 before any node reads it, every float output is rounded to fp16 (a Cast to float16
 * and back), and nothing in between. Probes are left as computed: they show the values the network used.
 * This is how fp16 networks run on the CPU and WebGPU (`computeDType`): fp16 weights and fp16 values between
 * networks, float32 arithmetic. Returns `g`.
 */
export function fp16Rounding(g: Graph): Graph {
  if (g.floatType !== DataType.FLOAT) {
    throw new Error(`fp16Rounding: graph '${g.name}' computes in float16, not float32 (see f32Interface)`);
  }
  const head: Node[] = [];
  for (const input of g.inputs) {
    if (input.elemType !== DataType.FLOAT) continue;
    const half = g.fresh(`${input.name}:f16`);
    const rounded = g.fresh(`${input.name}:rounded`);
    readInstead(g, input.name, rounded);
    head.push(
      cast(`${input.name}/fp16_rounding/Cast`, input.name, half, DataType.FLOAT16),
      cast(`${input.name}/fp16_rounding/Cast_1`, half, rounded, DataType.FLOAT),
    );
  }
  g.nodes.unshift(...head);

  // a graph input passed straight through is returned as fed (no network does that); an initializer output
  // is left as it is
  for (const output of computedOutputs(g, DataType.FLOAT)) {
    const inner = freeOutput(g, output.name, `${output.name}:f32`);
    const half = g.fresh(`${output.name}:f16`);
    g.nodes.push(
      cast(`${output.name}/fp16_rounding/Cast`, inner, half, DataType.FLOAT16),
      cast(`${output.name}/fp16_rounding/Cast_1`, half, output.name, DataType.FLOAT),
    );
  }
  return g;
}
