/**
 * OpenCV's `cv2.GaussianBlur(src, (k, k), sigma)` for uint8 images, bit for bit (OpenCV 4.x smooth.dispatch.cpp
 * and smooth.simd.hpp). For 8-bit input OpenCV runs a bit-exact fixed-point path:
 *
 * - the kernel is computed in double (`getGaussianKernelBitExact`; sigma <= 0 means 0.3*((k-1)/2-1)+0.8,
 *   evaluated as the fused multiply-add k*0.15+0.35), then quantised to 8 fractional bits with error
 *   diffusion from the tails inward, the centre tap taking whatever makes the sum exactly 256;
 * - a horizontal pass gives exact integers with 8 fractional bits, the vertical pass multiplies by the 8-bit
 *   kernel again and rounds once: (sum + 2^15) >> 16;
 * - borders are BORDER_REFLECT_101 (OpenCV's default): ... 2 1 | 0 1 2 ... | n-2 n-3 ...
 */
import { type U8Image, u8Image } from "./types.ts";

const FRACTION_BITS = 8;

/** Exact a*b+c rounded once (IEEE fma), by BigInt arithmetic on the binary expansions. */
export function fma(a: number, b: number, c: number): number {
  const split = (x: number): [bigint, number] => {
    if (x === 0) return [0n, 0];
    let e = 0;
    let m = x;
    while (!Number.isInteger(m)) {
      m *= 2;
      e--;
    }
    return [BigInt(m), e];
  };
  const [ma, ea] = split(a);
  const [mb, eb] = split(b);
  const [mc, ec] = split(c);
  const ep = ea + eb;
  const e = Math.min(ep, ec);
  const sum = (ma * mb << BigInt(ep - e)) + (mc << BigInt(ec - e));
  // Number(bigint) rounds to nearest-even; scaling by a power of two is exact away from under/overflow.
  return Number(sum) * 2 ** e;
}

/** cvRound: nearest integer, ties to even. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** OpenCV's getGaussianKernelBitExact (double values, sum 1 up to rounding). */
export function gaussianKernelDouble(n: number, sigma: number): Float64Array {
  if (!Number.isInteger(n) || n < 1 || n % 2 !== 1) {
    throw new RangeError(`Gaussian kernel size must be odd, got ${n}`);
  }
  if (sigma <= 0) {
    const fixed: Record<number, number[]> = {
      1: [1],
      3: [0.25, 0.5, 0.25],
      5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
      7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
      9: [4, 13, 30, 51, 60, 51, 30, 13, 4].map((v) => v / 256),
    };
    if (fixed[n]) return Float64Array.from(fixed[n]);
  }
  const sigmaX = sigma > 0 ? sigma : fma(n, 0.15, 0.35);
  const scale2X = -0.125 / (sigmaX * sigmaX);
  const n2 = (n - 1) / 2;
  const values = new Float64Array(n2);
  let sum = 0;
  for (let i = 0, x = 1 - n; i < n2; i++, x += 2) {
    const t = Math.exp(x * x * scale2X);
    values[i] = t;
    sum += t;
  }
  sum *= 2;
  sum += 1;
  const mul1 = 1 / sum;
  const out = new Float64Array(n);
  for (let i = 0; i < n2; i++) {
    out[i] = values[i] * mul1;
    out[n - 1 - i] = out[i];
  }
  out[n2] = 1 * mul1;
  return out;
}

/** OpenCV's getGaussianKernelFixedPoint_ED: integer taps with `FRACTION_BITS` fractional bits summing to 2^bits. */
export function gaussianKernelFixed(n: number, sigma: number): Int32Array {
  const k = gaussianKernelDouble(n, sigma);
  const one = 1 << FRACTION_BITS;
  const out = new Int32Array(n);
  const n2 = (n - 1) / 2;
  let err = 0;
  let sum = 0;
  for (let i = 0; i < n2; i++) {
    const adj = k[i] * one + err;
    const v = roundEven(adj);
    err = adj - v;
    out[i] = v;
    out[n - 1 - i] = v;
    sum += v;
  }
  out[n2] = one - 2 * sum;
  return out;
}

/** OpenCV borderInterpolate for BORDER_REFLECT_101. */
export function reflect101(p: number, len: number): number {
  if (len === 1) return 0;
  while (p < 0 || p >= len) p = p < 0 ? -p : 2 * len - 2 - p;
  return p;
}

/**
 * `cv2.GaussianBlur(img, (kx, ky), sigma)` on a uint8 image (BORDER_REFLECT_101). `sigma <= 0` derives sigma
 * from the kernel size as OpenCV does (k=51 -> 8.0, k=31 -> 5.0).
 */
export function gaussianBlur8u(img: U8Image, kx: number, ky: number = kx, sigma = 0): U8Image {
  const { width: w, height: h, channels: cn, data } = img;
  // A dimension of 1 pixel is not blurred along it (OpenCV sets that kernel size to 1).
  const kxs = w === 1 ? 1 : kx;
  const kys = h === 1 ? 1 : ky;
  if (kxs === 1 && kys === 1) return u8Image(w, h, cn, data.slice());
  const fx = gaussianKernelFixed(kxs, sigma);
  const fy = gaussianKernelFixed(kys, sigma);
  const rx = (kxs - 1) / 2;
  const ry = (kys - 1) / 2;

  // Horizontal pass: exact sums with 8 fractional bits (at most 255*256, so no 16-bit saturation occurs).
  const colIdx = new Int32Array(w * kxs);
  for (let x = 0; x < w; x++) for (let i = 0; i < kxs; i++) colIdx[x * kxs + i] = reflect101(x + i - rx, w);
  const hbuf = new Int32Array(w * h * cn);
  for (let y = 0; y < h; y++) {
    const row = y * w * cn;
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < cn; c++) {
        let s = 0;
        for (let i = 0; i < kxs; i++) s += fx[i] * data[row + colIdx[x * kxs + i] * cn + c];
        hbuf[row + x * cn + c] = s;
      }
    }
  }
  // Vertical pass: 16 fractional bits, rounded once to 8 bits.
  const out = new Uint8Array(w * h * cn);
  const rowLen = w * cn;
  for (let y = 0; y < h; y++) {
    for (let j = 0; j < rowLen; j++) {
      let s = 0;
      for (let i = 0; i < kys; i++) s += fy[i] * hbuf[reflect101(y + i - ry, h) * rowLen + j];
      const v = Math.floor((s + 32768) / 65536);
      out[y * rowLen + j] = v > 255 ? 255 : v;
    }
  }
  return u8Image(w, h, cn, out);
}
