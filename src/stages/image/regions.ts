/**
 * Face and lip boxes from MediaPipe's 478 landmarks, as upstream computes them (`hallo/utils/util.py`
 * get_face_mask / get_lip_mask / expand_region), including the float64 floor divisions, numpy's
 * round-half-to-even, the shift-not-shrink clamping and Python's negative-index slicing.
 */
import { ImageError } from "./errors.ts";

/** The 36 face-oval landmark ids upstream takes the face box from (util.py `silhouette_ids`). */
export const SILHOUETTE_IDS: readonly number[] = [
  10,
  338,
  297,
  332,
  284,
  251,
  389,
  356,
  454,
  323,
  361,
  288,
  397,
  365,
  379,
  378,
  400,
  377,
  152,
  148,
  176,
  149,
  150,
  136,
  172,
  58,
  132,
  93,
  234,
  127,
  162,
  21,
  54,
  103,
  67,
  109,
];

/** The 20 lip landmark ids (util.py `lip_ids`). */
export const LIP_IDS: readonly number[] = [
  61,
  185,
  40,
  39,
  37,
  0,
  267,
  269,
  270,
  409,
  291,
  146,
  91,
  181,
  84,
  17,
  314,
  405,
  321,
  375,
];

/** Upstream's lip expansion ratio (`get_lip_mask` default). */
export const LIP_EXPAND_RATIO = 2.0;

/** Landmarks in pixels, `[x*w, y*h]` per point as upstream's compute_face_landmarks returns them. */
export type LandmarksPx = ReadonlyArray<ArrayLike<number>>;

/** A box as upstream's expand_region returns it: half-open pixel ranges, possibly negative or past the edge. */
export interface Region {
  readonly minX: number;
  readonly maxX: number;
  readonly minY: number;
  readonly maxY: number;
}

/** numpy's `np.round` on float64: nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** Python's float floor division `a // 2` (exact here: halving is exact in binary floating point). */
function floorHalf(a: number): number {
  return Math.floor(a / 2);
}

/** min/max of the selected landmarks, each rounded half-to-even (np.round(np.min(...)), np.round(np.max(...))). */
export function landmarkBox(landmarks: LandmarksPx, ids: readonly number[]): Region {
  if (landmarks.length === 0) {
    throw new ImageError("", "no face landmarks: MediaPipe found no face (upstream crashes here)");
  }
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (const id of ids) {
    const p = landmarks[id];
    if (!p || p.length < 2) {
      throw new ImageError("", `landmark ${id} missing: need 478 [x, y] points, got ${landmarks.length}`);
    }
    const x = p[0], y = p[1];
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      throw new ImageError("", `landmark ${id} is not finite (${x}, ${y})`);
    }
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  return {
    minX: roundHalfEven(minX),
    maxX: roundHalfEven(maxX),
    minY: roundHalfEven(minY),
    maxY: roundHalfEven(maxY),
  };
}

/**
 * Upstream's expand_region: grow the box about its (floored) centre by `ratio`, then shift (never shrink) it
 * back inside [0, W] x [0, H] — left/top first, then right/bottom, so a box wider than the image ends with a
 * negative start.
 */
export function expandRegion(box: Region, imageW: number, imageH: number, ratio: number): Region {
  let { minX, maxX, minY, maxY } = box;
  const midX = floorHalf(maxX + minX);
  const sideX = (maxX - minX) * ratio;
  const midY = floorHalf(maxY + minY);
  const sideY = (maxY - minY) * ratio;
  minX = midX - floorHalf(sideX);
  maxX = midX + floorHalf(sideX);
  minY = midY - floorHalf(sideY);
  maxY = midY + floorHalf(sideY);
  if (minX < 0) {
    maxX -= minX;
    minX = 0;
  }
  if (maxX > imageW) {
    minX -= maxX - imageW;
    maxX = imageW;
  }
  if (minY < 0) {
    maxY -= minY;
    minY = 0;
  }
  if (maxY > imageH) {
    minY -= maxY - imageH;
    maxY = imageH;
  }
  return {
    minX: roundHalfEven(minX),
    maxX: roundHalfEven(maxX),
    minY: roundHalfEven(minY),
    maxY: roundHalfEven(maxY),
  };
}

/** Python slice bounds `[start:stop]` on an axis of length n (negative indices count from the end). */
export function sliceBounds(start: number, stop: number, n: number): [number, number] {
  const norm = (i: number) => {
    const j = i < 0 ? i + n : i;
    return j < 0 ? 0 : j > n ? n : j;
  };
  const a = norm(start);
  const b = norm(stop);
  return [a, b > a ? b : a];
}

/** `mask = zeros((H, W), uint8); mask[minY:maxY, minX:maxX] = 255` with numpy's slicing rules. */
export function fillRegion(region: Region, width: number, height: number): Uint8Array {
  const mask = new Uint8Array(width * height);
  const [x0, x1] = sliceBounds(region.minX, region.maxX, width);
  const [y0, y1] = sliceBounds(region.minY, region.maxY, height);
  for (let y = y0; y < y1; y++) mask.fill(255, y * width + x0, y * width + x1);
  return mask;
}
