/**
 * Storage dtypes and zero-copy tensor references: what the checkpoint readers (src/weights) produce and the
 * graph builder binds as external initializers, so it lives with the graphs, the lowest layer.
 */
/** Storage dtypes as safetensors names them (the .pth reader maps torch storages onto these). */
export type StorageDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Bytes per element of each storage dtype. */
export const DTYPE_BYTES: Record<StorageDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/**
 * A zero-copy reference to one tensor inside a checkpoint file: the bytes at
 * [offset, offset+length) of `file`, contiguous, row-major, little-endian.
 */
export interface TensorRef {
  /** Key in the checkpoint (after any prefix mapping by a store). */
  readonly name: string;
  /** Absolute path of the file that holds the bytes. */
  readonly file: string;
  readonly offset: number;
  readonly length: number;
  readonly dtype: StorageDType;
  readonly shape: readonly number[];
}
