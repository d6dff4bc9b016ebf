/** Attention probabilities built the way the UNet builds them, for known-answer tests of the inspect measures. */
import { f32, type F32Tensor } from "../../src/tensor.ts";

/** Deterministic values in [-1, 1) (a small LCG), so tests need no randomness. */
export function lcg(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/**
 * softmax(q k^T / sqrt(d)) for `q` (rows, heads, S, d) and `k` (rows, heads, L, d), returned as
 * (rows, heads, S, L) probabilities.
 */
export function softmaxAttention(
  q: Float32Array,
  k: Float32Array,
  dims: { rows: number; heads: number; queries: number; keys: number; dim: number },
): F32Tensor {
  const { rows, heads, queries: S, keys: L, dim: d } = dims;
  const out = new Float32Array(rows * heads * S * L);
  for (let rh = 0; rh < rows * heads; rh++) {
    for (let i = 0; i < S; i++) {
      const scores = new Float64Array(L);
      for (let j = 0; j < L; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[(rh * S + i) * d + c] * k[(rh * L + j) * d + c];
        scores[j] = s / Math.sqrt(d);
      }
      const m = Math.max(...scores);
      let z = 0;
      for (let j = 0; j < L; j++) z += scores[j] = Math.exp(scores[j] - m);
      for (let j = 0; j < L; j++) out[(rh * S + i) * L + j] = scores[j] / z;
    }
  }
  return f32([rows, heads, S, L], out);
}
