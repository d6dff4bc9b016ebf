/**
 * Simple per-run measures from a run's frames: motion energy, the mean absolute difference between
 * consecutive frames weighted by each of the masks the audio branches use (lip = sep_lip, face = sep_face,
 * background = sep_background). A talking head should move most in the lips and least in the background.
 * The arithmetic is src/stages/video/motion_energy.ts's (shared with the sweeps).
 */
import type { U8Image } from "../stages/image/types.ts";
import { maskWeights, MotionEnergyMeter } from "../stages/video/motion_energy.ts";

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

/** Motion energy of packed RGB frames (width x height x 3 each) inside each mask (empty mask: 0). */
export async function motionEnergy(
  frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  width: number,
  height: number,
  masks: RegionMasks,
): Promise<MotionEnergy> {
  const acc = new MotionEnergyMeter({
    lip: maskWeights(masks.lip, width, height),
    face: maskWeights(masks.face, width, height),
    background: maskWeights(masks.background, width, height),
  });
  let count = 0;
  for await (const f of frames) {
    if (f.length !== width * height * 3) {
      throw new RangeError(
        `frame ${count} has ${f.length} bytes, ${width}x${height} RGB needs ${width * height * 3}`,
      );
    }
    acc.push(f);
    count++;
  }
  const r = acc.result();
  // The accumulator says "no value" (null) for an empty mask; the report shows 0 motion there.
  const pairs = Math.max(0, count - 1);
  const series = (k: "lip" | "face" | "background") =>
    r[k].mean === null ? new Array(pairs).fill(0) : r[k].perFrame;
  return {
    frames: count,
    lip: series("lip"),
    face: series("face"),
    background: series("background"),
    mean: { lip: r.lip.mean ?? 0, face: r.face.mean ?? 0, background: r.background.mean ?? 0 },
  };
}
