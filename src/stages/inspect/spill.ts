/**
 * The cache's overflow files: float32 tensors written with the project's safetensors writer and read back one
 * tensor at a time (only the header and that tensor's bytes are read).
 */
import { readSafetensors } from "../../weights/safetensors.ts";
import { writeSafetensors } from "../../weights/safetensors_write.ts";
import { withFileSource } from "../../weights/source.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import { InspectError } from "./errors.ts";

/** One tensor of a spill file. */
export interface SpillEntry {
  key: string;
  tensor: F32Tensor;
}

/** Writes `entries` as F32 tensors named by their keys; returns the file size in bytes. */
export function writeSpill(path: string, entries: readonly SpillEntry[]): number {
  return writeSafetensors(
    path,
    entries.map((e) => ({ name: e.key, dtype: "F32", shape: e.tensor.shape, data: e.tensor.data })),
    { format: "hallo-lab activation cache" },
  );
}

/** Reads tensor `key` of spill file `path`, bit for bit as written. */
export function readSpill(path: string, key: string): F32Tensor {
  return withFileSource(path, (src) => {
    const ref = readSafetensors(src).tensors.get(key);
    if (!ref) throw new InspectError(`${path}: spill file holds no tensor '${key}'`);
    if (ref.dtype !== "F32") throw new InspectError(`${path}: tensor '${key}' is ${ref.dtype}, not F32`);
    // slice(): a fresh, aligned buffer the Float32Array can view.
    const bytes = src.read(ref.offset, ref.length).slice();
    return f32(ref.shape, new Float32Array(bytes.buffer, 0, ref.length / 4));
  });
}
