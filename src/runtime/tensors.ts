/** Conversion between the stages' Tensor and ORT tensors, with Deno's Float16Array quirk handled here only. */
import * as ort from "onnxruntime-node";
import type { Tensor, TensorData, TensorDType } from "../tensor.ts";

/**
 * onnxruntime-common turns float16 Uint16Array data into the global Float16Array when one exists
 * (Deno has it), and the native binding then sees 0 bytes. Hide the global while ORT looks.
 */
function withoutFloat16Array<T>(f: () => T): T {
  const g = globalThis as { Float16Array?: unknown };
  const saved = g.Float16Array;
  if (saved === undefined) return f();
  delete g.Float16Array;
  try {
    return f();
  } finally {
    g.Float16Array = saved;
  }
}

/** Tensor -> ort.Tensor (no copy). */
export function toOrt(t: Tensor): ort.Tensor {
  return withoutFloat16Array(() => new ort.Tensor(t.dtype, t.data as never, t.shape as number[]));
}

/** ort.Tensor -> Tensor (copies out of ORT's buffer so the result outlives dispose()). */
export function fromOrt(v: ort.Tensor): Tensor {
  const dtype = v.type as TensorDType;
  let data: TensorData;
  if (dtype === "float16") {
    const src = v.data as unknown as { buffer: ArrayBuffer; byteOffset: number; length: number };
    data = new Uint16Array(src.buffer.slice(src.byteOffset, src.byteOffset + src.length * 2));
  } else {
    data = (v.data as TensorData).slice() as TensorData;
  }
  return { dtype, shape: [...v.dims], data };
}
