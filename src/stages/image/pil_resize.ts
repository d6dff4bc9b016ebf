/**
 * PIL's `Image.resize(size, Image.BILINEAR)` for 8-bit images (Pillow 10.3, libImaging/Resample.c), bit for
 * bit. This is what torchvision's `Resize` does to a PIL image, so upstream's pixel tensor, face region and
 * mask pyramids all go through it.
 *
 * PIL's bilinear is antialiased: when shrinking, the triangle filter's support grows with the scale factor.
 * Coefficients are computed in double, normalised per output pixel, then turned into fixed-point integers
 * with 22 fractional bits (PRECISION_BITS = 32 - 8 - 2); the horizontal pass runs first and rounds to 8 bits
 * before the vertical pass, exactly like PIL.
 */
import { type U8Image, u8Image } from "./types.ts";

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);

/** Per-output-pixel first input index, tap count and integer weights (row-major, `ksize` per output). */
interface Coeffs {
  readonly ksize: number;
  readonly xmin: Int32Array;
  readonly count: Int32Array;
  readonly k: Int32Array;
}

function bilinearFilter(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

/** PIL's precompute_coeffs + normalize_coeffs_8bpc for the box [0, inSize) mapped onto outSize pixels. */
function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const xminA = new Int32Array(outSize);
  const countA = new Int32Array(outSize);
  const kA = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C casts truncate toward zero; a negative start is clamped right after, so trunc is what matters.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = bilinearFilter((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      // (int)(0.5 + v * 2^22): truncation after adding a half, as PIL writes it (weights are never negative).
      kA[xx * ksize + x] = v < 0
        ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS))
        : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    xminA[xx] = xmin;
    countA[xx] = xmax;
  }
  return { ksize, xmin: xminA, count: countA, k: kA };
}

function clip8(v: number): number {
  if (v >= (1 << PRECISION_BITS) * 256) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/**
 * Resizes an 8-bit image with PIL's BILINEAR filter (any channel count, channels handled independently as
 * PIL does for L and RGB). Same size returns a copy, as `Image.resize` does.
 */
export function pilResizeBilinear(img: U8Image, outWidth: number, outHeight: number): U8Image {
  if (!Number.isInteger(outWidth) || !Number.isInteger(outHeight) || outWidth < 1 || outHeight < 1) {
    throw new RangeError(`resize target must be positive integers, got ${outWidth}x${outHeight}`);
  }
  const { width: inW, height: inH, channels: cn } = img;
  if (inW === outWidth && inH === outHeight) return u8Image(inW, inH, cn, img.data.slice());

  const needH = outWidth !== inW;
  const needV = outHeight !== inH;
  const horiz = precomputeCoeffs(inW, outWidth);
  const vert = precomputeCoeffs(inH, outHeight);

  // Horizontal pass over only the rows the vertical pass will read (PIL's ybox_first..ybox_last).
  let src = img.data;
  let srcW = inW;
  let rowOffset = 0;
  let rows = inH;
  if (needH) {
    const first = vert.xmin[0];
    const last = vert.xmin[outHeight - 1] + vert.count[outHeight - 1];
    rows = last - first;
    const tmp = new Uint8Array(outWidth * rows * cn);
    const { ksize, xmin, count, k } = horiz;
    for (let yy = 0; yy < rows; yy++) {
      const inRow = (yy + first) * inW * cn;
      const outRow = yy * outWidth * cn;
      for (let xx = 0; xx < outWidth; xx++) {
        const x0 = xmin[xx];
        const n = count[xx];
        const kb = xx * ksize;
        for (let c = 0; c < cn; c++) {
          let ss = HALF;
          let p = inRow + x0 * cn + c;
          for (let x = 0; x < n; x++, p += cn) ss += img.data[p] * k[kb + x];
          tmp[outRow + xx * cn + c] = clip8(ss);
        }
      }
    }
    src = tmp;
    srcW = outWidth;
    rowOffset = first;
  }
  if (!needV) return u8Image(outWidth, outHeight, cn, needH ? src : src.slice());

  const out = new Uint8Array(outWidth * outHeight * cn);
  const { ksize, xmin, count, k } = vert;
  const stride = srcW * cn;
  for (let yy = 0; yy < outHeight; yy++) {
    const y0 = xmin[yy] - (needH ? rowOffset : 0);
    const n = count[yy];
    const kb = yy * ksize;
    const outRow = yy * srcW * cn;
    for (let i = 0; i < stride; i++) {
      let ss = HALF;
      let p = y0 * stride + i;
      for (let y = 0; y < n; y++, p += stride) ss += src[p] * k[kb + y];
      out[outRow + i] = clip8(ss);
    }
  }
  return u8Image(outWidth, outHeight, cn, out);
}
