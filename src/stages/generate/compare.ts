/**
 * Where two variants of one clip differ (the two arms of an intervention, sampled from the same noise):
 * per frame, the mean absolute difference of their frames, and of their latents overall and inside the
 * clip's full, face and lip masks (the level-0 pyramid, on the latent grid).
 */
import type { F32Tensor } from "../../tensor.ts";
import { regionMeanAbsDiff } from "../inspect/region_mean.ts";
import type { ClipMasks } from "./conditioning.ts";
import { GenerationError } from "./errors.ts";

/** One variant's result. */
export interface ClipVariant {
  /** Final latents (1, 4, F, h, w). */
  latents: F32Tensor;
  /** Decoded frames (1, 3, F, H, W) in [0, 1]. */
  video: F32Tensor;
}

/** Two variants and their differences, one number per frame. */
export interface ClipComparison {
  a: ClipVariant;
  b: ClipVariant;
  /** Mean |a - b| of the frames (pixels in [0, 1]), per frame. */
  frames: number[];
  /** Mean |a - b| of the latents, per frame. */
  latents: number[];
  /** Mask-weighted mean |a - b| of the latents inside each region, per frame (NaN for an empty mask). */
  regions: { full: number[]; face: number[]; lip: number[] };
  /** Largest |a - b| over the frames: 0 exactly when the variants are bit-identical. */
  maxFrameDifference: number;
}

/** Compares two variants of a clip whose masks are `masks` (per level, (F, h*w); level 0 the latent grid). */
export function compareVariants(masks: ClipMasks, a: ClipVariant, b: ClipVariant): ClipComparison {
  const [, , , h, w] = a.latents.shape;
  const [, , , H, W] = a.video.shape;
  const level0 = (p: F32Tensor[]) => {
    if (p[0]?.shape.at(-1) !== h * w) {
      throw new GenerationError(`compare: level-0 mask [${p[0]?.shape}] is not on the ${h}x${w} latent grid`);
    }
    return p[0].data.subarray(0, h * w);
  };
  let maxFrameDifference = 0;
  for (let i = 0; i < a.video.data.length; i++) {
    const d = Math.abs(a.video.data[i] - b.video.data[i]);
    if (!(d <= maxFrameDifference)) maxFrameDifference = d;
  }
  return {
    a,
    b,
    frames: regionMeanAbsDiff("frames", a.video, b.video, new Float32Array(H * W).fill(1)),
    latents: regionMeanAbsDiff("latents", a.latents, b.latents, new Float32Array(h * w).fill(1)),
    regions: {
      full: regionMeanAbsDiff("full region", a.latents, b.latents, level0(masks.full)),
      face: regionMeanAbsDiff("face region", a.latents, b.latents, level0(masks.face)),
      lip: regionMeanAbsDiff("lip region", a.latents, b.latents, level0(masks.lip)),
    },
    maxFrameDifference,
  };
}
