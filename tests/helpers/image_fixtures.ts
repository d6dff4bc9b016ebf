/**
 * Test helpers of the image-stage tests: where upstream's mask references live, PNG decoding through sharp
 * and the largest absolute difference of two arrays.
 */
import sharp from "sharp";
import type { U8Image } from "../../src/stages/image/types.ts";
import { shared } from "./shared.ts";

/** Folder of upstream's mask references (a clear error when tests/reference lacks them). */
export function maskRef(): string {
  return shared("reference", "preprocess", "masks");
}

/** Decodes a PNG as upstream's cv2.imread(IMREAD_GRAYSCALE) / PIL mode L would: one channel, uint8. */
export async function readGreyPng(path: string): Promise<U8Image> {
  const { data, info } = await sharp(path).toColourspace("b-w").raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 1) throw new Error(`${path}: expected 1 channel, got ${info.channels}`);
  return { width: info.width, height: info.height, channels: 1, data: new Uint8Array(data) };
}

/** Largest absolute difference between two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
