/**
 * OpenCV's `cv2.normalize(src, None, 0, 255, cv2.NORM_MINMAX)` for a uint8 image (OpenCV 4.x norm.cpp and
 * convert_scale): min/max of the input, scale = 255/(max-min) (0 for a constant image), shift = -min*scale,
 * then `convertTo` with both rounded to float32 and applied as a fused multiply-add (OpenCV's SIMD v_fma),
 * rounded half to even and saturated.
 */
import { type U8Image, u8Image } from "./types.ts";

const DBL_EPSILON = 2.220446049250313e-16;

function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** `cv2.normalize(img, None, alpha, beta, NORM_MINMAX)` for uint8 in and out (defaults 0..255). */
export function normalizeMinMax8u(img: U8Image, alpha = 0, beta = 255): U8Image {
  const { data } = img;
  let smin = 255;
  let smax = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < smin) smin = v;
    if (v > smax) smax = v;
  }
  const dmin = Math.min(alpha, beta);
  const dmax = Math.max(alpha, beta);
  const scale = (dmax - dmin) * (smax - smin > DBL_EPSILON ? 1 / (smax - smin) : 0);
  const shift = dmin - smin * scale;
  const out = new Uint8Array(data.length);
  if (Math.abs(scale - 1) < DBL_EPSILON && Math.abs(shift) < DBL_EPSILON) {
    out.set(data); // convertTo without scaling is a copy
  } else {
    const a = Math.fround(scale);
    const b = Math.fround(shift);
    // v*a is exact in double (8-bit times 24-bit), and so is adding b here: one fround is the fma result.
    const lut = new Uint8Array(256);
    for (let v = 0; v < 256; v++) {
      const r = roundEven(Math.fround(v * a + b));
      lut[v] = r < 0 ? 0 : r > 255 ? 255 : r;
    }
    for (let i = 0; i < data.length; i++) out[i] = lut[data[i]];
  }
  return u8Image(img.width, img.height, img.channels, out);
}
