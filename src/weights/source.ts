/**
 * Random-access byte sources for the checkpoint readers. Readers only ever ask for the few ranges they need
 * (a header, a zip directory, data.pkl), so a multi-GB checkpoint is opened without reading its tensors.
 * The in-memory source lets tests and fuzzers parse mutated bytes without writing files.
 */
import { resolve } from "node:path";
import { CheckpointError } from "./errors.ts";

/** Bytes addressable by offset. `read` returns exactly `length` bytes or throws a CheckpointError. */
export interface ByteSource {
  /** Absolute path (or a label for in-memory bytes), used in errors and in TensorRefs. */
  readonly path: string;
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
}

/** Throws unless [offset, offset+length) is a valid range of a source of `size` bytes. */
export function checkRange(path: string, size: number, offset: number, length: number, what: string): void {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
    offset + length > size
  ) {
    throw new CheckpointError(
      path,
      `${what} (bytes ${offset}..${offset + length}) lies outside the file (${size} bytes)`,
    );
  }
}

/** A byte source over an in-memory buffer (no copy). */
export class MemorySource implements ByteSource {
  readonly size: number;
  constructor(readonly path: string, private readonly bytes: Uint8Array) {
    this.size = bytes.length;
  }
  read(offset: number, length: number): Uint8Array {
    checkRange(this.path, this.size, offset, length, "read");
    return this.bytes.subarray(offset, offset + length);
  }
}

/** A byte source over an open file; `close()` releases the handle. */
export class FileSource implements ByteSource {
  readonly path: string;
  readonly size: number;
  #file: Deno.FsFile;

  private constructor(path: string, file: Deno.FsFile, size: number) {
    this.path = path;
    this.#file = file;
    this.size = size;
  }

  /** Opens `path` read-only; a missing file or a directory is a CheckpointError naming it. */
  static open(path: string): FileSource {
    const abs = resolve(path);
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(abs, { read: true });
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound ? "no such file" : `cannot open: ${(e as Error).message}`;
      throw new CheckpointError(abs, why);
    }
    const info = file.statSync();
    if (!info.isFile) {
      file.close();
      throw new CheckpointError(abs, "not a regular file");
    }
    return new FileSource(abs, file, info.size);
  }

  read(offset: number, length: number): Uint8Array {
    checkRange(this.path, this.size, offset, length, "read");
    const out = new Uint8Array(length);
    this.#file.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < length) {
      const n = this.#file.readSync(out.subarray(done));
      // The file shrank under us since it was opened.
      if (n === null || n === 0) {
        throw new CheckpointError(
          this.path,
          `file ended at byte ${offset + done}, expected ${offset + length}`,
        );
      }
      done += n;
    }
    return out;
  }

  close(): void {
    this.#file.close();
  }
}

/** Opens `path`, runs `fn` on it and closes the file whatever happens. */
export function withFileSource<T>(path: string, fn: (src: FileSource) => T): T {
  const src = FileSource.open(path);
  try {
    return fn(src);
  } finally {
    src.close();
  }
}
