/** Small numeric assertions for the audio tests. */
import assert from "node:assert/strict";

/** Relative L2 error ||a−b|| / ||b|| and max |a−b|. */
export function errors(a: ArrayLike<number>, b: ArrayLike<number>): { rel: number; maxAbs: number } {
  assert.equal(a.length, b.length, "lengths differ");
  let num = 0, den = 0, maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  return { rel: Math.sqrt(num / (den || 1)), maxAbs };
}

/** Asserts every element is identical (bit-level for finite floats). */
export function assertArrayEqual(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} is ${a[i]}, expected ${b[i]}`);
  }
}

/** Two channels one after the other, as upstream's (2, N) arrays lie in its reference files. */
export function planar(channels: readonly Float32Array[]): Float32Array {
  return Float32Array.from([...channels[0], ...channels[1]]);
}

/** Two channels interleaved sample by sample, as upstream's (N, 2) arrays lie in its reference files. */
export function interleaved(channels: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(2 * channels[0].length);
  channels[0].forEach((v, i) => out[2 * i] = v);
  channels[1].forEach((v, i) => out[2 * i + 1] = v);
  return out;
}
