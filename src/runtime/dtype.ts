/**
 * `--dtype fp32|fp16`: the precision of the compiled graphs. fp16 is what upstream runs on GPUs (every net
 * but wav2vec): fp16 weights and fp16 values between networks. On CUDA the graphs compute in float16; on the CPU
 * and WebGPU in float32 over the same fp16 weights (`computeDType`), so fp16 gains nothing on the CPU: it is
 * allowed there (tests compare fp16 with fp32, and the CPU with WebGPU) with one warning.
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
    "warning: fp16 on CPU is no faster than fp32 and less exact (fp16 weights and values between networks, " +
      "float32 arithmetic); fp16 is meant for GPUs (--device cuda)",
  );
  return true;
}

/**
 * The precision an fp16 network's graph computes in on `device`. On CUDA, float16: the speed and memory fp16 is
 * for. On the CPU and WebGPU, float32 over the fp16 weights, with the network's inputs and outputs rounded to
 * fp16 (`fp16Rounding`): the values exchanged between networks are fp16, the arithmetic is not.
 *
 * Why not float16 there: ORT 1.30's WebGPU Conv/Gemm/MatMul accumulate in f16 (the fp16 UNets were 1.3e-2 and
 * 5.9e-2 from the CPU EP in relative L2 on lavapipe, the fp16 VAE 8.6e-3), and ORT's CPU EP has fp16 kernels
 * only for data movement and LayerNormalization: it runs an fp16 graph in float32 and rounds to fp16 wherever
 * its InsertCastTransformer meets one of those kernels. Those rounding points are an accident of ORT's kernel
 * list that no other device reproduces, and the tiny UNets (whose middle block normalises groups of 2 values)
 * amplify them: the CPU's and WebGPU's fp16 pipelines ended 8.6e-2 apart, as far as fp16 is from fp32. With
 * the rounding defined by the graph instead, the two devices agree as closely as in fp32.
 */
export function computeDType(dtype: GraphDType, device?: Device): GraphDType {
  return dtype === "float16" && device !== "cuda" ? "float32" : dtype;
}
