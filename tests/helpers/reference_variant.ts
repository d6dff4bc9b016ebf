/**
 * Reference directories in the public set's format made by tests: edited copies of its cases (other
 * settings, recombined tensors), written with the project's safetensors writer into a temp folder, beside
 * index.json and the tiny checkpoints of this module's private copy of the set.
 */
import { join } from "node:path";
import { readCase, readIndex } from "../../src/parity/reference.ts";
import type { F32Tensor } from "../../src/tensor.ts";
import { writeSafetensors } from "../../src/weights/safetensors_write.ts";
import { referenceCopy } from "./shared.ts";

/** One case of a variant directory: its sidecar JSON and every tensor (float32). */
export interface VariantCase {
  meta: Record<string, unknown>;
  tensors: Map<string, F32Tensor>;
}

/** Case `name` of the reference set, as a deep copy to edit (sidecar and tensors). */
export function referenceCaseCopy(name: string): VariantCase {
  const dir = referenceCopy();
  const c = readCase(dir, readIndex(dir), name);
  const tensors = new Map<string, F32Tensor>();
  for (const [k, t] of c.tensors) tensors.set(k, { ...t, shape: [...t.shape], data: t.data.slice() });
  return { meta: structuredClone(c.meta), tensors };
}

/**
 * Writes a reference directory holding `cases` (each `<name>.json` + `<name>.safetensors`, the JSON's
 * `file` pointing at the latter), index.json listing exactly them, and `tiny_models` (a link to this
 * module's private copy). Returns the directory, a new temp folder the caller removes.
 */
export function writeVariantDir(cases: Readonly<Record<string, VariantCase>>): string {
  const dir = Deno.makeTempDirSync({ prefix: "hallo-ref-variant-" });
  const index = readIndex(referenceCopy());
  index.cases = Object.keys(cases);
  Deno.writeTextFileSync(join(dir, "index.json"), JSON.stringify(index, null, 1));
  Deno.symlinkSync(join(referenceCopy(), "tiny_models"), join(dir, "tiny_models"));
  for (const [name, c] of Object.entries(cases)) {
    const file = `${name}.safetensors`;
    writeSafetensors(
      join(dir, file),
      [...c.tensors].map(([k, t]) => ({ name: k, dtype: "F32", shape: t.shape, data: t.data })),
    );
    Deno.writeTextFileSync(
      join(dir, `${name}.json`),
      JSON.stringify({ ...c.meta, case: name, file }, null, 1),
    );
  }
  return dir;
}
