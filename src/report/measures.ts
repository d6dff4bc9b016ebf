/**
 * Simple per-run measures from a run's frames: motion energy, the mean absolute difference between
 * consecutive frames weighted by each of the masks the audio branches use (lip = sep_lip, face = sep_face,
 * background = sep_background). A talking head should move most in the lips and least in the background.
 */
import type { U8Image } from "../stages/image/types.ts";
import { resizeMap } from "../viz/raster.ts";

/** The masks, as the image stage's 64x64 uint8 images (PreparedImage.masks). */
export interface RegionMasks {
  lip: U8Image;
  face: U8Image;
  background: U8Image;
}

/** Motion energy per frame transition (frame t vs t-1, t >= 1), in [0, 1] (1 = every value jumps 0 <-> 255). */
export interface MotionEnergy {
  /** Number of frames read. */
  frames: number;
  lip: number[];
  face: number[];
  background: number[];
  mean: { lip: number; face: number; background: number };
}

/** The weights of a mask at the frame size (bilinear from 64x64, 0..1), and their sum. */
function weights(m: U8Image, width: number, height: number): { w: Float32Array; sum: number } {
  if (m.channels !== 1) throw new RangeError(`masks must be single-channel, got ${m.channels} channels`);
  const w = resizeMap(Float32Array.from(m.data, (v) => v / 255), m.width, m.height, width, height);
  let sum = 0;
  for (const v of w) sum += v;
  return { w, sum };
}

/** Motion energy of packed RGB frames (width x height x 3 each) inside each mask. */
export async function motionEnergy(
  frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  width: number,
  height: number,
  masks: RegionMasks,
): Promise<MotionEnergy> {
  const regions = (["lip", "face", "background"] as const).map((k) => ({
    k,
    ...weights(masks[k], width, height),
  }));
  const out: Record<"lip" | "face" | "background", number[]> = { lip: [], face: [], background: [] };
  const n = width * height;
  let prev: Uint8Array | null = null;
  let count = 0;
  const diff = new Float32Array(n);
  for await (const f of frames) {
    if (f.length !== n * 3) {
      throw new RangeError(`frame ${count} has ${f.length} bytes, ${width}x${height} RGB needs ${n * 3}`);
    }
    if (prev) {
      for (let p = 0; p < n; p++) {
        const i = p * 3;
        diff[p] =
          (Math.abs(f[i] - prev[i]) + Math.abs(f[i + 1] - prev[i + 1]) + Math.abs(f[i + 2] - prev[i + 2])) /
          765;
      }
      for (const r of regions) {
        let s = 0;
        for (let p = 0; p < n; p++) s += diff[p] * r.w[p];
        out[r.k].push(r.sum > 0 ? s / r.sum : 0);
      }
    }
    // Frames from runFrames are views of a clip buffer that stays alive while iterating; copy to be safe.
    prev = f.slice();
    count++;
  }
  const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : 0);
  return {
    frames: count,
    ...out,
    mean: { lip: mean(out.lip), face: mean(out.face), background: mean(out.background) },
  };
}
