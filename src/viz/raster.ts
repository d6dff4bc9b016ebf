/**
 * Small raster helpers for the PNG renderings: packed RGB images, tensors and value maps to colours,
 * resizing and blending. Images here are thumbnails (at most a few hundred pixels a side), so plain loops
 * are fast enough and keep the PNG and Plotly renderings pixel-identical where they share an image.
 */
import { Buffer } from "node:buffer";
import sharp from "sharp";
import { type Colormap, colormapTable, VIRIDIS } from "./colormap.ts";
import { VizError } from "./figure.ts";

/** A packed 8-bit RGB image (row-major, `width * height * 3` bytes). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A blank RGB image of one colour. */
export function rgbImage(
  width: number,
  height: number,
  fill: readonly [number, number, number] = [255, 255, 255],
): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(fill, i * 3);
  return { width, height, data };
}

/**
 * A (3, H, W) float image to RGB: `range` says which values map to 0 and 255 (the pipeline's images are
 * in [-1, 1], decoded frames in [0, 1]); values outside are clamped.
 */
export function chwToRgb(
  data: ArrayLike<number>,
  height: number,
  width: number,
  range: readonly [number, number] = [-1, 1],
): RgbImage {
  const plane = height * width;
  if (data.length < 3 * plane) {
    throw new VizError(`image data has ${data.length} values, (3, ${height}, ${width}) needs ${3 * plane}`);
  }
  const out = new Uint8Array(plane * 3);
  const [lo, hi] = range;
  const s = 255 / (hi - lo);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = (data[c * plane + i] - lo) * s;
      out[i * 3 + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return { width, height, data: out };
}

/** min and max of the finite values (0, 0 when there are none). */
export function finiteRange(values: ArrayLike<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return Number.isFinite(lo) && Number.isFinite(hi) ? [lo, hi] : [0, 0];
}

/** A value map (row-major `height * width`) through a colormap; `range` defaults to the data's min..max. */
export function colorize(
  values: ArrayLike<number>,
  width: number,
  height: number,
  cmap: Colormap = VIRIDIS,
  range?: readonly [number, number],
): RgbImage {
  if (values.length !== width * height) {
    throw new VizError(`map has ${values.length} values, ${width}x${height} needs ${width * height}`);
  }
  const lut = colormapTable(cmap);
  const [lo, hi] = range ?? finiteRange(values);
  const s = hi > lo ? 255 / (hi - lo) : 0;
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const k = Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round((v - lo) * s))) : 0;
    out[i * 3] = lut[k * 3];
    out[i * 3 + 1] = lut[k * 3 + 1];
    out[i * 3 + 2] = lut[k * 3 + 2];
  }
  return { width, height, data: out };
}

/** Bilinear resize of a value map (half-pixel centres, edges clamped). */
export function resizeMap(
  values: ArrayLike<number>,
  width: number,
  height: number,
  outW: number,
  outH: number,
): Float32Array {
  const out = new Float32Array(outW * outH);
  const sx = width / outW, sy = height / outH;
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), height - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, height - 1), wy = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), width - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, width - 1), wx = fx - x0;
      const a = values[y0 * width + x0], b = values[y0 * width + x1];
      const c = values[y1 * width + x0], d = values[y1 * width + x1];
      out[y * outW + x] = (a * (1 - wx) + b * wx) * (1 - wy) + (c * (1 - wx) + d * wx) * wy;
    }
  }
  return out;
}

/** Resizes an RGB image: nearest neighbour (crisp cells for small maps) or bilinear (photos). */
export function resizeRgb(img: RgbImage, outW: number, outH: number, mode: "nearest" | "bilinear"): RgbImage {
  if (img.width === outW && img.height === outH) return img;
  const out = new Uint8Array(outW * outH * 3);
  if (mode === "nearest") {
    for (let y = 0; y < outH; y++) {
      const sy = Math.min(img.height - 1, Math.floor((y * img.height) / outH));
      for (let x = 0; x < outW; x++) {
        const sx = Math.min(img.width - 1, Math.floor((x * img.width) / outW));
        const s = (sy * img.width + sx) * 3, d = (y * outW + x) * 3;
        out[d] = img.data[s];
        out[d + 1] = img.data[s + 1];
        out[d + 2] = img.data[s + 2];
      }
    }
    return { width: outW, height: outH, data: out };
  }
  const plane = img.width * img.height;
  for (let c = 0; c < 3; c++) {
    const ch = new Float32Array(plane);
    for (let i = 0; i < plane; i++) ch[i] = img.data[i * 3 + c];
    const r = resizeMap(ch, img.width, img.height, outW, outH);
    for (let i = 0; i < r.length; i++) out[i * 3 + c] = Math.round(r[i]);
  }
  return { width: outW, height: outH, data: out };
}

/** Scales an image so that its longer side is `side` (nearest when enlarging small maps, else bilinear). */
export function fitTo(img: RgbImage, side: number): RgbImage {
  const s = side / Math.max(img.width, img.height);
  const w = Math.max(1, Math.round(img.width * s)), h = Math.max(1, Math.round(img.height * s));
  return resizeRgb(img, w, h, s >= 2 ? "nearest" : "bilinear");
}

/** The image in grey (luma), still RGB: a quiet background for overlays. */
export function grey(img: RgbImage): RgbImage {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < img.data.length; i += 3) {
    const v = Math.round(0.299 * img.data[i] + 0.587 * img.data[i + 1] + 0.114 * img.data[i + 2]);
    out[i] = out[i + 1] = out[i + 2] = v;
  }
  return { width: img.width, height: img.height, data: out };
}

/** `top` over `base` with opacity `alpha` (a number, or one value in [0, 1] per pixel). */
export function blend(base: RgbImage, top: RgbImage, alpha: number | ArrayLike<number>): RgbImage {
  if (base.width !== top.width || base.height !== top.height) {
    throw new VizError(`cannot blend ${top.width}x${top.height} over ${base.width}x${base.height}`);
  }
  const out = new Uint8Array(base.data.length);
  for (let p = 0; p < base.width * base.height; p++) {
    const a = typeof alpha === "number" ? alpha : alpha[p];
    for (let c = 0; c < 3; c++) {
      const i = p * 3 + c;
      out[i] = Math.round(base.data[i] * (1 - a) + top.data[i] * a);
    }
  }
  return { width: base.width, height: base.height, data: out };
}

/** A value map upsampled over an image and blended on its grey copy: how attention or masks are shown. */
export function overlayMap(
  base: RgbImage,
  values: ArrayLike<number>,
  width: number,
  height: number,
  o: { cmap?: Colormap; range?: readonly [number, number]; alpha?: number } = {},
): RgbImage {
  const up = resizeMap(values, width, height, base.width, base.height);
  const range = o.range ?? finiteRange(values);
  return blend(grey(base), colorize(up, base.width, base.height, o.cmap, range), o.alpha ?? 0.6);
}

/** A `data:` URI of the image, PNG (exact) or JPEG (small; for photo backgrounds in Plotly figures). */
export async function imageDataUri(img: RgbImage, format: "png" | "jpeg" = "png"): Promise<string> {
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  const buf = await (format === "png" ? s.png() : s.jpeg({ quality: 85 })).toBuffer();
  return `data:image/${format};base64,${Buffer.from(buf).toString("base64")}`;
}
