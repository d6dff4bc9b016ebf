/**
 * fp16 weights for fp16 graphs, converted once and reused: the tensors a graph binds are written as F16 into
 * a safetensors file beside the checkpoints (`<folder>/.hallo-cache/fp16/`, or the per-user cache when the
 * folder is read-only), named by the sources' identity and the key list. The fp16 graph then binds F16
 * initializers straight from that file (no in-graph Cast, which ORT would redo at every session creation).
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import type { GraphDType, WeightSource } from "../onnx/graph.ts";
import { readTensorBytes, readTensorF32 } from "./convert.ts";
import { readSafetensors } from "./safetensors.ts";
import { FileSource, withFileSource } from "./source.ts";
import { cacheFolderFor } from "./cache_dirs.ts";
import type { StorageDType, TensorRef } from "../onnx/tensor_ref.ts";

/** Bumped when the layout or the conversion of cache files changes. */
export const FP16_CACHE_VERSION = "1";

/** A cache file that cannot be written or read back, named with the problem. */
export class Fp16CacheError extends Error {
  override name = "Fp16CacheError";
}

/** fp16 weights ready for a graph. */
export interface Fp16Weights {
  /** Refs of the converted tensors (F16 where the source is a float type); `has` answers as the original. */
  readonly source: WeightSource;
  /** The cache file, or undefined when no cache folder could be written (the graph then casts in-graph). */
  readonly file?: string;
  /**
   * Files the graph reads, for `compile()`: the cache file, plus the source checkpoints when the cache sits
   * beside them, so that the graphs' common root (and the graph cache) stays the checkpoint folder.
   */
  readonly files: string[];
  /** True when this call wrote the cache file, false when it was reused. */
  readonly written: boolean;
}

const FLOAT_TO_F16 = new Set<StorageDType>(["F32", "F64", "BF16"]);

/** The dtype a tensor is stored with in the cache: floats become F16, everything else is copied. */
function cachedDType(d: StorageDType): StorageDType {
  return FLOAT_TO_F16.has(d) ? "F16" : d;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fileIdentity(f: string): [string, number, number] {
  const st = Deno.statSync(f);
  return [resolve(f), st.size, st.mtime?.getTime() ?? 0];
}

/** Hash of the source files' identity (path, size, mtime) and of the tensors taken from them. */
export function fp16CacheHash(refs: readonly TensorRef[]): string {
  const files = [...new Set(refs.map((r) => resolve(r.file)))].sort().map(fileIdentity);
  const tensors = [...refs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((r) => [r.name, resolve(r.file), r.offset, r.length, r.dtype, r.shape]);
  return createHash("sha256").update(JSON.stringify({ v: FP16_CACHE_VERSION, files, tensors }))
    .digest("hex").slice(0, 16);
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, "_") || "weights";
}

function writeAll(f: Deno.FsFile, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += f.writeSync(bytes.subarray(done));
}

/** The tensor's bytes in the cache dtype; counts float values that overflow fp16 (they become +-Inf). */
function convert(ref: TensorRef, src: FileSource): { bytes: Uint8Array; overflow: number } {
  if (!FLOAT_TO_F16.has(ref.dtype)) return { bytes: readTensorBytes(ref, src), overflow: 0 };
  const f32 = readTensorF32(ref, src);
  // Float16Array rounds to nearest even, as torch's `.to(float16)`.
  const h = new Float16Array(f32);
  let overflow = 0;
  for (let i = 0; i < h.length; i++) if (!Number.isFinite(h[i]) && Number.isFinite(f32[i])) overflow++;
  return { bytes: new Uint8Array(h.buffer, h.byteOffset, h.byteLength), overflow };
}

/**
 * Writes `refs` (converted) as a safetensors file at `path`: to a temporary file first, renamed into place,
 * so that a reader never sees a partial file and two writers do not mix.
 */
export function writeFp16Safetensors(path: string, refs: readonly TensorRef[]): { overflow: string[] } {
  const sorted = [...refs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {
    __metadata__: { format: "pt", hallo_fp16_cache: FP16_CACHE_VERSION },
  };
  let offset = 0;
  for (const r of sorted) {
    const dtype = cachedDType(r.dtype);
    const length = dtype === r.dtype ? r.length : numel(r.shape) * 2;
    header[r.name] = { dtype, shape: r.shape, data_offsets: [offset, offset + length] };
    offset += length;
  }
  let json = JSON.stringify(header);
  // Tensor data starts 8-aligned, as the reference writer pads the header with spaces.
  json += " ".repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);

  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const sources = new Map<string, FileSource>();
  const overflow: string[] = [];
  let out: Deno.FsFile | undefined;
  try {
    out = Deno.openSync(tmp, { write: true, createNew: true });
    writeAll(out, len);
    writeAll(out, headerBytes);
    for (const r of sorted) {
      let src = sources.get(r.file);
      if (!src) sources.set(r.file, src = FileSource.open(r.file));
      const c = convert(r, src);
      if (c.overflow) overflow.push(`${r.name} (${c.overflow} values)`);
      writeAll(out, c.bytes);
    }
    out.close();
    out = undefined;
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      out?.close();
    } catch { /* already closed */ }
    try {
      Deno.removeSync(tmp);
    } catch { /* nothing written */ }
    throw e instanceof Fp16CacheError || (e as Error).name === "CheckpointError"
      ? e
      : new Fp16CacheError(`${path}: cannot write the fp16 weights cache (${(e as Error).message})`);
  } finally {
    for (const s of sources.values()) s.close();
  }
  return { overflow };
}

/** The cache file's refs when it exists and holds every tensor with the expected dtype and shape. */
function readValidCache(
  path: string,
  refs: readonly TensorRef[],
): ReadonlyMap<string, TensorRef> | undefined {
  let tensors: ReadonlyMap<string, TensorRef>;
  try {
    tensors = withFileSource(path, (src) => readSafetensors(src)).tensors;
  } catch {
    return undefined;
  }
  for (const r of refs) {
    const c = tensors.get(r.name);
    if (!c || c.dtype !== cachedDType(r.dtype) || c.shape.join() !== r.shape.join()) return undefined;
  }
  return tensors;
}

/**
 * fp16 weights for the tensors `refs` (the ones a graph binds), from the cache of network `name`, written
 * on first use. `original` answers `has` and gets `markUsed`, so a second build over the returned source
 * makes the same choices as one over the original. Returns the original refs (graph casts in-graph) with a
 * warning when no cache folder can be written.
 */
export function fp16Weights(name: string, refs: readonly TensorRef[], original?: WeightSource): Fp16Weights {
  const byKey = new Map(refs.map((r) => [r.name, r]));
  const sourceFiles = [...new Set(refs.map((r) => resolve(r.file)))].sort();
  const home = sourceFiles.length ? dirname(sourceFiles[0]) : Deno.cwd();
  const folder = cacheFolderFor("fp16", home);
  if (!folder) {
    console.warn(
      `warning: no writable folder for the fp16 weights of ${name} (beside ${home} or in the user cache); ` +
        "the graph converts them at every session creation",
    );
    return {
      source: original ?? { has: (k) => byKey.has(k), get: (k) => byKey.get(k)! },
      files: sourceFiles,
      written: false,
    };
  }
  const file = join(folder.dir, `${safeName(name)}-${fp16CacheHash(refs)}.safetensors`);
  let cached = readValidCache(file, refs);
  let written = false;
  if (!cached) {
    const { overflow } = writeFp16Safetensors(file, refs);
    if (overflow.length) {
      console.warn(
        `warning: ${basename(file)}: values beyond the fp16 range became +-Inf in ${
          overflow.slice(0, 3).join(", ")
        }` +
          (overflow.length > 3 ? ` and ${overflow.length - 3} more tensors` : ""),
      );
    }
    cached = readValidCache(file, refs);
    if (!cached) {
      throw new Fp16CacheError(`${file}: the fp16 weights cache written just now does not read back`);
    }
    written = true;
  }
  const tensors = cached;
  const source: WeightSource = {
    has: (k) => original ? original.has(k) : byKey.has(k),
    get: (k) => {
      const ref = byKey.has(k) ? tensors.get(k) : undefined;
      if (ref) return ref;
      throw new Fp16CacheError(
        original?.has(k)
          ? `tensor '${k}' was not bound when the fp16 weights of ${name} were collected: the graph builder ` +
            "binds different keys from one build to the next"
          : `${file}: no tensor '${k}'`,
      );
    },
    markUsed: (k) => original?.markUsed?.(k),
  };
  return { source, file, files: folder.beside ? [...sourceFiles, file] : [file], written };
}

/**
 * The weights an fp16 or fp32 graph binds: for `float32` the source as it is, for `float16` the cached
 * F16 copy of `keys` (see `fp16Weights`). `files` are the files the graph will read (for `compile()`).
 */
export function weightsForDtype(
  name: string,
  src: WeightSource,
  keys: readonly string[],
  dtype: GraphDType,
): { source: WeightSource; files: string[]; written: boolean } {
  const refs = keys.map((k) => src.get(k));
  if (dtype === "float32") {
    return { source: src, files: [...new Set(refs.map((r) => resolve(r.file)))].sort(), written: false };
  }
  const w = fp16Weights(name, refs, src);
  return { source: w.source, files: w.files, written: w.written };
}
