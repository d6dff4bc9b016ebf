/**
 * numpy's float32 summation, reproduced bit for bit: `np.add.reduce` over a contiguous float32 array uses
 * pairwise summation (8 accumulators, blocks of 128, halves rounded to multiples of 8), in float32, applied
 * by numpy 1.x (hallo pins 1.26.4) to successive buffers of 8,192 elements whose sums are added in order.
 * (numpy >= 2.3 no longer splits at 8,192: on 32,000 samples the variance differs by 2 ulp. The upstream
 * references match the 1.x behaviour bit for bit.)
 * Mean and variance built on it follow `numpy/_core/_methods.py` (`_mean`, `_var`), so the wav2vec2
 * normalisation matches transformers' numpy code exactly rather than to the last few bits.
 */

const PW_BLOCKSIZE = 128;
/** numpy 1.x's default ufunc buffer size (elements), which bounds each pairwise run in a reduction. */
const NPY_BUFSIZE = 8192;

function pairwise(a: Float32Array, off: number, n: number): number {
  const f = Math.fround;
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res = f(res + a[off + i]);
    return res;
  }
  if (n <= PW_BLOCKSIZE) {
    let r0 = a[off], r1 = a[off + 1], r2 = a[off + 2], r3 = a[off + 3];
    let r4 = a[off + 4], r5 = a[off + 5], r6 = a[off + 6], r7 = a[off + 7];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      const o = off + i;
      r0 = f(r0 + a[o]);
      r1 = f(r1 + a[o + 1]);
      r2 = f(r2 + a[o + 2]);
      r3 = f(r3 + a[o + 3]);
      r4 = f(r4 + a[o + 4]);
      r5 = f(r5 + a[o + 5]);
      r6 = f(r6 + a[o + 6]);
      r7 = f(r7 + a[o + 7]);
    }
    let res = f(f(f(r0 + r1) + f(r2 + r3)) + f(f(r4 + r5) + f(r6 + r7)));
    for (; i < n; i++) res = f(res + a[off + i]);
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return f(pairwise(a, off, n2) + pairwise(a, off + n2, n - n2));
}

/** `np.sum(a)` for a contiguous float32 array under numpy 1.x (float32 accumulation, pairwise per buffer). */
export function numpySumF32(a: Float32Array): number {
  let acc = 0;
  for (let o = 0; o < a.length; o += NPY_BUFSIZE) {
    acc = Math.fround(acc + pairwise(a, o, Math.min(NPY_BUFSIZE, a.length - o)));
  }
  return acc;
}

/** `a.mean()` for float32: float32 sum, divided in float64, cast to float32. */
export function numpyMeanF32(a: Float32Array): number {
  return Math.fround(numpySumF32(a) / a.length);
}

/** `a.var()` (ddof 0) for float32: float32 mean, float32 squared deviations, float32 pairwise sum, / N. */
export function numpyVarF32(a: Float32Array): number {
  const mean = numpyMeanF32(a);
  const d = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = Math.fround(a[i] - mean);
    d[i] = x * x;
  }
  return Math.fround(numpySumF32(d) / a.length);
}
