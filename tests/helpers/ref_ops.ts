/**
 * Plain TypeScript reference implementations of the layer vocabulary (src/onnx/layers.ts), written from the
 * PyTorch/diffusers definitions with loops and float64 accumulation, so the ONNX graphs have something
 * independent to be checked against. Row-major tensors; results are float32.
 */
import { f32, type F32Tensor, numel } from "../../src/tensor.ts";

/** Row-major strides of `shape`. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

function map(x: F32Tensor, f: (v: number) => number): F32Tensor {
  return f32(x.shape, x.data.map(f));
}

// ---------------------------------------------------------------- convolutions and linear

export interface ConvRefOptions {
  stride?: number;
  /** Symmetric padding, or [top, left, bottom, right] (conv2d) / [left, right] (conv1d). */
  pad?: number | readonly number[];
  groups?: number;
}

/** torch.nn.functional.conv2d on NCHW with weight (O, C/groups, kh, kw). */
export function conv2d(
  x: F32Tensor,
  w: F32Tensor,
  b: F32Tensor | undefined,
  o: ConvRefOptions = {},
): F32Tensor {
  const [N, C, H, W] = x.shape;
  const [O, Cg, KH, KW] = w.shape;
  const s = o.stride ?? 1, G = o.groups ?? 1;
  const [pt, pl, pb, pr] = typeof o.pad === "object" ? o.pad : Array(4).fill(o.pad ?? 0);
  if (Cg * G !== C) throw new Error(`conv2d: ${C} channels, weight expects ${Cg}x${G}`);
  const OH = Math.floor((H + pt + pb - KH) / s) + 1;
  const OW = Math.floor((W + pl + pr - KW) / s) + 1;
  const out = new Float32Array(N * O * OH * OW);
  const Og = O / G;
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < O; oc++) {
      const g = Math.floor(oc / Og);
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) {
          let acc = b ? b.data[oc] : 0;
          for (let ic = 0; ic < Cg; ic++) {
            const c = g * Cg + ic;
            for (let ky = 0; ky < KH; ky++) {
              const iy = oy * s - pt + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < KW; kx++) {
                const ix = ox * s - pl + kx;
                if (ix < 0 || ix >= W) continue;
                acc += x.data[((n * C + c) * H + iy) * W + ix] * w.data[((oc * Cg + ic) * KH + ky) * KW + kx];
              }
            }
          }
          out[((n * O + oc) * OH + oy) * OW + ox] = acc;
        }
      }
    }
  }
  return f32([N, O, OH, OW], out);
}

/** torch.nn.functional.conv1d on NCL, as a conv2d with height 1. */
export function conv1d(
  x: F32Tensor,
  w: F32Tensor,
  b: F32Tensor | undefined,
  o: ConvRefOptions = {},
): F32Tensor {
  const [N, C, L] = x.shape;
  const [O, Cg, K] = w.shape;
  const s = o.stride ?? 1, G = o.groups ?? 1;
  const [pl, pr] = typeof o.pad === "object" ? o.pad : [o.pad ?? 0, o.pad ?? 0];
  const OL = Math.floor((L + pl + pr - K) / s) + 1;
  const out = new Float32Array(N * O * OL);
  const Og = O / G;
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < O; oc++) {
      const g = Math.floor(oc / Og);
      for (let ol = 0; ol < OL; ol++) {
        let acc = b ? b.data[oc] : 0;
        for (let ic = 0; ic < Cg; ic++) {
          for (let k = 0; k < K; k++) {
            const il = ol * s - pl + k;
            if (il < 0 || il >= L) continue;
            acc += x.data[(n * C + g * Cg + ic) * L + il] * w.data[(oc * Cg + ic) * K + k];
          }
        }
        out[(n * O + oc) * OL + ol] = acc;
      }
    }
  }
  return f32([N, O, OL], out);
}

/** torch.nn.functional.linear: x (..., in) @ w(out, in)^T + b. */
export function linear(x: F32Tensor, w: F32Tensor, b?: F32Tensor): F32Tensor {
  const [O, I] = w.shape;
  if (x.shape[x.shape.length - 1] !== I) {
    throw new Error(`linear: input width ${x.shape.at(-1)}, weight ${I}`);
  }
  const rows = x.data.length / I;
  const out = new Float32Array(rows * O);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < O; o++) {
      let acc = b ? b.data[o] : 0;
      for (let i = 0; i < I; i++) acc += x.data[r * I + i] * w.data[o * I + i];
      out[r * O + o] = acc;
    }
  }
  return f32([...x.shape.slice(0, -1), O], out);
}

// ---------------------------------------------------------------- normalisations

/** torch.nn.GroupNorm on (N, C, ...) with optional per-channel affine. */
export function groupNorm(
  x: F32Tensor,
  groups: number,
  eps: number,
  gamma?: F32Tensor,
  beta?: F32Tensor,
): F32Tensor {
  const [N, C] = x.shape;
  const inner = numel(x.shape.slice(2));
  const perGroup = (C / groups) * inner;
  const out = new Float32Array(x.data.length);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < groups; g++) {
      const base = (n * groups + g) * perGroup;
      let mean = 0;
      for (let i = 0; i < perGroup; i++) mean += x.data[base + i];
      mean /= perGroup;
      let v = 0;
      for (let i = 0; i < perGroup; i++) v += (x.data[base + i] - mean) ** 2;
      const inv = 1 / Math.sqrt(v / perGroup + eps);
      for (let i = 0; i < perGroup; i++) {
        const c = g * (C / groups) + Math.floor(i / inner);
        const y = (x.data[base + i] - mean) * inv;
        out[base + i] = gamma ? y * gamma.data[c] + beta!.data[c] : y;
      }
    }
  }
  return f32(x.shape, out);
}

/** torch.nn.LayerNorm over the last axis. */
export function layerNorm(x: F32Tensor, gamma: F32Tensor, beta: F32Tensor, eps: number): F32Tensor {
  const D = x.shape[x.shape.length - 1];
  const out = new Float32Array(x.data.length);
  for (let r = 0; r < x.data.length / D; r++) {
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x.data[r * D + i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x.data[r * D + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / D + eps);
    for (let i = 0; i < D; i++) {
      out[r * D + i] = (x.data[r * D + i] - mean) * inv * gamma.data[i] + beta.data[i];
    }
  }
  return f32(x.shape, out);
}

// ---------------------------------------------------------------- activations

/** The error function to ~1e-15: Maclaurin series near 0, Lentz continued fraction for erfc in the tails. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = ax, sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= -(ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(z) = exp(-z^2)/sqrt(pi) * 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))
  const tiny = 1e-300;
  let f = ax, c = ax, d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = ax + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = ax + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export function silu(x: F32Tensor): F32Tensor {
  return map(x, (v) => v / (1 + Math.exp(-v)));
}

/** torch GELU: exact `x * Phi(x)` or the tanh approximation. */
export function gelu(x: F32Tensor, approximate: "none" | "tanh" = "none"): F32Tensor {
  if (approximate === "tanh") {
    const k = Math.sqrt(2 / Math.PI);
    return map(x, (v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v * v * v))));
  }
  return map(x, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
}

/** diffusers GEGLU: proj to 2*dimOut, chunk(2) on the last axis, `hidden * gelu(gate)`. */
export function geglu(x: F32Tensor, w: F32Tensor, b: F32Tensor): F32Tensor {
  const h = linear(x, w, b);
  const [hidden, gate] = split(h, h.shape.length - 1, 2);
  const gg = gelu(gate);
  return f32(hidden.shape, hidden.data.map((v, i) => v * gg.data[i]));
}

// ---------------------------------------------------------------- attention

export interface AttentionWeights {
  wq: F32Tensor;
  wk: F32Tensor;
  wv: F32Tensor;
  bq?: F32Tensor;
  bk?: F32Tensor;
  bv?: F32Tensor;
  wo: F32Tensor;
  bo: F32Tensor;
}

/**
 * diffusers Attention (AttnProcessor2_0, no mask): q (B,S,Dq), kv (B,L,Dkv). Returns the output (B,S,Dq) and the
 * probabilities softmax(q k^T / sqrt(d)) per head (B,H,S,L).
 */
export function attention(
  q: F32Tensor,
  kv: F32Tensor,
  w: AttentionWeights,
  heads: number,
): { out: F32Tensor; probs: F32Tensor } {
  const Q = linear(q, w.wq, w.bq), K = linear(kv, w.wk, w.bk), V = linear(kv, w.wv, w.bv);
  const [B, S, inner] = Q.shape;
  const L = K.shape[1];
  const d = inner / heads;
  const scale = 1 / Math.sqrt(d);
  const probs = new Float32Array(B * heads * S * L);
  const ctx = new Float32Array(B * S * inner);
  const row = new Float64Array(L);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let s = 0; s < S; s++) {
        let max = -Infinity;
        for (let l = 0; l < L; l++) {
          let dot = 0;
          for (let i = 0; i < d; i++) {
            dot += Q.data[(b * S + s) * inner + h * d + i] * K.data[(b * L + l) * inner + h * d + i];
          }
          row[l] = dot * scale;
          max = Math.max(max, row[l]);
        }
        let sum = 0;
        for (let l = 0; l < L; l++) sum += row[l] = Math.exp(row[l] - max);
        for (let l = 0; l < L; l++) probs[((b * heads + h) * S + s) * L + l] = row[l] / sum;
        for (let i = 0; i < d; i++) {
          let acc = 0;
          for (let l = 0; l < L; l++) acc += (row[l] / sum) * V.data[(b * L + l) * inner + h * d + i];
          ctx[(b * S + s) * inner + h * d + i] = acc;
        }
      }
    }
  }
  return { out: linear(f32([B, S, inner], ctx), w.wo, w.bo), probs: f32([B, heads, S, L], probs) };
}

/** Mean over `axis` (dropping it). */
export function meanAxis(x: F32Tensor, axis: number): F32Tensor {
  const outer = numel(x.shape.slice(0, axis));
  const n = x.shape[axis];
  const inner = numel(x.shape.slice(axis + 1));
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += x.data[(o * n + k) * inner + i];
      out[o * inner + i] = acc / n;
    }
  }
  return f32([...x.shape.slice(0, axis), ...x.shape.slice(axis + 1)], out);
}

// ---------------------------------------------------------------- resampling and embeddings

/** F.interpolate(scale_factor=2, mode="nearest") on NCHW. */
export function upsampleNearest2x(x: F32Tensor): F32Tensor {
  const [N, C, H, W] = x.shape;
  const out = new Float32Array(N * C * 4 * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    for (let y = 0; y < 2 * H; y++) {
      for (let xx = 0; xx < 2 * W; xx++) {
        out[(nc * 2 * H + y) * 2 * W + xx] = x.data[(nc * H + (y >> 1)) * W + (xx >> 1)];
      }
    }
  }
  return f32([N, C, 2 * H, 2 * W], out);
}

/**
 * diffusers `get_timestep_embedding`, with torch's float32 steps: exponent = -ln(max_period) * arange(half)
 * / (half - shift), freqs = exp(exponent), args = t * freqs, then [sin, cos] (or [cos, sin]), zero-padded when
 * `dim` is odd.
 */
export function timestepEmbedding(
  t: readonly number[],
  dim: number,
  flipSinToCos: boolean,
  freqShift: number,
  maxPeriod = 10000,
): F32Tensor {
  const half = Math.floor(dim / 2);
  const fr = Math.fround;
  const negLog = fr(-Math.log(maxPeriod));
  const out = new Float32Array(t.length * dim);
  for (let b = 0; b < t.length; b++) {
    for (let i = 0; i < half; i++) {
      const freq = fr(Math.exp(fr(fr(negLog * i) / fr(half - freqShift))));
      const arg = fr(fr(t[b]) * freq);
      const s = Math.sin(arg), c = Math.cos(arg);
      out[b * dim + i] = flipSinToCos ? c : s;
      out[b * dim + half + i] = flipSinToCos ? s : c;
    }
  }
  return f32([t.length, dim], out);
}

// ---------------------------------------------------------------- shape helpers

/** numpy transpose with permutation `perm`. */
export function transpose(x: F32Tensor, perm: readonly number[]): F32Tensor {
  const shape = perm.map((p) => x.shape[p]);
  const inStrides = strides(x.shape);
  const out = new Float32Array(x.data.length);
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let a = 0; a < shape.length; a++) src += idx[a] * inStrides[perm[a]];
    out[o] = x.data[src];
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
  return f32(shape, out);
}

/** numpy concatenate along `axis` (negative counts from the end). */
export function concat(xs: readonly F32Tensor[], axis: number): F32Tensor {
  const r = xs[0].shape.length;
  const ax = axis < 0 ? axis + r : axis;
  const outer = numel(xs[0].shape.slice(0, ax));
  const inner = numel(xs[0].shape.slice(ax + 1));
  const total = xs.reduce((a, x) => a + x.shape[ax], 0);
  const out = new Float32Array(outer * total * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const x of xs) {
      const chunk = x.shape[ax] * inner;
      out.set(x.data.subarray(o * chunk, (o + 1) * chunk), at);
      at += chunk;
    }
  }
  const shape = [...xs[0].shape];
  shape[ax] = total;
  return f32(shape, out);
}

/** Python slicing `x[start:end:step]` on the given axes (negative and out-of-range bounds clamped as Python does). */
export function slice(
  x: F32Tensor,
  starts: readonly number[],
  ends: readonly number[],
  axes: readonly number[],
  steps?: readonly number[],
): F32Tensor {
  const r = x.shape.length;
  const picks: number[][] = x.shape.map((d) => Array.from({ length: d }, (_, i) => i));
  axes.forEach((a0, j) => {
    const a = a0 < 0 ? a0 + r : a0;
    const d = x.shape[a];
    const step = steps?.[j] ?? 1;
    const norm = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
    const idx: number[] = [];
    if (step > 0) {
      for (let i = norm(starts[j], 0, d); i < norm(ends[j], 0, d); i += step) idx.push(i);
    } else {
      for (let i = norm(starts[j], -1, d - 1); i > norm(ends[j], -1, d - 1); i += step) idx.push(i);
    }
    picks[a] = idx;
  });
  return gather(x, picks);
}

/** The sub-tensor of `x` made of the listed indices on every axis. */
function gather(x: F32Tensor, picks: readonly number[][]): F32Tensor {
  const shape = picks.map((p) => p.length);
  const st = strides(x.shape);
  const out = new Float32Array(numel(shape));
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let a = 0; a < shape.length; a++) src += picks[a][idx[a]] * st[a];
    out[o] = x.data[src];
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
  return f32(shape, out);
}

/** torch.chunk into `n` equal parts along `axis`. */
export function split(x: F32Tensor, axis: number, n: number): F32Tensor[] {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const part = x.shape[ax] / n;
  return Array.from({ length: n }, (_, k) => slice(x, [k * part], [(k + 1) * part], [ax]));
}

/** numpy tile with one repeat count per axis. */
export function tile(x: F32Tensor, reps: readonly number[]): F32Tensor {
  return gather(
    x,
    x.shape.map((d, a) => Array.from({ length: d * reps[a] }, (_, i) => i % d)),
  );
}
