/**
 * insightface's ArcFace path (model_zoo/arcface_onnx.py + utils/face_align.py, v0.7.3) without the network:
 * the 5 SCRFD keypoints are mapped onto the ArcFace template by a least-squares similarity (skimage's
 * `SimilarityTransform.estimate`, i.e. Umeyama with scale), the image is warped to 112x112 with
 * `cv2.warpAffine` (bilinear, zero border), and the crop becomes a (1,3,112,112) RGB blob
 * (px - 127.5) / 127.5. The network itself is injected (`RunModel`), so an ONNX session plugs in later.
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import { type Affine2x3, warpAffineLinear } from "./cv_warp_affine.ts";
import { ImageError } from "./errors.ts";
import type { U8Image } from "./types.ts";

/** Runs one ONNX model on one input tensor; returns its outputs in the session's output order. */
export type RunModel = (input: F32Tensor) => Promise<Float32Array[]>;

/** ArcFace's 5-point template for a 112x112 crop (face_align.arcface_dst). */
export const ARCFACE_TEMPLATE: readonly (readonly [number, number])[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/** Crop side of glintr100 (its input is 112x112). */
export const ARCFACE_SIZE = 112;
/** Embedding width of glintr100. */
export const EMBEDDING_DIM = 512;

/**
 * Least-squares similarity transform (rotation, uniform scale, translation; no reflection) taking `src` onto
 * `dst`: the closed form of Umeyama's method in 2-D, which is what skimage's SimilarityTransform.estimate
 * computes through an SVD. Returns [a, b, c, d, e, f] with x' = a x + b y + c, y' = d x + e y + f, or all
 * NaN when the source points coincide (skimage's rank-0 case).
 */
export function umeyamaSimilarity(
  src: readonly (readonly number[])[],
  dst: readonly (readonly number[])[],
): Affine2x3 {
  const n = src.length;
  if (n < 2 || dst.length !== n) {
    throw new RangeError(`similarity needs >= 2 matching point pairs, got ${n} and ${dst.length}`);
  }
  let sx = 0, sy = 0, dx = 0, dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[i][0];
    sy += src[i][1];
    dx += dst[i][0];
    dy += dst[i][1];
  }
  sx /= n;
  sy /= n;
  dx /= n;
  dy /= n;
  // a = sum(src . dst), b = sum(src x dst) over centred points; var = sum |src|^2.
  let a = 0, b = 0, v = 0;
  for (let i = 0; i < n; i++) {
    const x = src[i][0] - sx, y = src[i][1] - sy;
    const u = dst[i][0] - dx, w = dst[i][1] - dy;
    a += x * u + y * w;
    b += x * w - y * u;
    v += x * x + y * y;
  }
  if (v === 0) return [NaN, NaN, NaN, NaN, NaN, NaN];
  const p = a / v, q = b / v;
  return [p, -q, dx - (p * sx - q * sy), q, p, dy - (q * sx + p * sy)];
}

/** face_align.norm_crop: similarity onto the template, then warpAffine to 112x112 (zero border). */
export function normCrop(rgb: U8Image, kps: readonly (readonly number[])[]): U8Image {
  if (kps.length !== 5) throw new ImageError("", `ArcFace alignment needs 5 keypoints, got ${kps.length}`);
  const m = umeyamaSimilarity(kps, ARCFACE_TEMPLATE);
  // Non-finite M gives OpenCV garbage coordinates that all fall outside: an all-zero crop.
  if (!m.every(Number.isFinite)) {
    return {
      width: ARCFACE_SIZE,
      height: ARCFACE_SIZE,
      channels: 3,
      data: new Uint8Array(ARCFACE_SIZE * ARCFACE_SIZE * 3),
    };
  }
  return warpAffineLinear(rgb, m, ARCFACE_SIZE, ARCFACE_SIZE);
}

/**
 * cv2.dnn.blobFromImage(img, 1/std, size, (mean,)*3, swapRB=True) on an RGB image: NCHW float32,
 * (px - mean) then multiplied by float32(1/std), as OpenCV's subtract + multiply do.
 */
export function imageBlob(img: U8Image, mean: number, std: number): F32Tensor {
  const { width: w, height: h, data } = img;
  if (img.channels !== 3) throw new RangeError(`blob needs 3 channels, got ${img.channels}`);
  const scale = Math.fround(1 / std);
  const lut = Float32Array.from({ length: 256 }, (_, v) => Math.fround(Math.fround(v - mean) * scale));
  const plane = w * h;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = lut[data[i * 3]];
    out[plane + i] = lut[data[i * 3 + 1]];
    out[2 * plane + i] = lut[data[i * 3 + 2]];
  }
  return f32([1, 3, h, w], out);
}

/** Options of {@link embedFace}; defaults are what insightface picks for glintr100. */
export interface EmbedOptions {
  readonly inputMean?: number;
  readonly inputStd?: number;
}

/**
 * The raw (not L2-normalised) 512-d ArcFace embedding of the face with keypoints `kps` (5 points, image
 * pixels) in `rgb` (the original-resolution image).
 */
export async function embedFace(
  rgb: U8Image,
  kps: readonly (readonly number[])[],
  runModel: RunModel,
  options: EmbedOptions = {},
): Promise<Float32Array> {
  const blob = imageBlob(normCrop(rgb, kps), options.inputMean ?? 127.5, options.inputStd ?? 127.5);
  const outs = await runModel(blob);
  if (outs.length < 1 || outs[0].length !== EMBEDDING_DIM) {
    throw new ImageError(
      "",
      `ArcFace model returned ${
        outs.map((o) => o.length).join(",") || "nothing"
      }, expected one ${EMBEDDING_DIM}-d output`,
    );
  }
  return Float32Array.from(outs[0]);
}
