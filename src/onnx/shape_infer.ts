/**
 * Shape inference over a built Graph, for the ops hallo-lab's builders emit: every value's dims, and the
 * values of the small integer tensors that compute shapes (Shape -> Slice -> Concat -> Reshape chains).
 * The graph keeps no shapes of its own; FLOP and memory counts need them.
 */
import type { Graph } from "./graph.ts";
import { type AttrValue, DataType, type NodeInfo } from "./proto.ts";

/** Thrown when a node's output shape cannot be worked out; names the node. */
export class ShapeInferenceError extends Error {
  override name = "ShapeInferenceError";
}

/** Dims of every value, and the contents of the small tensors whose contents were known. */
export interface InferredShapes {
  dims: Map<string, number[]>;
  values: Map<string, number[]>;
}

/** Contents of tensors this small are tracked (shapes, axes, scales). */
const MAX_TRACKED = 64;

const UNARY = new Set([
  "Identity",
  "Cast",
  "Sigmoid",
  "Relu",
  "Gelu",
  "FastGelu",
  "BiasGelu",
  "Erf",
  "Tanh",
  "Exp",
  "Log",
  "Sqrt",
  "Neg",
  "Abs",
  "Floor",
  "Ceil",
  "Round",
  "Sin",
  "Cos",
  "Softmax",
  "Clip",
  "InstanceNormalization",
  "LayerNormalization",
  "GroupNormalization",
  "BatchNormalization",
  "SimplifiedLayerNormalization",
  "Dropout",
]);

const BINARY = new Set([
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Pow",
  "Min",
  "Max",
  "Greater",
  "Less",
  "Equal",
  "Where",
]);

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

function attr(n: NodeInfo, name: string): AttrValue | undefined {
  return n.attrs?.[name];
}
function attrInt(n: NodeInfo, name: string, dflt: number): number {
  const a = attr(n, name);
  return a && a.kind === "int" ? a.v : dflt;
}
function attrInts(n: NodeInfo, name: string): readonly number[] | undefined {
  const a = attr(n, name);
  return a && a.kind === "ints" ? a.v : undefined;
}

/** numpy broadcasting of any number of shapes. */
export function broadcastShapes(shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v === 1) continue;
      if (d !== 1 && d !== v) throw new Error(`shapes [${shapes.map((x) => `[${x}]`)}] do not broadcast`);
      d = v;
    }
    out.push(d);
  }
  return out;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function initValues(g: Graph, name: string): { dims: number[]; values?: number[] } | undefined {
  const t = g.initializer(name);
  if (!t) return undefined;
  const dims = [...t.dims];
  if (!t.raw || prod(dims) > MAX_TRACKED) return { dims };
  const buf = t.raw.buffer.slice(t.raw.byteOffset, t.raw.byteOffset + t.raw.byteLength);
  if (t.elemType === DataType.INT64) return { dims, values: [...new BigInt64Array(buf)].map(Number) };
  if (t.elemType === DataType.INT32) return { dims, values: [...new Int32Array(buf)] };
  if (t.elemType === DataType.FLOAT) return { dims, values: [...new Float32Array(buf)] };
  return { dims };
}

/**
 * Infers every value's dims from the graph inputs' dims (symbolic input dims must be given in
 * `inputDims`). Throws ShapeInferenceError naming the node for an op it has no rule for.
 */
export function inferShapes(
  g: Graph,
  inputDims: Record<string, readonly number[]> = {},
  inputValues: Record<string, readonly number[]> = {},
): InferredShapes {
  const dims = new Map<string, number[]>();
  const values = new Map<string, number[]>();
  // Small integer inputs that size values at run time (a CFG-halves UNet's `cfg_half`), taken as given.
  for (const [k, v] of Object.entries(inputValues)) values.set(k, [...v]);
  for (const i of g.inputs) {
    const given = inputDims[i.name];
    if (given) dims.set(i.name, [...given]);
    else if (i.dims && i.dims.every((d) => typeof d === "number")) dims.set(i.name, i.dims as number[]);
    else {throw new ShapeInferenceError(
        `graph ${g.name}: input '${i.name}' has dims [${i.dims}]; give its shape`,
      );}
  }
  const shapeOf = (n: NodeInfo, v: string): number[] => {
    const d = dims.get(v);
    if (d) return d;
    const init = initValues(g, v);
    if (init) {
      dims.set(v, init.dims);
      if (init.values) values.set(v, init.values);
      return init.dims;
    }
    throw new ShapeInferenceError(`graph ${g.name}: node ${n.name} reads '${v}', which has no known shape`);
  };
  const valueOf = (n: NodeInfo, v: string | undefined): number[] | undefined => {
    if (!v) return undefined;
    shapeOf(n, v);
    return values.get(v);
  };
  const need = (n: NodeInfo, v: string | undefined, what: string): number[] => {
    const x = valueOf(n, v);
    if (!x) throw new ShapeInferenceError(`graph ${g.name}: node ${n.name}: ${what} is not a known constant`);
    return x;
  };

  for (const n of g.nodes) {
    try {
      const outs = inferNode(n, (v) => shapeOf(n, v), (v) => valueOf(n, v), (v, w) => need(n, v, w));
      n.outputs.forEach((o, i) => {
        if (!o || !outs[i]) return;
        dims.set(o, outs[i].dims);
        if (outs[i].values && outs[i].values!.length <= MAX_TRACKED) values.set(o, outs[i].values!);
      });
    } catch (e) {
      if (e instanceof ShapeInferenceError) throw e;
      throw new ShapeInferenceError(`graph ${g.name}: node ${n.name} (${n.opType}): ${(e as Error).message}`);
    }
  }
  return { dims, values };
}

interface Out {
  dims: number[];
  values?: number[];
}

function elementwiseValues(op: string, xs: (number[] | undefined)[]): number[] | undefined {
  if (xs.some((x) => !x)) return undefined;
  const len = Math.max(...xs.map((x) => x!.length));
  if (xs.some((x) => x!.length !== len && x!.length !== 1)) return undefined;
  const at = (x: number[], i: number) => x.length === 1 ? x[0] : x[i];
  const f: Record<string, (a: number, b: number) => number> = {
    Add: (a, b) => a + b,
    Sub: (a, b) => a - b,
    Mul: (a, b) => a * b,
    Div: (a, b) => Math.trunc(a / b),
    Min: (a, b) => Math.min(a, b),
    Max: (a, b) => Math.max(a, b),
  };
  const fn = f[op];
  if (!fn) return undefined;
  return Array.from({ length: len }, (_, i) => fn(at(xs[0]!, i), at(xs[1]!, i)));
}

function inferNode(
  n: NodeInfo,
  shape: (v: string) => number[],
  value: (v: string | undefined) => number[] | undefined,
  need: (v: string | undefined, what: string) => number[],
): Out[] {
  const x = () => shape(n.inputs[0]);
  const op = n.opType;
  if (UNARY.has(op)) {
    const v = op === "Identity" || op === "Cast" ? value(n.inputs[0]) : undefined;
    return [{ dims: [...x()], values: v }];
  }
  if (BINARY.has(op)) {
    const ins = n.inputs.filter((i) => i !== "");
    return [{
      dims: broadcastShapes(ins.map(shape)),
      values: elementwiseValues(op, ins.map((i) => value(i))),
    }];
  }
  switch (op) {
    case "Shape": {
      const s = x();
      const start = normAxis(attrInt(n, "start", 0), s.length);
      const end = normAxis(attrInt(n, "end", s.length), s.length);
      const v = s.slice(start, end);
      return [{ dims: [v.length], values: v }];
    }
    case "Reshape": {
      const s = x();
      const target = need(n.inputs[1], "the target shape");
      const out = target.map((d, i) => d === 0 ? s[i] : d);
      const known = prod(out.filter((d) => d !== -1));
      const inf = out.indexOf(-1);
      if (inf >= 0) out[inf] = prod(s) / known;
      if (prod(out) !== prod(s)) throw new Error(`cannot reshape [${s}] to [${target}]`);
      return [{ dims: out, values: value(n.inputs[0]) }];
    }
    case "Transpose": {
      const s = x();
      const perm = attrInts(n, "perm") ?? s.map((_, i) => s.length - 1 - i);
      return [{ dims: perm.map((p) => s[p]) }];
    }
    case "Concat": {
      const ins = n.inputs.map(shape);
      const axis = normAxis(attrInt(n, "axis", 0), ins[0].length);
      const out = [...ins[0]];
      out[axis] = ins.reduce((a, s) => a + s[axis], 0);
      const vs = n.inputs.map((i) => value(i));
      return [{
        dims: out,
        values: vs.every((v) => v) && out.length === 1 ? vs.flat() as number[] : undefined,
      }];
    }
    case "Slice": {
      const s = x();
      const starts = need(n.inputs[1], "starts");
      const ends = need(n.inputs[2], "ends");
      const axes = value(n.inputs[3]) ?? starts.map((_, i) => i);
      const steps = value(n.inputs[4]) ?? starts.map(() => 1);
      const out = [...s];
      let vals = value(n.inputs[0]);
      axes.forEach((a0, i) => {
        const a = normAxis(a0, s.length);
        const d = s[a];
        const step = steps[i];
        const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
        let b = starts[i] < 0 ? starts[i] + d : starts[i];
        let e = ends[i] < 0 ? ends[i] + d : ends[i];
        b = step > 0 ? clamp(b, 0, d) : clamp(b, 0, d - 1);
        e = step > 0 ? clamp(e, 0, d) : clamp(e, -1, d - 1);
        out[a] = Math.max(0, Math.ceil((e - b) / step));
        if (vals && s.length === 1) vals = Array.from({ length: out[a] }, (_, k) => vals![b + k * step]);
      });
      return [{ dims: out, values: s.length === 1 ? vals : undefined }];
    }
    case "Split": {
      const s = x();
      const axis = normAxis(attrInt(n, "axis", 0), s.length);
      const sizes = value(n.inputs[1]) ??
        Array(n.outputs.length).fill(Math.ceil(s[axis] / n.outputs.length)).map((c, i, a) =>
          i === a.length - 1 ? s[axis] - c * (a.length - 1) : c
        );
      return sizes.map((k) => {
        const o = [...s];
        o[axis] = k;
        return { dims: o };
      });
    }
    case "Unsqueeze": {
      const s = x();
      const axes = need(n.inputs[1], "axes");
      const rank = s.length + axes.length;
      const set = new Set(axes.map((a) => normAxis(a, rank)));
      const out: number[] = [];
      let j = 0;
      for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : s[j++]);
      return [{ dims: out, values: value(n.inputs[0]) }];
    }
    case "Squeeze": {
      const s = x();
      const axes = value(n.inputs[1]);
      const set = new Set(
        (axes ?? s.flatMap((d, i) => d === 1 ? [i] : [])).map((a) => normAxis(a, s.length)),
      );
      return [{ dims: s.filter((_, i) => !set.has(i)), values: value(n.inputs[0]) }];
    }
    case "Gather": {
      const s = x();
      const idx = shape(n.inputs[1]);
      const axis = normAxis(attrInt(n, "axis", 0), s.length);
      const data = value(n.inputs[0]);
      const iv = value(n.inputs[1]);
      const vals = data && iv && s.length === 1 ? iv.map((i) => data[i < 0 ? i + s[0] : i]) : undefined;
      return [{ dims: [...s.slice(0, axis), ...idx, ...s.slice(axis + 1)], values: vals }];
    }
    case "Tile": {
      const reps = need(n.inputs[1], "repeats");
      return [{ dims: x().map((d, i) => d * reps[i]) }];
    }
    case "Expand":
      return [{ dims: broadcastShapes([x(), need(n.inputs[1], "the shape")]) }];
    case "ConstantOfShape": {
      const s = need(n.inputs[0], "the shape");
      return [{ dims: s }];
    }
    case "Range": {
      const [start] = need(n.inputs[0], "start");
      const [limit] = need(n.inputs[1], "limit");
      const [delta] = need(n.inputs[2], "delta");
      const len = Math.max(0, Math.ceil((limit - start) / delta));
      return [{ dims: [len], values: Array.from({ length: len }, (_, i) => start + i * delta) }];
    }
    case "Pad": {
      const pads = need(n.inputs[1], "pads");
      const s = x();
      return [{ dims: s.map((d, i) => d + pads[i] + pads[i + s.length]) }];
    }
    case "Resize": {
      const s = x();
      const sizes = value(n.inputs[3]);
      if (sizes) return [{ dims: sizes }];
      const scales = need(n.inputs[2], "scales");
      return [{ dims: s.map((d, i) => Math.floor(d * scales[i])) }];
    }
    case "ReduceMean":
    case "ReduceSum":
    case "ReduceMax": {
      const s = x();
      const axes = value(n.inputs[1]) ?? attrInts(n, "axes") ?? s.map((_, i) => i);
      const set = new Set(axes.map((a) => normAxis(a, s.length)));
      const keep = attrInt(n, "keepdims", 1) === 1;
      return [{ dims: s.flatMap((d, i) => set.has(i) ? (keep ? [1] : []) : [d]) }];
    }
    case "Conv": {
      const s = x();
      const w = shape(n.inputs[1]);
      const sp = s.length - 2;
      const k = attrInts(n, "kernel_shape") ?? w.slice(2);
      const strides = attrInts(n, "strides") ?? Array(sp).fill(1);
      const dil = attrInts(n, "dilations") ?? Array(sp).fill(1);
      const pads = attrInts(n, "pads") ?? Array(2 * sp).fill(0);
      const out = [s[0], w[0]];
      for (let i = 0; i < sp; i++) {
        out.push(Math.floor((s[2 + i] + pads[i] + pads[i + sp] - dil[i] * (k[i] - 1) - 1) / strides[i]) + 1);
      }
      return [{ dims: out }];
    }
    case "MatMul": {
      const a = x(), b = shape(n.inputs[1]);
      const a2 = a.length === 1 ? [1, a[0]] : a;
      const b2 = b.length === 1 ? [b[0], 1] : b;
      if (a2[a2.length - 1] !== b2[b2.length - 2]) throw new Error(`MatMul of [${a}] and [${b}]`);
      const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
      const out = [...batch];
      if (a.length > 1) out.push(a2[a2.length - 2]);
      if (b.length > 1) out.push(b2[b2.length - 1]);
      return [{ dims: out }];
    }
    case "Gemm": {
      const a = x(), b = shape(n.inputs[1]);
      const m = attrInt(n, "transA", 0) ? a[1] : a[0];
      const nn = attrInt(n, "transB", 0) ? b[0] : b[1];
      return [{ dims: [m, nn] }];
    }
    case "MultiHeadAttention": {
      const q = x();
      const v = n.inputs[2] ? shape(n.inputs[2]) : undefined;
      if (q.length !== 3 || (v && v.length !== 3)) {
        throw new Error(`only 3-D (batch, sequence, hidden) query/key/value are counted, got [${q}]`);
      }
      return [{ dims: [q[0], q[1], v ? v[2] : q[2]] }];
    }
    case "Attention": {
      const q = x();
      const hidden = attrInts(n, "qkv_hidden_sizes") ?? Array(3).fill(shape(n.inputs[1])[1] / 3);
      return [{ dims: [q[0], q[1], hidden[2]] }];
    }
  }
  throw new ShapeInferenceError(
    `node ${n.name}: no shape rule for op ${n.domain ? n.domain + "." : ""}${op}`,
  );
}
