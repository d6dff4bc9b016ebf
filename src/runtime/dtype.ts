/**
 * `--dtype fp32|fp16`: the precision of the compiled graphs. fp16 is what upstream runs on GPUs (every net
 * but wav2vec); on CPU it gains nothing (ORT runs most fp16 ops in fp32 behind Casts), so it is allowed there
 * (tests compare fp16 with fp32 on CPU) with one warning.
 */
import type { GraphDType } from "../onnx/graph.ts";
import type { Device } from "./device.ts";

/** A `--dtype` value that names no supported precision. */
export class DTypeError extends Error {
  override name = "DTypeError";
}

const NAMES: Record<string, GraphDType> = {
  fp32: "float32",
  float32: "float32",
  fp16: "float16",
  float16: "float16",
  half: "float16",
};

/** Validates a `--dtype` value (`fp32`, `fp16`, or the ONNX/torch names `float32`, `float16`). */
export function parseDType(v: string): GraphDType {
  const d = NAMES[v.toLowerCase()];
  if (d) return d;
  throw new DTypeError(`unknown dtype '${v}': use fp32 or fp16`);
}

let warnedCpuFp16 = false;

/** Warns once per process when fp16 graphs are asked for on CPU; never refuses. Returns whether it warned. */
export function warnIfFp16OnCpu(dtype: GraphDType | undefined, device: Device | undefined): boolean {
  if (dtype !== "float16" || (device ?? "cpu") !== "cpu" || warnedCpuFp16) return false;
  warnedCpuFp16 = true;
  console.warn(
    "warning: fp16 graphs on CPU are slower than fp32 and less exact (ORT runs most fp16 ops in fp32 " +
      "behind Casts); fp16 is meant for GPUs (--device cuda|webgpu)",
  );
  return true;
}
