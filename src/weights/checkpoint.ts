/**
 * What a checkpoint reader returns, and `openCheckpoint`, which picks the reader from the file's first bytes.
 */
import { CheckpointError } from "./errors.ts";
import { readPth } from "./pth.ts";
import { readSafetensors } from "./safetensors.ts";
import { type ByteSource, withFileSource } from "./source.ts";
import type { TensorRef } from "./types.ts";

/** The formats the readers understand. */
export type CheckpointFormat = "safetensors" | "pth";

/** The tensors of one checkpoint file, as zero-copy references into it. */
export interface Checkpoint {
  /** Absolute path of the file. */
  readonly file: string;
  readonly format: CheckpointFormat;
  /** Tensors in file order (safetensors: by data offset; pth: state-dict order). */
  readonly tensors: ReadonlyMap<string, TensorRef>;
  /** safetensors `__metadata__` (empty for pth). */
  readonly metadata: Readonly<Record<string, string>>;
}

const ZIP_MAGIC = [0x50, 0x4b]; // "PK": local header or (empty archive) end of central directory
// torch.save before 1.6 wrote a bare pickle starting with the magic number as a LONG1.
const LEGACY_TORCH_MAGIC = [0x80, 0x02, 0x8a];

function startsWith(head: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => head[i] === b);
}

/** Detects the format of the bytes in `src` (zip magic vs safetensors header) and reads its tensor table. */
export function parseCheckpoint(src: ByteSource): Checkpoint {
  const head = src.read(0, Math.min(src.size, 9));
  if (startsWith(head, ZIP_MAGIC)) return readPth(src);
  if (head[8] === 0x7b /* "{" */ || /\.safetensors$/i.test(src.path)) return readSafetensors(src);
  if (startsWith(head, LEGACY_TORCH_MAGIC)) {
    throw new CheckpointError(src.path, "legacy (pre-1.6, non-zip) torch.save format is not supported");
  }
  throw new CheckpointError(src.path, "neither a safetensors file nor a torch.save zip checkpoint");
}

/** Opens a .pth (torch.save zip) or .safetensors file by path; reads only headers, never the tensors. */
export function openCheckpoint(path: string): Checkpoint {
  return withFileSource(path, parseCheckpoint);
}
