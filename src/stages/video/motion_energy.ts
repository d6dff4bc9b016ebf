/**
 * A simple, documented per-run measure for comparing sweep settings: motion energy inside a region.
 * For consecutive frames t-1, t: the mean absolute difference of the RGB values (averaged over the three
 * channels, /255, so in [0, 1]: 1 = every value jumps 0 <-> 255), weighted per pixel by a mask (the 64x64 blurred masks upstream feeds the UNet, OpenCV-
 * bilinear upsampled to the frame size, /255): `sum_p w_p |f_t(p) - f_{t-1}(p)| / sum_p w_p`.
 * With the lip, face and background masks it tells whether a lip/pose/face weight moves what it should.
 */
import { cvResizeLinear } from "../image/cv_resize.ts";
import type { U8Image } from "../image/types.ts";

/** Per-region motion energy of one video. */
export interface RegionEnergy {
  /** Mean over the frame pairs (null when the mask is empty or the video has one frame). */
  mean: number | null;
  /** One value per frame pair (t-1, t), t = 1..frames-1. */
  perFrame: number[];
}

/** A mask as per-pixel weights at the frame size, and its total weight. */
export interface MaskWeights {
  weights: Float32Array;
  total: number;
}

/** A (grey) mask of any size -> per-pixel weights in [0, 1] at `width` x `height`. */
export function maskWeights(mask: U8Image, width: number, height: number): MaskWeights {
  if (mask.channels !== 1) throw new RangeError(`mask must have 1 channel, got ${mask.channels}`);
  const up = cvResizeLinear(mask, width, height);
  const weights = new Float32Array(up.data.length);
  let total = 0;
  for (let i = 0; i < weights.length; i++) total += weights[i] = up.data[i] / 255;
  return { weights, total };
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/** Accumulates the motion energy of a stream of packed RGB frames in several regions at once. */
export class MotionEnergyMeter {
  private prev?: Uint8Array;
  private readonly series: Record<string, number[]>;

  constructor(private readonly regions: Record<string, MaskWeights>) {
    this.series = Object.fromEntries(Object.keys(regions).map((k) => [k, []]));
  }

  /** Adds the next frame (width*height*3 bytes, the size the masks were made for). */
  push(frame: Uint8Array): void {
    const prev = this.prev;
    this.prev = frame.slice();
    if (!prev) return;
    const names = Object.keys(this.regions);
    const n = prev.length / 3;
    const sums = new Float64Array(names.length);
    const w = names.map((k) => this.regions[k].weights);
    if (w.some((x) => x.length !== n)) {
      throw new RangeError(`frame has ${n} pixels, the masks have ${w[0].length}`);
    }
    for (let p = 0; p < n; p++) {
      const i = 3 * p;
      const d = (Math.abs(frame[i] - prev[i]) + Math.abs(frame[i + 1] - prev[i + 1]) +
        Math.abs(frame[i + 2] - prev[i + 2])) / 765;
      if (d === 0) continue;
      for (let r = 0; r < w.length; r++) sums[r] += w[r][p] * d;
    }
    names.forEach((k, r) => {
      const total = this.regions[k].total;
      this.series[k].push(total > 0 ? sums[r] / total : NaN);
    });
  }

  /** Per region: the mean and the per-pair values (rounded to 1e-6; NaN for an empty mask becomes null). */
  result(): Record<string, RegionEnergy> {
    const out: Record<string, RegionEnergy> = {};
    for (const [k, s] of Object.entries(this.series)) {
      const valid = s.length > 0 && s.every(Number.isFinite);
      out[k] = {
        mean: valid ? round(s.reduce((a, b) => a + b, 0) / s.length) : null,
        perFrame: valid ? s.map(round) : [],
      };
    }
    return out;
  }
}
