/**
 * Attention probabilities as the probes return them (`${module}.probs`): (rows, [heads,] queries, keys), each
 * query's row a softmax over keys. The checker every attribution measure runs first, and the head reduction
 * they share.
 */
import type { Tensor } from "../../tensor.ts";
import { InspectError } from "./errors.ts";

/** Probabilities with the heads averaged: `data[(r * queries + q) * keys + k]`. */
export interface HeadMeanProbs {
  rows: number;
  queries: number;
  keys: number;
  data: Float32Array;
}

/**
 * Checks that `t` is (rows, [heads,] queries, keys) float32 and that every query's mass sums to 1:
 * `|sum_k p[r, h, q, k] - 1| <= tol` for all r, h, q (and every p >= 0). Returns the largest deviation.
 * Throws an InspectError naming `name`, the row and the sum otherwise.
 */
export function checkAttentionMass(name: string, t: Tensor, tol = 1e-4): number {
  if (t.dtype !== "float32") {
    throw new InspectError(`${name}: float32 probabilities expected, got ${t.dtype}`);
  }
  if (t.shape.length !== 3 && t.shape.length !== 4) {
    throw new InspectError(`${name}: expected (rows, [heads,] queries, keys), got [${t.shape}]`);
  }
  const keys = t.shape[t.shape.length - 1];
  const d = t.data as Float32Array;
  let worst = 0;
  for (let q = 0; q < d.length / keys; q++) {
    let s = 0;
    for (let k = 0; k < keys; k++) {
      const v = d[q * keys + k];
      if (!(v >= 0)) throw new InspectError(`${name}: query row ${q} has probability ${v}`);
      s += v;
    }
    const dev = Math.abs(s - 1);
    if (dev > tol) throw new InspectError(`${name}: query row ${q} sums to ${s}, not 1 (tolerance ${tol})`);
    worst = Math.max(worst, dev);
  }
  return worst;
}

/**
 * `mean_h p[r, h, q, k]` for a per-head probe (rows, heads, queries, keys); a probe taken as "mean" (rows,
 * queries, keys) is returned as it is. Accumulates in float64, rounds once to float32.
 */
export function meanHeads(name: string, t: Tensor): HeadMeanProbs {
  checkAttentionMass(name, t);
  const d = t.data as Float32Array;
  if (t.shape.length === 3) {
    const [rows, queries, keys] = t.shape;
    return { rows, queries, keys, data: d };
  }
  const [rows, heads, queries, keys] = t.shape;
  const plane = queries * keys;
  const out = new Float32Array(rows * plane);
  const acc = new Float64Array(plane);
  for (let r = 0; r < rows; r++) {
    acc.fill(0);
    for (let h = 0; h < heads; h++) {
      const src = (r * heads + h) * plane;
      for (let i = 0; i < plane; i++) acc[i] += d[src + i];
    }
    for (let i = 0; i < plane; i++) out[r * plane + i] = acc[i] / heads;
  }
  return { rows, queries, keys, data: out };
}

/**
 * The rows of the conditional half: with guidance a probe holds the uncond rows first, then the cond rows
 * (`rows = copies * perCopy`); the last `perCopy` rows are the cond ones. Returns the first cond row.
 */
export function condRowStart(name: string, rows: number, perCopy: number): number {
  if (perCopy <= 0 || rows % perCopy !== 0) {
    throw new InspectError(`${name}: ${rows} rows are not whole copies of ${perCopy}`);
  }
  return rows - perCopy;
}
