/**
 * OpenCV's `cv2.warpAffine(src, M, (w, h), borderValue=0)` (INTER_LINEAR, BORDER_CONSTANT) for uint8 images,
 * bit for bit (OpenCV 4.x imgwarp.cpp, IPP disabled there): M is inverted in double, each destination pixel's
 * source position is computed in fixed point with 10 fractional bits, cut to a 1/32-pixel grid
 * (INTER_BITS = 5), and interpolated with 15-bit integer weights. insightface's ArcFace alignment
 * (`face_align.norm_crop`) uses it.
 */
import { type U8Image, u8Image } from "./types.ts";

const INTER_BITS = 5;
const INTER_TAB_SIZE = 1 << INTER_BITS;
const AB_BITS = 10;
const AB_SCALE = 1 << AB_BITS;
const COEF_BITS = 15;

/** A 2x3 affine matrix, row-major [a, b, c, d, e, f]: x' = a x + b y + c, y' = d x + e y + f. */
export type Affine2x3 = readonly [number, number, number, number, number, number];

/** cvRound on a double (nearest, ties to even), saturating to int32 as saturate_cast<int> does. */
function cvRound(x: number): number {
  if (Number.isNaN(x)) return -2147483648;
  const r = Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x);
  return r > 2147483647 ? 2147483647 : r < -2147483648 ? -2147483648 : r;
}

function saturateShort(v: number): number {
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

/** OpenCV's inversion of M for the forward (non-WARP_INVERSE_MAP) case. */
export function invertAffine(m: Affine2x3): Affine2x3 {
  let [a, b, c, d, e, f] = m;
  let det = a * e - b * d;
  det = det !== 0 ? 1 / det : 0;
  const a11 = e * det;
  const a22 = a * det;
  a = a11;
  b *= -det;
  d *= -det;
  e = a22;
  const b1 = -a * c - b * f;
  const b2 = -d * c - e * f;
  return [a, b, b1, d, e, b2];
}

/**
 * `cv2.warpAffine(img, M, (outWidth, outHeight), borderValue=0.0)`: bilinear, constant-zero border.
 * `m` maps source to destination (OpenCV inverts it, as without WARP_INVERSE_MAP).
 */
export function warpAffineLinear(img: U8Image, m: Affine2x3, outWidth: number, outHeight: number): U8Image {
  const { width: sw, height: sh, channels: cn, data } = img;
  const inv = invertAffine(m);
  const out = new Uint8Array(outWidth * outHeight * cn);
  const adelta = new Int32Array(outWidth);
  const bdelta = new Int32Array(outWidth);
  for (let x = 0; x < outWidth; x++) {
    adelta[x] = cvRound(inv[0] * x * AB_SCALE);
    bdelta[x] = cvRound(inv[3] * x * AB_SCALE);
  }
  const roundDelta = AB_SCALE / INTER_TAB_SIZE / 2;
  const sstride = sw * cn;
  const px = (x: number, y: number, c: number) =>
    x >= 0 && y >= 0 && x < sw && y < sh ? data[y * sstride + x * cn + c] : 0;
  for (let y = 0; y < outHeight; y++) {
    const x0 = cvRound((inv[1] * y + inv[2]) * AB_SCALE) + roundDelta;
    const y0 = cvRound((inv[4] * y + inv[5]) * AB_SCALE) + roundDelta;
    for (let x = 0; x < outWidth; x++) {
      // int32 arithmetic as in C (the sums stay far below overflow for sane matrices).
      const X = (x0 + adelta[x]) >> (AB_BITS - INTER_BITS);
      const Y = (y0 + bdelta[x]) >> (AB_BITS - INTER_BITS);
      const sx = saturateShort(X >> INTER_BITS);
      const sy = saturateShort(Y >> INTER_BITS);
      const fx = X & (INTER_TAB_SIZE - 1);
      const fy = Y & (INTER_TAB_SIZE - 1);
      const o = (y * outWidth + x) * cn;
      if (sx >= sw || sx + 1 < 0 || sy >= sh || sy + 1 < 0) continue; // wholly outside: border value 0
      // Bilinear table entry: products of (32-f, f) pairs, times 32 to reach 2^15.
      const w0 = (INTER_TAB_SIZE - fy) * (INTER_TAB_SIZE - fx) * 32;
      const w1 = (INTER_TAB_SIZE - fy) * fx * 32;
      const w2 = fy * (INTER_TAB_SIZE - fx) * 32;
      const w3 = fy * fx * 32;
      for (let c = 0; c < cn; c++) {
        const s = px(sx, sy, c) * w0 + px(sx + 1, sy, c) * w1 + px(sx, sy + 1, c) * w2 +
          px(sx + 1, sy + 1, c) * w3;
        const v = (s + (1 << (COEF_BITS - 1))) >> COEF_BITS;
        out[o + c] = v > 255 ? 255 : v;
      }
    }
  }
  return u8Image(outWidth, outHeight, cn, out);
}
