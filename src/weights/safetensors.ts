/**
 * safetensors reader: 8-byte little-endian header length, a JSON header, then raw tensor bytes. Only the header is
 * read; every entry is validated (the limits follow the reference implementation) and becomes a TensorRef.
 */
import type { Checkpoint } from "./checkpoint_types.ts";
import { CheckpointError } from "./errors.ts";
import type { ByteSource } from "./source.ts";
import { DTYPE_BYTES, type StorageDType, type TensorRef } from "../onnx/tensor_ref.ts";

/** Largest header accepted, as in the reference implementation: a header is metadata, never bulk data. */
export const MAX_HEADER_BYTES = 100_000_000;

const utf8 = new TextDecoder("utf-8", { fatal: true });

function isDType(s: unknown): s is StorageDType {
  return typeof s === "string" && Object.hasOwn(DTYPE_BYTES, s);
}

function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 60)}...` : s;
}

/** Reads and validates the header of a safetensors file; returns refs sorted by data offset. */
export function readSafetensors(src: ByteSource): Checkpoint {
  const file = src.path;
  const fail: (problem: string) => never = (problem) => {
    throw new CheckpointError(file, problem);
  };
  if (src.size < 8) fail(`too short for a safetensors file (${src.size} bytes)`);
  const n = new DataView(src.read(0, 8).slice().buffer).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail(`safetensors header length ${n} exceeds the ${MAX_HEADER_BYTES} byte limit`);
  }
  const headerLen = Number(n);
  if (headerLen > src.size - 8) {
    fail(`safetensors header length ${headerLen} is larger than the file (${src.size} bytes)`);
  }
  if (headerLen < 2) fail(`safetensors header length ${headerLen} is too small`);
  const raw = src.read(8, headerLen);
  if (raw[0] !== 0x7b) fail("safetensors header does not start with '{'");
  let text = "";
  try {
    text = utf8.decode(raw);
  } catch {
    fail("safetensors header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("safetensors header is not a JSON object");
  }

  const dataStart = 8 + headerLen;
  const dataSize = src.size - dataStart;
  let metadata: Record<string, string> = {};
  const refs: TensorRef[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = readMetadata(info, fail);
      continue;
    }
    const where = `tensor '${name}'`;
    if (info === null || typeof info !== "object" || Array.isArray(info)) {
      fail(`${where}: entry is not an object`);
    }
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (!isDType(dtype)) fail(`${where}: unknown or unsupported dtype ${describe(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(`${where}: bad shape ${describe(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      fail(`${where}: bad data_offsets ${describe(offsets)}`);
    }
    const [begin, end] = offsets as number[];
    if (begin > end) fail(`${where}: data_offsets [${begin}, ${end}] are reversed`);
    if (end > dataSize) {
      fail(`${where}: data_offsets end ${end} is past the end of the data (${dataSize} bytes)`);
    }
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    const bytes = numel * DTYPE_BYTES[dtype as StorageDType];
    if (!Number.isSafeInteger(bytes) || bytes !== end - begin) {
      fail(
        `${where}: shape [${shape}] of ${dtype} needs ${bytes} bytes but data_offsets span ${end - begin}`,
      );
    }
    refs.push({
      name,
      file,
      offset: dataStart + begin,
      length: end - begin,
      dtype: dtype as StorageDType,
      shape: Object.freeze([...shape as number[]]),
    });
  }
  refs.sort((a, b) => a.offset - b.offset || a.length - b.length);
  checkNoOverlap(refs, fail);
  return { file, format: "safetensors", tensors: new Map(refs.map((r) => [r.name, r])), metadata };
}

function readMetadata(info: unknown, fail: (p: string) => never): Record<string, string> {
  if (info === null || typeof info !== "object" || Array.isArray(info)) fail("__metadata__ is not an object");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
    if (typeof v !== "string") fail(`__metadata__ value of '${k}' is not a string`);
    out[k] = v as string;
  }
  return out;
}

/** Refs sorted by offset: a non-empty tensor may not start before the end of an earlier one. */
function checkNoOverlap(refs: TensorRef[], fail: (p: string) => never): void {
  let last: TensorRef | undefined;
  for (const r of refs) {
    if (r.length === 0) continue;
    if (last && r.offset < last.offset + last.length) fail(`tensors '${last.name}' and '${r.name}' overlap`);
    if (!last || r.offset + r.length > last.offset + last.length) last = r;
  }
}
