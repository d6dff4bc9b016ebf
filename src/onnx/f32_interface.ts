/**
 * A float32 interface for fp16 graphs. Stage functions feed and read float32 tensors whatever the precision
 * of the network, so an fp16 graph takes float32 inputs and gives float32 outputs: Casts at the inputs and
 * outputs inside the graph, where they cost a fraction of one layer, instead of conversions in every stage.
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
