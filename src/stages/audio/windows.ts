/**
 * Per-frame audio windows (`scripts/inference.py: process_audio_emb`): frame i gets the wav2vec2 features of
 * frames i−2 … i+2, indices clamped to [0, L−1] (edge replication), so (L, layers, width) becomes
 * (L, 5, layers, width). L is the padded frame count, so the last real frames also see features of the padding.
 */
import { f32, type F32Tensor } from "../../tensor.ts";

/** Offsets of the window slots relative to the frame (−2 … +2). */
export const WINDOW_OFFSETS: readonly number[] = [-2, -1, 0, 1, 2];

/** The (L, 5) table of source frames: row i is `clamp(i + j, 0, L − 1)` for j = −2 … 2 (row-major Int32Array). */
export function windowIndexTable(numFrames: number, offsets: readonly number[] = WINDOW_OFFSETS): Int32Array {
  if (!Number.isInteger(numFrames) || numFrames < 1) {
    throw new RangeError(`need at least one frame, got ${numFrames}`);
  }
  const k = offsets.length;
  const t = new Int32Array(numFrames * k);
  for (let i = 0; i < numFrames; i++) {
    for (let j = 0; j < k; j++) t[i * k + j] = Math.max(Math.min(i + offsets[j], numFrames - 1), 0);
  }
  return t;
}

/**
 * Gathers windows from an embedding of shape (L, ...rest) — (L, 12, 768) for hallo — into (L, 5, ...rest).
 * Works for any layer count and width.
 */
export function gatherWindows(emb: F32Tensor, offsets: readonly number[] = WINDOW_OFFSETS): F32Tensor {
  if (emb.shape.length < 1) throw new RangeError("embedding needs a leading frame axis");
  const [frames, ...rest] = emb.shape;
  const row = emb.data.length / Math.max(frames, 1);
  const table = windowIndexTable(frames, offsets);
  const k = offsets.length;
  const out = new Float32Array(frames * k * row);
  for (let i = 0; i < frames * k; i++) {
    out.set(emb.data.subarray(table[i] * row, (table[i] + 1) * row), i * row);
  }
  return f32([frames, k, ...rest], out);
}

/** `[start, end)` frame ranges of the clips (16 frames each in hallo). */
export function clipSlices(numFrames: number, clipLength = 16): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < numFrames; s += clipLength) out.push([s, Math.min(s + clipLength, numFrames)]);
  return out;
}
