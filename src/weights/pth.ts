/**
 * PyTorch `torch.save` zip checkpoints: `<archive>/data.pkl` (the state dict, read with the restricted unpickler)
 * and one stored zip entry per storage, `<archive>/data/<key>`. Each tensor becomes a TensorRef into the zip.
 */
import type { Checkpoint } from "./checkpoint_types.ts";
import { CheckpointError } from "./errors.ts";
import type { ByteSource } from "./source.ts";
import { DTYPE_BYTES, type StorageDType, type TensorRef } from "../onnx/tensor_ref.ts";
import { type PickleGlobal, pickleGlobal, unpickle } from "./unpickle.ts";
import { readZipDirectory, type ZipEntry } from "./zip.ts";

/** torch storage classes and the dtype of their elements. */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, StorageDType>> = {
  DoubleStorage: "F64",
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

/** A storage named by a persistent id: zip entry `<archive>/data/<key>`. */
class StorageRef {
  constructor(readonly dtype: StorageDType, readonly key: string, readonly numel: number) {}
}

/** What `_rebuild_tensor_v2` builds: a view into a storage. */
class TorchTensor {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly size: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

/** Nested state dicts are flattened with "." (torch's own convention); deeper than this is not a state dict. */
const MAX_DEPTH = 32;

function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

function isCountTuple(v: unknown): v is number[] {
  return Array.isArray(v) && v.every(isCount);
}

/** The globals a state dict may use; anything else in data.pkl is refused by the unpickler. */
function torchGlobals(
  fail: (p: string) => never,
): { globals: Map<string, PickleGlobal>; storageTypes: Map<PickleGlobal, StorageDType> } {
  const storageTypes = new Map<PickleGlobal, StorageDType>();
  const globals = new Map<string, PickleGlobal>();
  const add = (g: PickleGlobal) => globals.set(`${g.module}.${g.name}`, g);

  add(pickleGlobal("collections", "OrderedDict", (args) => {
    if (args.length !== 0) fail("OrderedDict called with arguments");
    return new Map();
  }, true));
  add(pickleGlobal("torch._utils", "_rebuild_tensor_v2", (args) => {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    const [storage, offset, size, stride] = args;
    if (args.length < 6 || !(storage instanceof StorageRef)) {
      fail("_rebuild_tensor_v2 called without a storage");
    }
    if (!isCount(offset) || !isCountTuple(size) || !Array.isArray(stride) || stride.length !== size.length) {
      fail("_rebuild_tensor_v2 called with a bad offset, size or stride");
    }
    if (!stride.every((s) => Number.isSafeInteger(s))) fail("_rebuild_tensor_v2 called with a bad stride");
    return new TorchTensor(storage as StorageRef, offset as number, size as number[], stride as number[]);
  }));
  add(pickleGlobal("torch._utils", "_rebuild_parameter", (args) => {
    // (data, requires_grad, backward_hooks): a Parameter's data is the tensor itself.
    if (!(args[0] instanceof TorchTensor)) fail("_rebuild_parameter called without a tensor");
    return args[0];
  }));
  for (const [name, dtype] of Object.entries(TORCH_STORAGE_DTYPES)) {
    const g = pickleGlobal("torch", name);
    storageTypes.set(g, dtype);
    add(g);
  }
  return { globals, storageTypes };
}

/** Reads the zip directory and data.pkl of a torch.save checkpoint in `src`; returns refs in state-dict order. */
export function readPth(src: ByteSource): Checkpoint {
  const file = src.path;
  const fail: (problem: string) => never = (problem) => {
    throw new CheckpointError(file, problem);
  };
  const entries = readZipDirectory(src);
  const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    fail(
      pkls.length ? "several */data.pkl entries" : "no <archive>/data.pkl entry: not a torch.save checkpoint",
    );
  }
  const pklName = pkls[0];
  const archive = pklName.slice(0, -"/data.pkl".length);
  const byteorder = entries.get(`${archive}/byteorder`);
  if (byteorder && stored(byteorder, fail) && readText(src, byteorder) !== "little") {
    fail("big-endian checkpoints are not supported");
  }
  const pkl = entries.get(pklName)!;
  stored(pkl, fail);

  const { globals, storageTypes } = torchGlobals(fail);
  const root = unpickle(src.read(pkl.dataOffset, pkl.size), {
    file,
    where: pklName,
    globals,
    persistentLoad: (pid) => {
      // ('storage', storage_type, key, location, numel)
      if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage") {
        fail("unknown persistent id in data.pkl");
      }
      const [, type, key, , numel] = pid as unknown[];
      const dtype = storageTypes.get(type as PickleGlobal);
      if (!dtype) fail("persistent id names no torch storage type");
      if (typeof key !== "string" || !isCount(numel)) fail("persistent id has a bad storage key or size");
      return new StorageRef(dtype as StorageDType, key as string, numel as number);
    },
  });
  if (!(root instanceof Map)) fail(`${pklName} does not hold a dict (state dict)`);

  const refs: TensorRef[] = [];
  const seen = new Set<Map<unknown, unknown>>();
  const walk = (dict: Map<unknown, unknown>, prefix: string, depth: number) => {
    if (seen.has(dict) || depth > MAX_DEPTH) fail(`${pklName}: dict nesting is cyclic or too deep`);
    seen.add(dict);
    for (const [k, v] of dict) {
      if (v instanceof TorchTensor) {
        if (typeof k !== "string") fail(`${pklName}: a tensor has a non-string key`);
        refs.push(tensorRef(src, entries, archive, `${prefix}${k}`, v, fail));
      } else if (v instanceof Map && typeof k === "string") {
        walk(v, `${prefix}${k}.`, depth + 1);
      }
    }
  };
  walk(root as Map<unknown, unknown>, "", 0);
  const tensors = new Map<string, TensorRef>();
  for (const r of refs) {
    if (tensors.has(r.name)) fail(`tensor '${r.name}' appears twice`);
    tensors.set(r.name, r);
  }
  return { file, format: "pth", tensors, metadata: {} };
}

function stored(e: ZipEntry, fail: (p: string) => never): true {
  if (e.method !== 0) {
    fail(
      `zip entry '${e.name}' is compressed (method ${e.method}); only stored entries can be read in place`,
    );
  }
  if (e.compressedSize !== e.size) fail(`zip entry '${e.name}': stored entry has differing sizes`);
  return true;
}

function readText(src: ByteSource, e: ZipEntry): string {
  return new TextDecoder().decode(src.read(e.dataOffset, Math.min(e.size, 64))).trim();
}

/** Maps a tensor view onto the bytes of its storage entry; only contiguous views have one byte range. */
function tensorRef(
  src: ByteSource,
  entries: Map<string, ZipEntry>,
  archive: string,
  name: string,
  t: TorchTensor,
  fail: (p: string) => never,
): TensorRef {
  const entryName = `${archive}/data/${t.storage.key}`;
  const entry = entries.get(entryName);
  if (!entry) fail(`tensor '${name}': storage entry '${entryName}' is missing`);
  stored(entry!, fail);
  const elem = DTYPE_BYTES[t.storage.dtype];
  let numel = 1;
  let expected = 1;
  for (let d = t.size.length - 1; d >= 0; d--) {
    // torch ignores the stride of size-1 dims when judging contiguity
    if (t.size[d] !== 1 && t.stride[d] !== expected) {
      fail(
        `tensor '${name}' is a non-contiguous view (size [${t.size}], stride [${t.stride}]); save it contiguous`,
      );
    }
    expected *= t.size[d];
    numel *= t.size[d];
  }
  if (!Number.isSafeInteger(numel * elem)) fail(`tensor '${name}' is too large`);
  if (numel > 0 && t.storageOffset + numel > t.storage.numel) {
    fail(
      `tensor '${name}' (offset ${t.storageOffset}, ${numel} elements) overruns its storage of ${t.storage.numel}`,
    );
  }
  if (entry!.size < t.storage.numel * elem) {
    fail(`storage entry '${entryName}' has ${entry!.size} bytes, expected ${t.storage.numel * elem}`);
  }
  const offset = entry!.dataOffset + (numel > 0 ? t.storageOffset * elem : 0);
  if (offset + numel * elem > src.size) fail(`tensor '${name}' lies past the end of the file`);
  return {
    name,
    file: src.path,
    offset,
    length: numel * elem,
    dtype: t.storage.dtype,
    shape: Object.freeze([...t.size]),
  };
}
