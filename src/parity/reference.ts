/** Reading a reference directory (format of tests/reference/README.md). */
import { join } from "node:path";
import { openCheckpoint } from "../weights/checkpoint.ts";
import { readTensorF32 } from "../weights/convert.ts";
import { f32, type F32Tensor } from "../tensor.ts";
import type { CaseInput } from "./types.ts";

export interface ReferenceIndex {
  cases: string[];
  common?: { configs?: Record<string, unknown> };
  [k: string]: unknown;
}

export function readIndex(dir: string): ReferenceIndex {
  const path = join(dir, "index.json");
  try {
    const index = JSON.parse(Deno.readTextFileSync(path));
    if (!Array.isArray(index.cases)) throw new Error("no 'cases' list");
    return index;
  } catch (e) {
    throw new Error(`${path}: not a reference index (${e instanceof Error ? e.message : e})`);
  }
}

/** Loads `<case>.json` and every tensor of `<case>.safetensors` as float32. */
export function readCase(dir: string, index: ReferenceIndex, name: string): CaseInput {
  const meta = JSON.parse(Deno.readTextFileSync(join(dir, `${name}.json`)));
  const file = join(dir, (meta.file as string | undefined) ?? `${name}.safetensors`);
  const tensors = new Map<string, F32Tensor>();
  for (const [k, ref] of openCheckpoint(file).tensors) tensors.set(k, f32(ref.shape, readTensorF32(ref)));
  return { dir, index, meta, tensors };
}

/** Reference tensors the runner compares: role output or intermediate. */
export function comparedTensors(meta: Record<string, unknown>): string[] {
  const t = (meta.tensors ?? {}) as Record<string, { role?: string }>;
  return Object.entries(t).filter(([, v]) => v.role === "output" || v.role === "intermediate").map(([k]) =>
    k
  );
}
