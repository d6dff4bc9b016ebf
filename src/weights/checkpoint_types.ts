/** What a checkpoint reader returns; the readers and `openCheckpoint` share it without importing each other. */
import type { TensorRef } from "../onnx/tensor_ref.ts";

/** The formats the readers understand. */
export type CheckpointFormat = "safetensors" | "pth";

/** The tensors of one checkpoint file, as zero-copy references into it. */
export interface Checkpoint {
  /** Absolute path of the file. */
  readonly file: string;
  readonly format: CheckpointFormat;
  /** Tensors in file order (safetensors: by data offset; pth: state-dict order). */
  readonly tensors: ReadonlyMap<string, TensorRef>;
  /** safetensors `__metadata__` (empty for pth). */
  readonly metadata: Readonly<Record<string, string>>;
}
