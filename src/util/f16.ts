/** Half precision where upstream casts to float16. */

/** Rounds every value to the nearest half-precision value (round to nearest even, as torch's `.to(float16)`). */
export function roundToF16(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.f16round(a[i]);
  return out;
}
