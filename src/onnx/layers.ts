/**
 * The layer vocabulary Hallo needs, as functions that add nodes to a Graph.
 * Each layer takes the module path of the upstream module it mirrors: weights are bound as
 * `${path}.weight` / `${path}.bias` and the layer's result is the value named `path`.
 */
import { DataType } from "./proto.ts";
import type { Graph, Value, WeightSource } from "./graph.ts";
import { type ChunkCtx, inChunks } from "./attention_chunked.ts";

/** How attention is computed: the fused com.microsoft kernel, or MatMul/Softmax so probabilities can be tapped. */
export type AttentionForm = "fused" | "plain";

/** Where a graph will run; the same names as the runtime's devices (graphs do not import the runtime). */
export type ComputeTarget = "cpu" | "cuda" | "webgpu";

/** How GroupNorm / LayerNorm are computed: ORT's single kernels, or mean and variance in two explicit passes. */
export type NormForm = "kernel" | "two_pass";

/** The op forms a target runs correctly and fast. */
export interface TargetForms {
  /** What a `fused` attention request becomes (`plain` requests stay plain: their probabilities are tapped). */
  attention: AttentionForm;
  norm: NormForm;
}

/**
 * The forms per target. CPU: the fused attention kernel and InstanceNormalization/LayerNormalization (the fast
 * CPU forms). CUDA: the same; ORT's CUDA MultiHeadAttention runs flash / memory-efficient attention, the
 * fastest form in fp16, and its norms are exact. WebGPU (ORT 1.30, measured on Mesa lavapipe 25.0 against the
 * CPU EP): MultiHeadAttention returns wrong results once a query has more than 16 tokens (relative L2
 * 2e-2..1e-1), and InstanceNormalization / LayerNormalization take the variance in one pass (E[x^2]-E[x]^2),
 * which loses 3.5e-5 of relative accuracy at a mean/std ratio of 30 (4.8e-3 at 300): there attention is
 * MatMul/Softmax and the norms take the mean first and the variance of the centred values after.
 */
export function formsFor(target: ComputeTarget = "cpu"): TargetForms {
  return target === "webgpu"
    ? { attention: "plain", norm: "two_pass" }
    : { attention: "fused", norm: "kernel" };
}

let buildTarget: ComputeTarget = "cpu";

/**
 * Runs a graph builder for `target`: every layer it adds takes that target's forms (`formsFor`). Builders are
 * synchronous, so the target is in force exactly for this call; the default target is the CPU.
 */
export function buildFor<T>(target: ComputeTarget, build: () => T): T {
  const previous = buildTarget;
  buildTarget = target;
  try {
    return build();
  } finally {
    buildTarget = previous;
  }
}

/** The target of the graph being built (`buildFor`), "cpu" outside one. */
export function currentTarget(): ComputeTarget {
  return buildTarget;
}

/** Probe request for one attention module: head-averaged or per-head probabilities. */
export type AttentionProbe = "mean" | "heads";

/** What a network builder threads through every layer. */
export interface Ctx extends ChunkCtx {
  g: Graph;
  w: WeightSource;
  /** Key prefix of this network inside the checkpoint (e.g. `denoising_unet.`). */
  prefix: string;
  attention: AttentionForm;
  /** Attention module paths whose probabilities become extra outputs `${path}.probs`. */
  attentionProbes?: ReadonlyMap<string, AttentionProbe>;
}

/** Binds `${prefix}${path}.${leaf}` with the expected shape. */
export function param(c: Ctx, path: string, leaf: string, shape: readonly number[]): Value {
  return c.g.weight(c.w, `${c.prefix}${path}.${leaf}`, shape);
}

/** True when the checkpoint has `${prefix}${path}.${leaf}`. */
export function hasParam(c: Ctx, path: string, leaf: string): boolean {
  return c.w.has(`${c.prefix}${path}.${leaf}`);
}

// ---------------------------------------------------------------- element-wise and shape helpers

export function add(c: Ctx, path: string, a: Value, b: Value, outName?: string): Value {
  return c.g.op1("Add", [a, b], { path, outName });
}
export function sub(c: Ctx, path: string, a: Value, b: Value): Value {
  return c.g.op1("Sub", [a, b], { path });
}
export function mul(c: Ctx, path: string, a: Value, b: Value, outName?: string): Value {
  return c.g.op1("Mul", [a, b], { path, outName });
}
export function div(c: Ctx, path: string, a: Value, b: Value): Value {
  return c.g.op1("Div", [a, b], { path });
}

/** A scalar constant in the graph's float type. */
export function scalar(c: Ctx, path: string, v: number): Value {
  return c.g.floats(`${path}/const`, [v], []);
}

export function silu(c: Ctx, path: string, x: Value, outName?: string): Value {
  const s = c.g.op1("Sigmoid", [x], { path });
  return c.g.op1("Mul", [x, s], { path, outName });
}

export function relu(c: Ctx, path: string, x: Value): Value {
  return c.g.op1("Relu", [x], { path });
}

/** GELU: exact (erf) or the tanh approximation. */
export function gelu(
  c: Ctx,
  path: string,
  x: Value,
  approximate: "none" | "tanh" = "none",
  outName?: string,
): Value {
  return c.g.op1("Gelu", [x], { path, attrs: { approximate }, outName });
}

/** Reshape; `0` copies the input dim, `-1` infers. */
export function reshape(c: Ctx, path: string, x: Value, shape: readonly number[] | Value): Value {
  const s = typeof shape === "string" ? shape : c.g.ints(`${path}/shape`, shape);
  return c.g.op1("Reshape", [x, s], { path });
}

export function transpose(c: Ctx, path: string, x: Value, perm: readonly number[]): Value {
  return c.g.op1("Transpose", [x], { path, attrs: { perm } });
}

export function concat(c: Ctx, path: string, xs: readonly Value[], axis: number, outName?: string): Value {
  return c.g.op1("Concat", xs, { path, attrs: { axis }, outName });
}

/** Slice along axes with python-style starts/ends (ends may be large to mean "to the end"). */
export function slice(
  c: Ctx,
  path: string,
  x: Value,
  starts: readonly number[],
  ends: readonly number[],
  axes: readonly number[],
  steps?: readonly number[],
): Value {
  const ins = [
    x,
    c.g.ints(`${path}/starts`, starts),
    c.g.ints(`${path}/ends`, ends),
    c.g.ints(`${path}/axes`, axes),
  ];
  if (steps) ins.push(c.g.ints(`${path}/steps`, steps));
  return c.g.op1("Slice", ins, { path });
}

/** Splits along `axis` into `n` equal parts. */
export function split(c: Ctx, path: string, x: Value, axis: number, n: number): Value[] {
  return c.g.op("Split", [x], { path, attrs: { axis, num_outputs: n }, outputs: n });
}

export function unsqueeze(c: Ctx, path: string, x: Value, axes: readonly number[]): Value {
  return c.g.op1("Unsqueeze", [x, c.g.ints(`${path}/axes`, axes)], { path });
}

export function shapeOf(c: Ctx, path: string, x: Value): Value {
  return c.g.op1("Shape", [x], { path });
}

/** Tiles `x` `times` along `axis` (torch `repeat` on one axis). */
export function tile(c: Ctx, path: string, x: Value, rank: number, axis: number, times: number): Value {
  const reps = Array.from({ length: rank }, (_, i) => i === axis ? times : 1);
  return c.g.op1("Tile", [x, c.g.ints(`${path}/repeats`, reps)], { path });
}

export function identity(c: Ctx, path: string, x: Value, outName = path): Value {
  return c.g.op1("Identity", [x], { path, outName });
}

// ---------------------------------------------------------------- parameterised layers

export interface ConvOptions {
  inC: number;
  outC: number;
  k: number;
  stride?: number;
  /** Symmetric padding, or explicit ONNX pads (begin..., end...). */
  pad?: number | readonly number[];
  groups?: number;
  bias?: boolean;
  /** Weight tensor override (e.g. a weight-normed weight computed in-graph). */
  weight?: Value;
}

function conv(c: Ctx, path: string, x: Value, o: ConvOptions, dims: 1 | 2, outName?: string): Value {
  const groups = o.groups ?? 1;
  const kshape = dims === 2 ? [o.k, o.k] : [o.k];
  const w = o.weight ?? param(c, path, "weight", [o.outC, o.inC / groups, ...kshape]);
  const ins = [x, w];
  if (o.bias ?? true) ins.push(param(c, path, "bias", [o.outC]));
  const p = o.pad ?? 0;
  const pads = typeof p === "number" ? Array(2 * dims).fill(p) : p;
  return c.g.op1("Conv", ins, {
    path,
    outName: outName ?? path,
    attrs: { kernel_shape: kshape, strides: Array(dims).fill(o.stride ?? 1), pads, group: groups },
  });
}

/** torch.nn.Conv2d on NCHW. */
export function conv2d(c: Ctx, path: string, x: Value, o: ConvOptions, outName?: string): Value {
  return conv(c, path, x, o, 2, outName);
}

/** torch.nn.Conv1d on NCL. */
export function conv1d(c: Ctx, path: string, x: Value, o: ConvOptions, outName?: string): Value {
  return conv(c, path, x, o, 1, outName);
}

/** torch.nn.Linear over the last axis of any-rank input (weight stored (out, in), used transposed). */
export function linear(
  c: Ctx,
  path: string,
  x: Value,
  inF: number,
  outF: number,
  bias = true,
  outName?: string,
): Value {
  const w = param(c, path, "weight", [outF, inF]);
  return gemm(c, path, x, w, bias ? param(c, path, "bias", [outF]) : undefined, inF, outF, outName ?? path);
}

/**
 * `x @ w^T + b` over the last axis of any-rank `x`, with `w` stored (out, in) as torch keeps it: one Gemm
 * (transB, bias fused) on `x` viewed 2-D, so the checkpoint bytes are used as they are and the bias add
 * costs no extra pass over the activations.
 */
export function gemm(
  c: Ctx,
  path: string,
  x: Value,
  w: Value,
  b: Value | undefined,
  inF: number,
  outF: number,
  outName: string,
): Value {
  const x2 = reshape(c, path, x, [-1, inF]);
  const y2 = c.g.op1("Gemm", b ? [x2, w, b] : [x2, w], { path, attrs: { transB: 1 } });
  const lead = slice(c, path, shapeOf(c, path, x), [0], [-1], [0]);
  const shape = concat(c, path, [lead, c.g.ints(`${path}/out_features`, [outF])], 0);
  return c.g.op1("Reshape", [y2, shape], { path, outName });
}

/**
 * torch.nn.GroupNorm on (N, C, ...), in the fast CPU form: Reshape -> InstanceNormalization
 * -> Reshape -> affine (ORT has no CPU GroupNormalization kernel and expands it slowly).
 */
export function groupNorm(
  c: Ctx,
  path: string,
  x: Value,
  o: { channels: number; groups: number; eps: number; rank: number; affine?: boolean },
  outName?: string,
): Value {
  const g = o.groups;
  const grouped = reshape(c, path, x, [0, g, -1]);
  let normed: Value;
  if (formsFor(buildTarget).norm === "two_pass") normed = normalizeTwoPass(c, path, grouped, -1, o.eps);
  else {
    const ones = c.g.floats(`${path}/ones`, new Float32Array(g).fill(1));
    const zeros = c.g.floats(`${path}/zeros`, new Float32Array(g));
    normed = c.g.op1("InstanceNormalization", [grouped, ones, zeros], {
      path,
      attrs: { epsilon: { float: o.eps } },
    });
  }
  const back = reshape(c, path, normed, shapeOf(c, path, x));
  if (o.affine === false) return identity(c, path, back, outName ?? path);
  const bcast = Array.from({ length: o.rank - 2 }, (_, i) => i + 1);
  const gamma = unsqueeze(c, path, param(c, path, "weight", [o.channels]), bcast);
  const beta = unsqueeze(c, path, param(c, path, "bias", [o.channels]), bcast);
  return add(c, path, mul(c, path, back, gamma), beta, outName ?? path);
}

/** torch.nn.LayerNorm over the last axis. */
export function layerNorm(c: Ctx, path: string, x: Value, dim: number, eps: number, outName?: string): Value {
  const w = param(c, path, "weight", [dim]);
  const b = param(c, path, "bias", [dim]);
  if (formsFor(buildTarget).norm === "two_pass") {
    return add(c, path, mul(c, path, normalizeTwoPass(c, path, x, -1, eps), w), b, outName ?? path);
  }
  return c.g.op1("LayerNormalization", [x, w, b], {
    path,
    attrs: { axis: -1, epsilon: { float: eps } },
    outName: outName ?? path,
  });
}

/**
 * `(x - mean) / sqrt(var + eps)` over `axis`, the variance taken of the centred values (no cancellation). An
 * fp16 graph normalises in float32, as ORT's norm kernels accumulate: squares of activations overflow fp16.
 */
export function normalizeTwoPass(c: Ctx, path: string, x: Value, axis: number, eps: number): Value {
  const half = c.g.floatType !== DataType.FLOAT;
  const x32 = half ? c.g.op1("Cast", [x], { path, attrs: { to: DataType.FLOAT } }) : x;
  const axes = c.g.ints(`${path}/norm_axes`, [axis]);
  const mean = c.g.op1("ReduceMean", [x32, axes], { path, attrs: { keepdims: 1 } });
  const d = sub(c, path, x32, mean);
  const variance = c.g.op1("ReduceMean", [mul(c, path, d, d), axes], { path, attrs: { keepdims: 1 } });
  const epsilon = c.g.constant(`${path}/eps`, Float32Array.from([eps]), []);
  const y = div(c, path, d, c.g.op1("Sqrt", [add(c, path, variance, epsilon)], { path }));
  return half ? c.g.op1("Cast", [y], { path, attrs: { to: c.g.floatType } }) : y;
}

/** diffusers GEGLU: `proj` to 2*dimOut, `hidden * gelu(gate)`. */
export function geglu(c: Ctx, path: string, x: Value, dimIn: number, dimOut: number): Value {
  // proj's rows [0, dimOut) make the hidden half and [dimOut, 2*dimOut) the gate: two Gemms on row slices
  // of the weight (folded once at session creation) instead of one Gemm and a Split of the activations.
  const p = `${path}.proj`;
  const w = param(c, p, "weight", [2 * dimOut, dimIn]);
  const b = param(c, p, "bias", [2 * dimOut]);
  const half = (i: number, t: Value) => slice(c, p, t, [i * dimOut], [(i + 1) * dimOut], [0]);
  const hidden = gemm(c, p, x, half(0, w), half(0, b), dimIn, dimOut, p);
  const gate = gemm(c, p, x, half(1, w), half(1, b), dimIn, dimOut, `${p}.gate`);
  return mul(c, path, hidden, gelu(c, path, gate), path);
}

/** diffusers FeedForward with GEGLU (`net.0` GEGLU, `net.2` Linear). */
export function feedForward(c: Ctx, path: string, x: Value, dim: number, mult = 4, outName?: string): Value {
  if ((c.chunks ?? 1) > 1) {
    return inChunks(
      c,
      path,
      [x],
      c.chunks!,
      outName ?? path,
      (cc, [xc], name) => feedForward(cc, path, xc, dim, mult, name),
    );
  }
  const inner = dim * mult;
  const h = geglu(c, `${path}.net.0`, x, dim, inner);
  return linear(c, `${path}.net.2`, h, inner, dim, true, outName ?? path);
}

export interface AttentionOptions {
  queryDim: number;
  /** Key/value input width (cross-attention context dim); defaults to queryDim. */
  kvDim?: number;
  heads: number;
  dimHead: number;
  /** Key names of the projections (diffusers new names by default). */
  names?: { q: string; k: string; v: string; out: string };
  qkvBias?: boolean;
}

/**
 * Multi-head scaled dot-product attention (diffusers `Attention` with AttnProcessor2_0): q/k/v
 * projections, softmax(q k^T / sqrt(d)) v, output projection. `q` (B,S,queryDim), `kv` (B,L,kvDim).
 * Fused (com.microsoft.MultiHeadAttention) or plain (MatMul/Softmax: probabilities tappable).
 */
export function attention(
  c: Ctx,
  path: string,
  q: Value,
  kv: Value,
  o: AttentionOptions,
  outName?: string,
): Value {
  // A probed site keeps the whole batch: its probabilities come out whole.
  if ((c.chunks ?? 1) > 1 && !c.attentionProbes?.has(path)) {
    return inChunks(
      c,
      path,
      [q, kv],
      c.chunks!,
      outName ?? path,
      (cc, [qc, kvc], name) => attention(cc, path, qc, kvc, o, name),
    );
  }
  const n = o.names ?? { q: "to_q", k: "to_k", v: "to_v", out: "to_out.0" };
  const inner = o.heads * o.dimHead;
  const kvDim = o.kvDim ?? o.queryDim;
  const bias = o.qkvBias ?? false;
  const Q = linear(c, `${path}.${n.q}`, q, o.queryDim, inner, bias);
  const K = linear(c, `${path}.${n.k}`, kv, kvDim, inner, bias);
  const V = linear(c, `${path}.${n.v}`, kv, kvDim, inner, bias);
  const probe = c.attentionProbes?.get(path);
  let ctx: Value;
  if (c.attention === "fused" && formsFor(buildTarget).attention === "fused") {
    ctx = c.g.op1("MultiHeadAttention", [Q, K, V], {
      path,
      domain: "com.microsoft",
      attrs: { num_heads: o.heads, scale: { float: 1 / Math.sqrt(o.dimHead) } },
    });
    // A probe taps the probabilities on a side branch, so the main path (and its numbers) is unchanged.
    if (probe) attentionProbs(c, path, Q, K, o.heads, o.dimHead, probe);
  } else {
    ctx = plainAttention(c, path, Q, K, V, o.heads, o.dimHead, probe);
  }
  return linear(c, `${path}.${n.out}`, ctx, inner, o.queryDim, true, outName ?? path);
}

/**
 * softmax(Q K^T / sqrt(d)) per head, (B, heads, S, L); with `probe` it also becomes the graph output
 * `${path}.probs`, averaged over heads (B, S, L) or per head.
 */
export function attentionProbs(
  c: Ctx,
  path: string,
  Q: Value,
  K: Value,
  heads: number,
  dimHead: number,
  probe?: AttentionProbe,
): Value {
  const q = transpose(c, path, reshape(c, path, Q, [0, 0, heads, dimHead]), [0, 2, 1, 3]);
  const kT = transpose(c, path, reshape(c, path, K, [0, 0, heads, dimHead]), [0, 2, 3, 1]);
  const scores = mul(c, path, c.g.op1("MatMul", [q, kT], { path }), scalar(c, path, 1 / Math.sqrt(dimHead)));
  const probs = c.g.op1("Softmax", [scores], { path, attrs: { axis: -1 } });
  if (probe === "heads") c.g.output(identity(c, path, probs, `${path}.probs`));
  if (probe === "mean") {
    const m = c.g.op1("ReduceMean", [probs, c.g.ints(`${path}/axes`, [1])], {
      path,
      attrs: { keepdims: 0 },
      outName: `${path}.probs`,
    });
    c.g.output(m);
  }
  return probs;
}

/** softmax(QK^T * scale) V with heads split explicitly; `probe` also emits `${path}.probs`. */
export function plainAttention(
  c: Ctx,
  path: string,
  Q: Value,
  K: Value,
  V: Value,
  heads: number,
  dimHead: number,
  probe?: AttentionProbe,
): Value {
  const probs = attentionProbs(c, path, Q, K, heads, dimHead, probe);
  const v = transpose(c, path, reshape(c, path, V, [0, 0, heads, dimHead]), [0, 2, 1, 3]);
  const o = transpose(c, path, c.g.op1("MatMul", [probs, v], { path }), [0, 2, 1, 3]);
  return reshape(c, path, o, [0, 0, heads * dimHead]);
}

/** torch nearest-neighbour 2x upsampling of NCHW (F.interpolate(scale_factor=2, mode="nearest")). */
export function upsampleNearest2x(c: Ctx, path: string, x: Value): Value {
  const scales = c.g.constant(`${path}/scales`, Float32Array.from([1, 1, 2, 2]), [4]);
  return c.g.op1("Resize", [x, "", scales], {
    path,
    attrs: { mode: "nearest", nearest_mode: "floor", coordinate_transformation_mode: "asymmetric" },
  });
}

/**
 * diffusers `get_timestep_embedding`: `t` (B,) -> (B, dim); frequencies computed in float32 as torch does.
 * flipSinToCos puts cos first.
 */
export function timestepEmbedding(
  c: Ctx,
  path: string,
  t: Value,
  dim: number,
  o: { flipSinToCos: boolean; freqShift: number; maxPeriod?: number },
): Value {
  const half = Math.floor(dim / 2);
  const freqs = new Float32Array(half);
  const lnp = Math.fround(Math.log(o.maxPeriod ?? 10000));
  for (let i = 0; i < half; i++) {
    const e = Math.fround(Math.fround(-lnp * i) / (half - o.freqShift));
    freqs[i] = Math.fround(Math.exp(e));
  }
  const tf = c.g.op1("Cast", [t], { path, attrs: { to: DataType.FLOAT } });
  const tcol = unsqueeze(c, path, tf, [1]);
  const f = c.g.constant(`${path}/freqs`, freqs, [1, half]);
  const args = c.g.op1("Mul", [tcol, f], { path });
  const sin = c.g.op1("Sin", [args], { path });
  const cos = c.g.op1("Cos", [args], { path });
  let emb = concat(c, path, o.flipSinToCos ? [cos, sin] : [sin, cos], -1);
  if (dim % 2 === 1) emb = c.g.op1("Pad", [emb, c.g.ints(`${path}/pads`, [0, 0, 0, 1])], { path });
  if (c.g.floatType !== DataType.FLOAT) emb = c.g.op1("Cast", [emb], { path, attrs: { to: c.g.floatType } });
  return identity(c, path, emb);
}
