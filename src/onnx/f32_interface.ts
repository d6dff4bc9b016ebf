/**
 * The float32 interface of fp16 networks. Stage functions feed and read float32 tensors whatever the precision
 * of the network, so an fp16 network takes float32 inputs and gives float32 outputs, with the conversions
 * inside the graph, where they cost a fraction of one layer, instead of in every stage. A float16 graph (CUDA)
 * gets Casts at its inputs and outputs (`f32Interface`); a float32 graph over fp16 weights (CPU, WebGPU)
 * rounds its inputs and outputs to fp16 (`fp16Rounding`), so that both exchange fp16 values.
 */
import type { Graph, Value } from "./graph.ts";
import { DataType } from "./proto.ts";

function renamed(values: readonly string[], from: string, to: string): string[] {
  return values.map((v) => (v === from ? to : v));
}

/**
 * Rewrites `g` in place: every float16 graph input becomes a float32 input cast to float16, every float16
 * output (and every probe in `probes`, which `encode` would otherwise declare float16) is cast to float32
 * under its own name. Graphs in float32 are returned untouched. Returns `g`.
 */
export function f32Interface(g: Graph, probes: readonly Value[] = []): Graph {
  if (g.floatType !== DataType.FLOAT16) return g;
  const head: typeof g.nodes = [];
  const inputNames = new Set(g.inputs.map((i) => i.name));
  g.inputs.forEach((input, i) => {
    if (input.elemType !== DataType.FLOAT16) return;
    const inner = g.fresh(`${input.name}:f16`);
    for (let n = 0; n < g.nodes.length; n++) {
      const node = g.nodes[n];
      if (node.inputs.includes(input.name)) {
        g.nodes[n] = { ...node, inputs: renamed(node.inputs, input.name, inner) };
      }
    }
    head.push({
      opType: "Cast",
      name: `${input.name}/f32_interface/Cast`,
      inputs: [input.name],
      outputs: [inner],
      attrs: { to: { kind: "int", v: DataType.FLOAT16 } },
    });
    g.inputs[i] = { ...input, elemType: DataType.FLOAT };
  });
  g.nodes.unshift(...head);

  for (const p of probes) {
    if (!g.outputs.some((o) => o.name === p) && g.hasValue(p)) {
      g.outputs.push({ name: p, elemType: DataType.FLOAT16 });
    }
  }
  g.outputs.forEach((output, i) => {
    // A graph input passed straight through is float32 already; an initializer output is left as it is.
    if (output.elemType !== DataType.FLOAT16 || inputNames.has(output.name)) return;
    if (!g.nodes.some((node) => node.outputs.includes(output.name))) return;
    const inner = g.fresh(`${output.name}:f16`);
    for (let n = 0; n < g.nodes.length; n++) {
      const node = g.nodes[n];
      if (node.inputs.includes(output.name) || node.outputs.includes(output.name)) {
        g.nodes[n] = {
          ...node,
          inputs: renamed(node.inputs, output.name, inner),
          outputs: renamed(node.outputs, output.name, inner),
        };
      }
    }
    g.nodes.push({
      opType: "Cast",
      name: `${output.name}/f32_interface/Cast`,
      inputs: [inner],
      outputs: [output.name],
      attrs: { to: { kind: "int", v: DataType.FLOAT } },
    });
    g.outputs[i] = { ...output, elemType: DataType.FLOAT };
  });
  return g;
}

function cast(name: string, input: Value, output: Value, to: number): Graph["nodes"][number] {
  return { opType: "Cast", name, inputs: [input], outputs: [output], attrs: { to: { kind: "int", v: to } } };
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
  const head: typeof g.nodes = [];
  const inputNames = new Set(g.inputs.map((i) => i.name));
  for (const input of g.inputs) {
    if (input.elemType !== DataType.FLOAT) continue;
    const half = g.fresh(`${input.name}:f16`);
    const rounded = g.fresh(`${input.name}:rounded`);
    for (let n = 0; n < g.nodes.length; n++) {
      const node = g.nodes[n];
      if (node.inputs.includes(input.name)) {
        g.nodes[n] = { ...node, inputs: renamed(node.inputs, input.name, rounded) };
      }
    }
    head.push(
      cast(`${input.name}/fp16_rounding/Cast`, input.name, half, DataType.FLOAT16),
      cast(`${input.name}/fp16_rounding/Cast_1`, half, rounded, DataType.FLOAT),
    );
  }
  g.nodes.unshift(...head);

  for (const output of g.outputs) {
    // a graph input passed straight through is returned as fed (no network does that); an initializer
    // output is left as it is
    if (output.elemType !== DataType.FLOAT || inputNames.has(output.name)) continue;
    if (!g.nodes.some((node) => node.outputs.includes(output.name))) continue;
    const inner = g.fresh(`${output.name}:f32`);
    for (let n = 0; n < g.nodes.length; n++) {
      const node = g.nodes[n];
      if (node.inputs.includes(output.name) || node.outputs.includes(output.name)) {
        g.nodes[n] = {
          ...node,
          inputs: renamed(node.inputs, output.name, inner),
          outputs: renamed(node.outputs, output.name, inner),
        };
      }
    }
    const half = g.fresh(`${output.name}:f16`);
    g.nodes.push(
      cast(`${output.name}/fp16_rounding/Cast`, inner, half, DataType.FLOAT16),
      cast(`${output.name}/fp16_rounding/Cast_1`, half, output.name, DataType.FLOAT),
    );
  }
  return g;
}
