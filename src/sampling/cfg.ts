/**
 * Classifier-free guidance as upstream's pipeline does it (spec section 6.2 step 7): the UNet runs a batch of
 * two, uncond first; `u, c = out.chunk(2)`; `eps = u + scale * (c - u)`.
 */

/** Thrown when the two halves do not fit together. */
export class CfgError extends Error {
  override name = "CfgError";
}

/** `out.chunk(2)` along the batch axis of a flat batch-of-two tensor: `[uncond, cond]` views (no copy). */
export function cfgSplit(out: Float32Array): [Float32Array, Float32Array] {
  if (out.length % 2 !== 0) throw new CfgError(`cfgSplit: ${out.length} values cannot split into two halves`);
  const h = out.length / 2;
  return [out.subarray(0, h), out.subarray(h)];
}

/**
 * `uncond + scale * (cond - uncond)`, each op rounded like torch: float32 by default, or `"float16"` to
 * mirror upstream's fp16 GPU run (float math, every result rounded to half).
 */
export function cfgCombine(
  uncond: Float32Array,
  cond: Float32Array,
  scale: number,
  dtype: "float32" | "float16" = "float32",
): Float32Array {
  if (uncond.length !== cond.length) {
    throw new CfgError(`cfgCombine: uncond has ${uncond.length} values, cond ${cond.length}`);
  }
  const f = Math.fround;
  const r: (x: number) => number = dtype === "float16" ? (x) => Math.f16round(f(x)) : f;
  // A Python float scale is cast to the op's float32 math type.
  const s = f(scale);
  const out = new Float32Array(uncond.length);
  for (let i = 0; i < out.length; i++) {
    const u = uncond[i];
    out[i] = r(u + r(s * r(cond[i] - u)));
  }
  return out;
}
