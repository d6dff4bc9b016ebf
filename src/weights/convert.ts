/**
 * Reading one tensor's bytes, and the only copies the readers ever make: dtype conversions to float32.
 * Each read opens the file, reads exactly the tensor's byte range and closes it.
 */
import { f32, type F32Tensor } from "../tensor.ts";
import { CheckpointError } from "./errors.ts";
import { type ByteSource, FileSource, withFileSource } from "./source.ts";
import { DTYPE_BYTES, type StorageDType, type TensorRef } from "../onnx/tensor_ref.ts";

// TensorRefs are little-endian; reinterpreting the bytes as typed arrays is only right on a little-endian host.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reads the raw bytes of `ref` (from `src` when given, else from `ref.file`). */
export function readTensorBytes(ref: TensorRef, src?: ByteSource): Uint8Array {
  let numel = 1;
  for (const d of ref.shape) numel *= d;
  if (numel * DTYPE_BYTES[ref.dtype] !== ref.length) {
    throw new CheckpointError(
      ref.file,
      `tensor '${ref.name}': ${ref.length} bytes do not match shape [${ref.shape}]`,
    );
  }
  // FileSource reads are fresh buffers already; other sources may hand out views of their memory.
  const read = (s: ByteSource) =>
    s instanceof FileSource ? s.read(ref.offset, ref.length) : s.read(ref.offset, ref.length).slice();
  return src ? read(src) : withFileSource(ref.file, read);
}

let halfTable: Float32Array | undefined;

/** float32 value of every IEEE half bit pattern: one table lookup per element. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    t[h] = exp === 0
      ? sign * frac * 2 ** -24
      : exp === 31
      ? (frac ? NaN : sign * Infinity)
      : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return (halfTable = t);
}

/** Converts little-endian raw bytes of a float dtype to float32 (always a new array). */
export function bytesToF32(bytes: Uint8Array, dtype: StorageDType): Float32Array {
  return ownedToF32(bytes.slice(), dtype);
}

/** `bytes` must own its whole buffer (offset 0): the typed views below need aligned, exact buffers. */
function ownedToF32(bytes: Uint8Array, dtype: StorageDType): Float32Array {
  if (!LITTLE_ENDIAN) throw new Error("checkpoint tensors can only be read on a little-endian host");
  const n = bytes.length / DTYPE_BYTES[dtype];
  switch (dtype) {
    case "F32":
      return new Float32Array(bytes.buffer, 0, n);
    case "F64":
      return Float32Array.from(new Float64Array(bytes.buffer, 0, n));
    case "F16": {
      const table = halfToFloatTable();
      const h = new Uint16Array(bytes.buffer, 0, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[h[i]];
      return out;
    }
    case "BF16": {
      // bfloat16 is the top half of a float32
      const h = new Uint16Array(bytes.buffer, 0, n);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = h[i] << 16;
      return new Float32Array(out.buffer);
    }
    default:
      throw new Error(`cannot convert ${dtype} to float32`);
  }
}

/** Reads a F32/F16/BF16/F64 tensor as float32, touching only its bytes in the file. */
export function readTensorF32(ref: TensorRef, src?: ByteSource): Float32Array {
  if (!["F32", "F16", "BF16", "F64"].includes(ref.dtype)) {
    throw new CheckpointError(ref.file, `tensor '${ref.name}' is ${ref.dtype}, not a float type`);
  }
  return ownedToF32(readTensorBytes(ref, src), ref.dtype);
}

/** `readTensorF32` wrapped as a shaped F32Tensor. */
export function loadTensorF32(ref: TensorRef, src?: ByteSource): F32Tensor {
  return f32(ref.shape, readTensorF32(ref, src));
}
