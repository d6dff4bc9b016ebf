/**
 * Upstream's tensors built from images (`hallo/datasets/image_processor.py`): torchvision
 * `Resize((512,512))` (PIL bilinear, aspect ratio not kept) -> `ToTensor` (/255 in float32) -> optionally
 * `Normalize(0.5, 0.5)`, laid out CHW.
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import { pilResizeBilinear } from "./pil_resize.ts";
import type { U8Image } from "./types.ts";

/** Upstream's `img_size` (configs/inference/default.yaml data.source_image). */
export const IMG_SIZE = 512;

/** uint8 -> float32 as `ToTensor` computes it (`x.float().div(255)`), precomputed for the 256 values. */
const TO_TENSOR = Float32Array.from({ length: 256 }, (_, v) => v / 255);
/** `Normalize(0.5, 0.5)` after `ToTensor`: (x - 0.5) / 0.5, each step rounded to float32. */
const NORMALIZED = Float32Array.from(TO_TENSOR, (x) => Math.fround(x - 0.5) / 0.5);

function toChw(img: U8Image, table: Float32Array): F32Tensor {
  const { width: w, height: h, channels: cn, data } = img;
  const out = new Float32Array(cn * h * w);
  const plane = h * w;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < cn; c++) out[c * plane + i] = table[data[i * cn + c]];
  }
  return f32([cn, h, w], out);
}

/**
 * The reference image as the networks see it: PIL-bilinear resize to size x size, /255, (x-0.5)/0.5,
 * shape (3, size, size) float32 in [-1, 1].
 */
export function pixelTensor(rgb: U8Image, size: number = IMG_SIZE): F32Tensor {
  if (rgb.channels !== 3) {
    throw new RangeError(`pixelTensor needs an RGB image, got ${rgb.channels} channels`);
  }
  return toChw(pilResizeBilinear(rgb, size, size), NORMALIZED);
}
