/** Error measures between a computed tensor and its reference. */

export interface Errors {
  rel_l2: number;
  max_abs: number;
}

/** ||a-b|| / ||b|| (||a-b|| when b is all zeros) and max |a-b|; shape mismatches throw. */
export function compare(a: Float32Array, b: Float32Array, what = "tensor"): Errors {
  if (a.length !== b.length) {
    throw new Error(`${what}: ${a.length} elements computed, reference has ${b.length}`);
  }
  let num = 0, den = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
    const ad = Math.abs(d);
    if (ad > max || Number.isNaN(ad)) max = ad;
  }
  const rel = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  return { rel_l2: rel, max_abs: max };
}
