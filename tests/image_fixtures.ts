/**
 * Test helpers of the image-stage tests: a minimal safetensors reader (float32 only, enough for the upstream
 * reference files) and PNG decoding through sharp. Kept local so these tests do not depend on src/weights.
 */
import sharp from "sharp";
import type { U8Image } from "../src/stages/image/types.ts";

/** Folder of upstream's mask references. */
export const MASK_REF = "/work/shared/reference/preprocess/masks";

/** One float32 tensor of a safetensors file. */
export interface RefTensor {
  shape: number[];
  data: Float32Array;
}

/** Reads every F32 tensor of a safetensors file (8-byte LE header length, JSON header, raw bytes). */
export async function readSafetensors(path: string): Promise<Map<string, RefTensor>> {
  const bytes = await Deno.readFile(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const base = 8 + n;
  const out = new Map<string, RefTensor>();
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets } = v as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    if (dtype !== "F32") throw new Error(`${path}: ${name} is ${dtype}, helper reads F32 only`);
    const raw = bytes.slice(base + data_offsets[0], base + data_offsets[1]);
    out.set(name, { shape, data: new Float32Array(raw.buffer, 0, raw.length / 4) });
  }
  return out;
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
