/**
 * time: the motion modules attend along frames, the bank's M motion frames (the previous clip's last frames)
 * first, then the clip's F frames (`withMotionFrames` in src/models/unet_blocks_3d.ts). How much each frame
 * reads the motion frames, and the seam between clips: the jump from the previous clip's last frame to this
 * clip's first, against the frame-to-frame change inside the clip.
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import { condRowStart, meanHeads } from "./attention_mass.ts";
import { InspectError } from "./errors.ts";
import { dividedBy } from "./reduce.ts";

/** Motion-module attention reduced over heads and locations. */
export interface MotionAttention {
  motionFrames: number;
  /** M + F. */
  frames: number;
  /** (M+F, M+F): `mean_{d, h} P[d, h, i, j]` over the cond half's T locations. */
  matrix: F32Tensor;
  /** Per clip frame f: `sum_{j<M} matrix[M+f, j]`, its mass on the motion frames. */
  motionShare: number[];
}

/** Motion attention of a probe `...attention_blocks.N.probs` (copies*T, [heads,] M+F, M+F). */
export function motionAttention(
  name: string,
  probs: F32Tensor,
  locations: number,
  motionFrames: number,
): MotionAttention {
  const P = meanHeads(name, probs);
  const n = P.queries;
  if (P.keys !== n) {
    throw new InspectError(`${name}: a square frame x frame attention expected, got ${n}x${P.keys}`);
  }
  if (!(motionFrames >= 0 && motionFrames < n)) {
    throw new InspectError(`${name}: ${motionFrames} motion frames of ${n} attended frames`);
  }
  const first = condRowStart(name, P.rows, locations);
  const acc = new Float64Array(n * n);
  for (let r = first; r < P.rows; r++) for (let i = 0; i < n * n; i++) acc[i] += P.data[r * n * n + i];
  const matrix = dividedBy(acc, locations);
  const motionShare: number[] = [];
  for (let f = motionFrames; f < n; f++) {
    let s = 0;
    for (let j = 0; j < motionFrames; j++) s += acc[f * n + j] / locations;
    motionShare.push(s);
  }
  return { motionFrames, frames: n, matrix: f32([n, n], matrix), motionShare };
}

function checkVideo(name: string, v: F32Tensor): [number, number, number] {
  if (v.shape.length !== 5 || v.shape[0] !== 1) {
    throw new InspectError(`${name}: video must be (1, C, F, H, W), got [${v.shape}]`);
  }
  return [v.shape[1], v.shape[2], v.shape[3] * v.shape[4]];
}

/** `d(a[fa], b[fb]) = (1/(C P)) sum_{c,p} |a[c, fa, p] - b[c, fb, p]|` for videos (1, C, F, H, W). */
export function frameDifference(a: F32Tensor, fa: number, b: F32Tensor, fb: number): number {
  const [C, Fa, P] = checkVideo("frame difference", a);
  const [Cb, Fb, Pb] = checkVideo("frame difference", b);
  if (C !== Cb || P !== Pb) {
    throw new InspectError(`frame difference: videos [${a.shape}] and [${b.shape}] differ in size`);
  }
  if (fa < 0 || fa >= Fa || fb < 0 || fb >= Fb) {
    throw new InspectError(`frame difference: frame ${fa}/${fb} out of range`);
  }
  let s = 0;
  for (let c = 0; c < C; c++) {
    const ia = (c * Fa + fa) * P, ib = (c * Fb + fb) * P;
    for (let p = 0; p < P; p++) s += Math.abs(a.data[ia + p] - b.data[ib + p]);
  }
  return s / (C * P);
}

/** The seam between a clip and the one before it. */
export interface Seam {
  /** `d(previous[last], current[0])`. */
  seam: number;
  /** `mean_{f>=1} d(current[f-1], current[f])`. */
  within: number;
  /** `seam / within` (Infinity when the clip is still and the seam is not; NaN when both are 0). */
  ratio: number;
}

/** Frame-difference seam measure of `current` after `previous`, both (1, C, F, H, W). */
export function seamMeasure(previous: F32Tensor, current: F32Tensor): Seam {
  const F = checkVideo("seam", current)[1];
  if (F < 2) throw new InspectError(`seam: the clip needs 2 frames or more, got ${F}`);
  const seam = frameDifference(previous, previous.shape[2] - 1, current, 0);
  let within = 0;
  for (let f = 1; f < F; f++) within += frameDifference(current, f - 1, current, f);
  within /= F - 1;
  return { seam, within, ratio: seam / within };
}

/**
 * Attention to the previous clip's frames at the seam: `first = mean_{f<k} motionShare[f]` against
 * `rest = mean_{f>=k} motionShare[f]`.
 */
export function seamAttention(
  motionShare: readonly number[],
  firstFrames = 1,
): { first: number; rest: number } {
  if (!(firstFrames >= 1 && firstFrames < motionShare.length)) {
    throw new InspectError(`seam attention: ${firstFrames} first frames of ${motionShare.length}`);
  }
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { first: mean(motionShare.slice(0, firstFrames)), rest: mean(motionShare.slice(firstFrames)) };
}
