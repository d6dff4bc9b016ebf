/**
 * safetensors writer: 8-byte little-endian header length, a JSON header padded with spaces to a multiple of
 * 8 bytes (as the reference implementation pads it, so every tensor stays aligned), then the raw bytes of
 * each tensor in the order given. Files it writes read back with `readSafetensors`.
 */
import { DTYPE_BYTES, type StorageDType } from "../onnx/tensor_ref.ts";

/** One tensor to write: little-endian row-major bytes (or a typed array holding them). */
export interface TensorToWrite {
  readonly name: string;
  readonly dtype: StorageDType;
  readonly shape: readonly number[];
  readonly data: ArrayBufferView;
}

/** A tensor list or metadata the writer cannot store, or a file it cannot write, named with the problem. */
export class SafetensorsWriteError extends Error {
  override name = "SafetensorsWriteError";
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bytesOf(t: TensorToWrite): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * The header bytes (length prefix included) for `tensors` laid out back to back in the order given.
 * Throws a SafetensorsWriteError (naming `label`) on a duplicate or reserved name, a bad shape or a data
 * length that does not match shape and dtype.
 */
export function safetensorsHeader(
  tensors: readonly TensorToWrite[],
  metadata: Readonly<Record<string, string>> = {},
  label = "safetensors",
): Uint8Array {
  const fail = (problem: string): never => {
    throw new SafetensorsWriteError(`${label}: ${problem}`);
  };
  // Typed arrays expose host-order bytes; the format is little-endian.
  if (!LITTLE_ENDIAN) fail("safetensors files can only be written on a little-endian host");
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const t of tensors) {
    if (!t.name || t.name === "__metadata__") fail(`bad tensor name ${JSON.stringify(t.name)}`);
    if (Object.hasOwn(header, t.name)) fail(`tensor '${t.name}' is listed twice`);
    if (!Object.hasOwn(DTYPE_BYTES, t.dtype)) fail(`tensor '${t.name}': unknown dtype ${t.dtype}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${t.name}': bad shape [${t.shape}]`);
    }
    const bytes = t.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== bytes) {
      fail(
        `tensor '${t.name}': shape [${t.shape}] of ${t.dtype} needs ${bytes} bytes, got ${t.data.byteLength}`,
      );
    }
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/** The whole file in memory (small files, tests). */
export function encodeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const header = safetensorsHeader(tensors, metadata);
  const out = new Uint8Array(header.length + tensors.reduce((a, t) => a + t.data.byteLength, 0));
  out.set(header);
  let at = header.length;
  for (const t of tensors) {
    out.set(bytesOf(t), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Writes `tensors` to `path` (created or truncated), streaming each tensor's bytes without building the whole
 * file in memory. Returns the file size in bytes.
 */
export function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata: Readonly<Record<string, string>> = {},
): number {
  const header = safetensorsHeader(tensors, metadata, path);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { write: true, create: true, truncate: true });
  } catch (e) {
    throw new SafetensorsWriteError(`${path}: cannot create (${(e as Error).message.split("\n")[0]})`);
  }
  let size = 0;
  try {
    const put = (bytes: Uint8Array) => {
      let done = 0;
      while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
      size += bytes.length;
    };
    put(header);
    for (const t of tensors) put(bytesOf(t));
  } catch (e) {
    throw new SafetensorsWriteError(`${path}: write failed (${(e as Error).message.split("\n")[0]})`);
  } finally {
    file.close();
  }
  return size;
}
