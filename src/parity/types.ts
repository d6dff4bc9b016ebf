/** The contract between the parity runner and the cases it knows. */
import type { GraphDType } from "../onnx/graph.ts";
import type { Device } from "../runtime/device.ts";
import type { F32Tensor } from "../tensor.ts";

/** What a case receives: the reference directory, its index, the case's sidecar JSON and tensors. */
export interface CaseInput {
  /** Reference directory (holds index.json, <case>.json/.safetensors, tiny_models/). */
  dir: string;
  /** Parsed index.json (`common.configs` has every tiny config). */
  index: Record<string, unknown> & { common?: { configs?: Record<string, unknown> } };
  /** Parsed `<case>.json`. */
  meta: Record<string, unknown>;
  /** Every tensor of `<case>.safetensors`, as float32. */
  tensors: ReadonlyMap<string, F32Tensor>;
  /** Where and at what precision the case's networks run (default: CPU, float32). */
  network?: CaseNetworkOptions;
}

/** The session options a run gives every case (`deno task parity --device D --dtype T`). */
export interface CaseNetworkOptions {
  device?: Device;
  dtype?: GraphDType;
  /** A compute node placed on the CPU under a GPU device is an error instead of a warning. */
  strictDevice?: boolean;
}

/** What a case returns: computed tensors by reference name, and its timings in seconds. */
export interface CaseResult {
  outputs: Record<string, F32Tensor | Float32Array>;
  build_s: number;
  session_s: number;
  run_s: number;
}

/** One runnable parity case. */
export interface ParityCase {
  name: string;
  /** Relative L2 tolerance for every compared tensor (1e-4 single models, 1e-3 pipeline). */
  tolerance: number;
  /** Per-tensor tolerances that override `tolerance` (0 = exact). */
  tolerances?: Readonly<Record<string, number>>;
  /** Tolerance of a tensor by its name, for names that depend on the case (`timesteps_<N>`); undefined = default. */
  toleranceOf?(tensor: string): number | undefined;
  /** Reference tensors not to compare (inputs are never compared). */
  skip?: readonly string[];
  run(input: CaseInput): Promise<CaseResult>;
}
