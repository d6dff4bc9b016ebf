/**
 * OpenCV's `cv2.resize(src, (w, h))` (default INTER_LINEAR) for uint8 images, bit for bit (OpenCV 4.x
 * resize.cpp, the non-IPP path that 8-bit linear resizing takes). Upstream uses it in `blur_mask` (mask ->
 * 64x64) and in SCRFD's letterbox.
 *
 * - Coefficients: source position fx = (dx+0.5)*scale-0.5 in float32, split into floor and fraction, the
 *   two weights rounded to 11-bit integers (INTER_RESIZE_COEF_BITS) separately (they need not sum to 2048).
 *   Columns falling outside are clamped with weight (2048, 0); rows are clamped but keep their weights.
 * - Vertical pass: ((b0*(S0>>4))>>16) + ((b1*(S1>>4))>>16) + 2 >> 2, OpenCV's VResizeLinear for uchar.
 * - An exact 2x shrink in both directions is turned into INTER_AREA (mean of 2x2, rounded), as OpenCV does.
 * - Same size is a plain copy.
 */
import { type U8Image, u8Image } from "./types.ts";

const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS;

/** cvRound / saturate_cast<short>(float): round half to even. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

interface Axis {
  /** First source index per output index (already clamped for columns, raw for rows). */
  readonly ofs: Int32Array;
  readonly a0: Int32Array;
  readonly a1: Int32Array;
}

function axisCoeffs(srcSize: number, dstSize: number, clampWeights: boolean): Axis {
  const scale = 1 / (dstSize / srcSize);
  const ofs = new Int32Array(dstSize);
  const a0 = new Int32Array(dstSize);
  const a1 = new Int32Array(dstSize);
  for (let d = 0; d < dstSize; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clampWeights) {
      if (s < 0) {
        f = 0;
        s = 0;
      }
      if (s >= srcSize - 1) {
        f = 0;
        s = srcSize - 1;
      }
    }
    ofs[d] = s;
    a0[d] = roundEven(Math.fround(1 - f) * COEF_SCALE);
    a1[d] = roundEven(f * COEF_SCALE);
  }
  return { ofs, a0, a1 };
}

function areaFast2x(img: U8Image, dw: number, dh: number): U8Image {
  const { width: sw, channels: cn, data } = img;
  const out = new Uint8Array(dw * dh * cn);
  const sstride = sw * cn;
  for (let y = 0; y < dh; y++) {
    const r0 = 2 * y * sstride;
    const r1 = r0 + sstride;
    for (let x = 0; x < dw; x++) {
      for (let c = 0; c < cn; c++) {
        const p = 2 * x * cn + c;
        out[(y * dw + x) * cn + c] =
          (data[r0 + p] + data[r0 + p + cn] + data[r1 + p] + data[r1 + p + cn] + 2) >> 2;
      }
    }
  }
  return u8Image(dw, dh, cn, out);
}

/** `cv2.resize(img, (outWidth, outHeight))` with INTER_LINEAR on a uint8 image of 1..4 channels. */
export function cvResizeLinear(img: U8Image, outWidth: number, outHeight: number): U8Image {
  if (!Number.isInteger(outWidth) || !Number.isInteger(outHeight) || outWidth < 1 || outHeight < 1) {
    throw new RangeError(`resize target must be positive integers, got ${outWidth}x${outHeight}`);
  }
  const { width: sw, height: sh, channels: cn, data } = img;
  if (sw === outWidth && sh === outHeight) return u8Image(sw, sh, cn, data.slice());
  if (sw === 2 * outWidth && sh === 2 * outHeight) return areaFast2x(img, outWidth, outHeight);

  const xs = axisCoeffs(sw, outWidth, true);
  const ys = axisCoeffs(sh, outHeight, false);
  const rowW = outWidth * cn;
  // Horizontally resampled source rows, computed once each (OpenCV caches them the same way).
  const cache = new Map<number, Int32Array>();
  const hrow = (sy: number): Int32Array => {
    let r = cache.get(sy);
    if (r) return r;
    r = new Int32Array(rowW);
    const base = sy * sw * cn;
    for (let dx = 0; dx < outWidth; dx++) {
      const sx = xs.ofs[dx];
      const w0 = xs.a0[dx];
      const w1 = xs.a1[dx];
      const p = base + sx * cn;
      for (let c = 0; c < cn; c++) {
        // At the clamped right edge w1 is 0 and the neighbour index may be past the row: skip it.
        r[dx * cn + c] = w1 === 0 ? data[p + c] * w0 : data[p + c] * w0 + data[p + cn + c] * w1;
      }
    }
    if (cache.size > 4) cache.delete(cache.keys().next().value!);
    cache.set(sy, r);
    return r;
  };
  const out = new Uint8Array(outHeight * rowW);
  for (let dy = 0; dy < outHeight; dy++) {
    const s = ys.ofs[dy];
    const s0 = hrow(Math.min(Math.max(s, 0), sh - 1));
    const s1 = hrow(Math.min(Math.max(s + 1, 0), sh - 1));
    const b0 = ys.a0[dy];
    const b1 = ys.a1[dy];
    const o = dy * rowW;
    for (let i = 0; i < rowW; i++) {
      const v = (((b0 * (s0[i] >> 4)) >> 16) + ((b1 * (s1[i] >> 4)) >> 16) + 2) >> 2;
      out[o + i] = v & 0xff; // OpenCV casts with uchar(), no saturation
    }
  }
  return u8Image(outWidth, outHeight, cn, out);
}
