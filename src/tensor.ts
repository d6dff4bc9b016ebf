/** The tensor type that stages exchange: flat typed data plus a shape (row-major, like numpy/torch). */
export type TensorData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;

/** Element types the stages exchange. `float16` data is stored as raw IEEE half bits in a Uint16Array. */
export type TensorDType = "float32" | "float16" | "int32" | "int64" | "uint8";

/** A plain typed tensor: `data.length` equals the product of `shape`. */
export interface Tensor<D extends TensorData = TensorData> {
  readonly dtype: TensorDType;
  readonly shape: readonly number[];
  readonly data: D;
}

/** A float32 tensor, the common currency of the stages. */
export type F32Tensor = Tensor<Float32Array> & { readonly dtype: "float32" };

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Builds a float32 tensor, checking that data and shape agree. */
export function f32(shape: readonly number[], data?: Float32Array): F32Tensor {
  const n = numel(shape);
  const d = data ?? new Float32Array(n);
  if (d.length !== n) throw new Error(`tensor data has ${d.length} elements but shape [${shape}] needs ${n}`);
  return { dtype: "float32", shape: [...shape], data: d };
}
