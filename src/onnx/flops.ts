/**
 * FLOPs and bytes of a built graph, per op class, from its inferred shapes. A multiply-add counts 2 FLOPs.
 * The classes are the ones the bench reports achieved GFLOP/s for; `opClass` also names the fused ops ORT's
 * optimiser makes of ours (FusedConv, FusedMatMul, ...) so profiler time lands in the same classes.
 */
import type { Graph } from "./graph.ts";
import type { NodeInfo } from "./proto.ts";
import { inferShapes } from "./shape_infer.ts";

/** The op classes FLOPs and time are reported for. */
export type OpClass = "conv" | "matmul" | "attention" | "norm" | "other";
export const OP_CLASSES: readonly OpClass[] = ["conv", "matmul", "attention", "norm", "other"];

const CLASS_OF: Record<string, OpClass> = {
  Conv: "conv",
  FusedConv: "conv",
  NchwcConv: "conv",
  ConvTranspose: "conv",
  MatMul: "matmul",
  Gemm: "matmul",
  FusedMatMul: "matmul",
  FusedGemm: "matmul",
  MatMulNBits: "matmul",
  MultiHeadAttention: "attention",
  Attention: "attention",
  GroupQueryAttention: "attention",
  InstanceNormalization: "norm",
  LayerNormalization: "norm",
  SkipLayerNormalization: "norm",
  SimplifiedLayerNormalization: "norm",
  GroupNormalization: "norm",
  GroupNorm: "norm",
  BatchNormalization: "norm",
};

/** The class of an op type (ours or one ORT's optimiser fuses ours into). */
export function opClass(opType: string): OpClass {
  return CLASS_OF[opType] ?? "other";
}

/**
 * FLOPs per output element of the elementwise ops (1 unless listed): softmax is max, subtract, exp, sum and
 * divide; the norms are mean, subtract, square-sum, scale by the inverse deviation and the affine pair.
 */
const PER_ELEMENT: Record<string, number> = {
  Softmax: 5,
  InstanceNormalization: 7,
  LayerNormalization: 7,
  GroupNormalization: 7,
  BatchNormalization: 2,
  SimplifiedLayerNormalization: 4,
};

/** FLOPs of softmax over one attention score (same convention as the Softmax op). */
export const SOFTMAX_FLOPS = PER_ELEMENT.Softmax;

/** Ops that move or index data and compute nothing. */
const DATA_MOVEMENT = new Set([
  "Reshape",
  "Transpose",
  "Concat",
  "Slice",
  "Split",
  "Gather",
  "Tile",
  "Expand",
  "Resize",
  "Pad",
  "Shape",
  "Identity",
  "Cast",
  "Unsqueeze",
  "Squeeze",
  "ConstantOfShape",
  "Range",
  "Dropout",
]);

/** What one graph costs at one input geometry. */
export interface GraphCost {
  /** FLOPs per op class. */
  flops: Record<OpClass, number>;
  totalFlops: number;
  /** Bytes of the checkpoint weights the graph binds (in the graph's float type). */
  weightBytes: number;
  /**
   * Peak bytes of activations alive at once when the nodes run in order, each value freed after its last
   * reader, plus the running node's scratch (the full attention score tensor of the CPU attention kernel).
   */
  activationPeakBytes: number;
  /** The largest single attention score tensor (batch x heads x queries x keys). */
  attentionScoresBytes: number;
  nodes: number;
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

function headsOf(n: NodeInfo): number {
  const a = n.attrs?.num_heads;
  return a && a.kind === "int" ? a.v : 1;
}

/** FLOPs of one node and its scratch elements (attention scores), given the dims of its inputs/outputs. */
export function nodeFlops(
  n: NodeInfo,
  dims: (v: string) => readonly number[],
): { flops: number; scratch: number } {
  const out = n.outputs[0] ? dims(n.outputs[0]) : [];
  const outN = prod(out);
  switch (n.opType) {
    case "Conv": {
      const w = dims(n.inputs[1]);
      // each output element: Cin/groups x kernel multiply-adds (w is (Cout, Cin/groups, k...)), plus the bias
      return { flops: 2 * outN * prod(w.slice(1)) + (n.inputs[2] ? outN : 0), scratch: 0 };
    }
    case "MatMul": {
      const a = dims(n.inputs[0]);
      return { flops: 2 * outN * a[a.length - 1], scratch: 0 };
    }
    case "Gemm": {
      const a = dims(n.inputs[0]);
      const trA = n.attrs?.transA?.kind === "int" && n.attrs.transA.v === 1;
      const k = trA ? a[0] : a[1];
      return { flops: 2 * outN * k + (n.inputs[2] ? outN : 0), scratch: 0 };
    }
    case "MultiHeadAttention": {
      const [b, s, dqk] = dims(n.inputs[0]);
      const [, l] = dims(n.inputs[1]);
      const dv = out[2];
      const h = headsOf(n);
      const scores = b * h * s * l;
      // Q K^T and P V are 2 B S L D each; softmax over every score
      return { flops: 2 * b * s * l * (dqk + dv) + SOFTMAX_FLOPS * scores, scratch: scores };
    }
    case "Attention": {
      const [b, s, din] = dims(n.inputs[0]);
      const w = dims(n.inputs[1]);
      const h = headsOf(n);
      const d = w[1] / 3;
      const scores = b * h * s * s;
      return {
        flops: 2 * b * s * din * w[1] + 2 * b * s * s * 2 * d + SOFTMAX_FLOPS * scores,
        scratch: scores,
      };
    }
    case "ReduceMean":
    case "ReduceSum":
    case "ReduceMax":
      return { flops: prod(dims(n.inputs[0])), scratch: 0 };
  }
  if (DATA_MOVEMENT.has(n.opType)) return { flops: 0, scratch: 0 };
  return { flops: (PER_ELEMENT[n.opType] ?? 1) * outN, scratch: 0 };
}

/** Counts a graph's FLOPs per op class, its weight bytes and its activation peak at the given input dims. */
export function graphCost(
  g: Graph,
  inputDims: Record<string, readonly number[]> = {},
  inputValues: Record<string, readonly number[]> = {},
): GraphCost {
  const { dims } = inferShapes(g, inputDims, inputValues);
  const get = (v: string) => dims.get(v) ?? [];
  const elem = g.dtype === "float16" ? 2 : 4;
  const flops: Record<OpClass, number> = { conv: 0, matmul: 0, attention: 0, norm: 0, other: 0 };

  const isWeight = (v: string) => g.initializer(v) !== undefined;
  let weightBytes = 0;
  const seenWeights = new Set<string>();
  const lastUse = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    for (const v of n.inputs) {
      if (!v) continue;
      lastUse.set(v, i);
      const t = g.initializer(v);
      if (t?.external && !seenWeights.has(v)) {
        seenWeights.add(v);
        weightBytes += prod(t.dims) * elem;
      }
    }
  });
  for (const o of g.outputs) lastUse.set(o.name, g.nodes.length);

  const bytesOf = (v: string) => prod(get(v)) * elem;
  let live = 0;
  for (const i of g.inputs) live += bytesOf(i.name);
  let peak = live;
  let scoresMax = 0;
  g.nodes.forEach((n, i) => {
    const { flops: f, scratch } = nodeFlops(n, get);
    flops[opClass(n.opType)] += f;
    scoresMax = Math.max(scoresMax, scratch * elem);
    let made = 0;
    for (const o of n.outputs) if (o) made += bytesOf(o);
    peak = Math.max(peak, live + made + scratch * elem);
    live += made;
    for (const v of new Set([...n.inputs, ...n.outputs])) {
      if (v && !isWeight(v) && (lastUse.get(v) ?? -1) <= i) live -= bytesOf(v);
    }
  });
  const totalFlops = Object.values(flops).reduce((a, b) => a + b, 0);
  return {
    flops,
    totalFlops,
    weightBytes,
    activationPeakBytes: peak,
    attentionScoresBytes: scoresMax,
    nodes: g.nodes.length,
  };
}
