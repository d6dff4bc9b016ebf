/**
 * Where the reference material lives: `tests/reference/` inside the project (see its README). Tests read
 * it in place but never write there: everything that opens a session (and so compiles a graph into a
 * `.hallo-cache/` beside the checkpoint) gets the tiny checkpoints from `tinyModel()`, a private copy in a
 * temp folder. Tests that need the material fail when it is missing; they never skip silently.
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
import { writeNetSafetensors } from "./net_safetensors.ts";
import { tempCopyOnce } from "./temp_copy.ts";

/** The project root. */
export const PROJECT = fileURLToPath(new URL("../../", import.meta.url));
/** The folder that holds `reference/` (the project's tests/; the name is kept for the importers). */
export const SHARED = join(PROJECT, "tests");
/** The reference set, read-only for tests. */
export const REFERENCE = join(SHARED, "reference");
/**
 * The tiny checkpoints inside the reference set: read them, never open sessions on them (use
 * `tinyModel()`, which hands out a writable copy).
 */
export const TINY = join(REFERENCE, "tiny_models");

/** Returns `path` under tests/ (e.g. `shared("reference", "index.json")`), or throws a clear error. */
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

/**
 * This test module's private copy of the reference set (index, cases and tiny_models/, not preprocess/),
 * made in a temp folder on first use and removed when the module unloads. Graph and fp16 caches of
 * sessions opened on it land in the copy.
 */
export function referenceCopy(): string {
  shared("reference", "index.json");
  return tempCopyOnce(REFERENCE, ["preprocess"]);
}

/** The tiny checkpoint's safetensors twin, which the reference set does not keep (tests/helpers/net_safetensors.ts). */
const NET_TWIN = join("hallo", "net.safetensors");

/**
 * `path` under the tiny checkpoints (upstream's, laid out like `pretrained_models/`) of this module's
 * private copy of the reference set, or a clear error when the reference set lacks it. `hallo/net.safetensors`
 * is rebuilt byte for byte from net.pth into the copy on first request.
 */
export function tinyModel(...parts: string[]): string {
  const p = join(referenceCopy(), "tiny_models", ...parts);
  try {
    Deno.statSync(p);
  } catch {
    if (join(...parts) !== NET_TWIN) {
      throw new Error(
        `${p} is missing: the tests need tests/reference (reference vectors) inside the project`,
      );
    }
    writeNetSafetensors(join(referenceCopy(), "tiny_models", "hallo", "net.pth"), p);
  }
  return p;
}

/** Every tensor of a safetensors (or .pth) file as float32, by name, through the project's checkpoint reader. */
export function f32Tensors(path: string): Map<string, F32Tensor> {
  const out = new Map<string, F32Tensor>();
  for (const [name, ref] of openCheckpoint(path).tensors) out.set(name, loadTensorF32(ref));
  return out;
}

/**
 * Reference case `name` as the parity runner reads it: `<name>.json`, every tensor of `<name>.safetensors`
 * as float32, and index.json; its `dir` is this module's private copy (see `referenceCopy`), so a case
 * that loads the tiny models writes its caches there.
 */
export function referenceCase(name: string): CaseInput {
  shared("reference", `${name}.json`);
  const dir = referenceCopy();
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
