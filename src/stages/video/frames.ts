/** Frame conversions at the end of the pipeline. */
import type { F32Tensor } from "../../tensor.ts";

/**
 * Video (1, 3, F, H, W) in [0, 1] -> F frames of packed RGB uint8, quantised as upstream's
 * `np.clip(x * 255, 0, 255).astype(uint8)` (truncation, not rounding).
 */
export function videoToFrames(video: F32Tensor): Uint8Array[] {
  const [b, c, f, h, w] = video.shape;
  if (b !== 1 || c !== 3) throw new Error(`video must be (1, 3, F, H, W), got [${video.shape}]`);
  const hw = h * w;
  const frames: Uint8Array[] = [];
  for (let fi = 0; fi < f; fi++) {
    const out = new Uint8Array(hw * 3);
    for (let ci = 0; ci < 3; ci++) {
      const base = (ci * f + fi) * hw;
      for (let i = 0; i < hw; i++) {
        const v = Math.fround(video.data[base + i] * 255);
        out[i * 3 + ci] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
      }
    }
    frames.push(out);
  }
  return frames;
}

/** Frame `index` of a video (1, 3, F, H, W) as a (3, H, W) float array (what the next clip's motion frames use). */
export function videoFrame(video: F32Tensor, index: number): Float32Array {
  const [, , f, h, w] = video.shape;
  const hw = h * w;
  const out = new Float32Array(3 * hw);
  for (let ci = 0; ci < 3; ci++) {
    out.set(video.data.subarray((ci * f + index) * hw, (ci * f + index + 1) * hw), ci * hw);
  }
  return out;
}
