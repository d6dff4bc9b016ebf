/** `openCheckpoint`, which picks the checkpoint reader from the file's first bytes. */
import { CheckpointError } from "./errors.ts";
import { readPth } from "./pth.ts";
import { readSafetensors } from "./safetensors.ts";
import { type ByteSource, withFileSource } from "./source.ts";
import type { Checkpoint } from "./checkpoint_types.ts";

// Zip local file header, or the end record of an empty archive.
const ZIP_MAGICS = [[0x50, 0x4b, 0x03, 0x04], [0x50, 0x4b, 0x05, 0x06]];
// torch.save before 1.6 wrote a bare pickle starting with the magic number as a LONG1.
const LEGACY_TORCH_MAGIC = [0x80, 0x02, 0x8a];

function startsWith(head: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => head[i] === b);
}

/** Detects the format of the bytes in `src` (safetensors header vs zip magic) and reads its tensor table. */
export function parseCheckpoint(src: ByteSource): Checkpoint {
  const head = src.read(0, Math.min(src.size, 9));
  // "{" first: a safetensors header length can begin with the bytes "PK\x03\x04" (0x04034b50 is under the
  // header limit), while byte 8 of a zip is the low byte of the method, never 0x7b.
  if (head[8] === 0x7b /* "{" */) return readSafetensors(src);
  if (ZIP_MAGICS.some((m) => startsWith(head, m))) return readPth(src);
  if (/\.safetensors$/i.test(src.path)) return readSafetensors(src);
  if (startsWith(head, LEGACY_TORCH_MAGIC)) {
    throw new CheckpointError(src.path, "legacy (pre-1.6, non-zip) torch.save format is not supported");
  }
  throw new CheckpointError(src.path, "neither a safetensors file nor a torch.save zip checkpoint");
}

/** Opens a .pth (torch.save zip) or .safetensors file by path; reads only headers, never the tensors. */
export function openCheckpoint(path: string): Checkpoint {
  return withFileSource(path, parseCheckpoint);
}
