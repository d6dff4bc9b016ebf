/**
 * Where the reference material lives: `tests/reference/` inside the project (see its README).
 * Tests that need it fail when it is missing; they never skip silently.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { readCase, readIndex } from "../../src/parity/reference.ts";
import type { CaseInput } from "../../src/parity/types.ts";
import type { F32Tensor } from "../../src/tensor.ts";
import type { Checkpoint } from "../../src/weights/checkpoint_types.ts";
import { openCheckpoint } from "../../src/weights/checkpoint.ts";
import { loadTensorF32 } from "../../src/weights/convert.ts";
import { WeightStore } from "../../src/weights/store.ts";
import type { TensorRef } from "../../src/onnx/tensor_ref.ts";

export const PROJECT = fileURLToPath(new URL("../../", import.meta.url));
export const SHARED = join(PROJECT, "tests");
export const REFERENCE = join(SHARED, "reference");
export const TINY = join(REFERENCE, "tiny_models");

/** Returns `path` under shared/, throwing a clear error when it does not exist. */
export function shared(...parts: string[]): string {
  const p = join(SHARED, ...parts);
  try {
    Deno.statSync(p);
  } catch {
    throw new Error(
      `${p} is missing: the tests need tests/reference (reference vectors) inside the project`,
    );
  }
  return p;
}

/** Returns `path` under shared/reference/tiny_models (upstream's tiny checkpoints), or throws clearly. */
export function tinyModel(...parts: string[]): string {
  return shared("reference", "tiny_models", ...parts);
}

/** Every tensor of a safetensors (or .pth) file as float32, by name, through the project's checkpoint reader. */
export function f32Tensors(path: string): Map<string, F32Tensor> {
  const out = new Map<string, F32Tensor>();
  for (const [name, ref] of openCheckpoint(path).tensors) out.set(name, loadTensorF32(ref));
  return out;
}

/**
 * Reference case `name` of shared/reference as the parity runner reads it: `<name>.json`, every tensor of
 * `<name>.safetensors` as float32, and index.json.
 */
export function referenceCase(name: string): CaseInput {
  const dir = shared("reference");
  shared("reference", `${name}.json`);
  return readCase(dir, readIndex(dir), name);
}

export interface KeyEntry {
  name: string;
  shape: number[];
  dtype: string;
}

/** One checkpoint of `full_keys.json`: its keys and their counts. */
export interface FullKeysFile {
  keys: KeyEntry[];
  num_tensors: number;
  num_elements: number;
}

/** `full_keys.json`: every key of the real full-size checkpoints. */
export function fullKeys(): {
  configs: Record<string, Record<string, unknown>>;
  files: Record<string, FullKeysFile>;
} {
  return JSON.parse(Deno.readTextFileSync(shared("reference", "full_keys.json")));
}

/** A store over a key list whose tensors point at a file that is never read: enough for a shape-only build. */
export function fakeStore(
  keys: readonly KeyEntry[],
  file = "/nonexistent/checkpoint.safetensors",
): WeightStore {
  const tensors = new Map<string, TensorRef>();
  for (const k of keys) {
    const n = k.shape.reduce((a, b) => a * b, 1);
    tensors.set(k.name, { name: k.name, file, offset: 0, length: n * 4, dtype: "F32", shape: k.shape });
  }
  const ckpt: Checkpoint = { file, format: "safetensors", tensors, metadata: {} };
  return new WeightStore().add(ckpt);
}
