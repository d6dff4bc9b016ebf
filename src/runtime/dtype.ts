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

/**
 * The precision a network runs at on `device` when `dtype` is asked for. On WebGPU the VAE stays float32: ORT
 * 1.30's WebGPU convolutions accumulate in f16, which puts the fp16 VAE 5.4e-3 (encoder) and 8.6e-3 (decoder)
 * away from the CPU's fp16 VAE in relative L2 (tiny reference VAE, lavapipe), past the 5e-3 fp16 budget; the
 * VAE is a small share of a clip's work (one encode per video, one decode per clip). Elsewhere: `dtype`.
 */
export function networkDType(
  network: "vae" | "unet" | "other",
  dtype: GraphDType | undefined,
  device?: Device,
): GraphDType | undefined {
  if (network === "vae" && device === "webgpu") return "float32";
  return dtype;
}

/** The networks whose fp16 weights are computed on in float32 under WebGPU (`computeDType`). */
const WEBGPU_F32_COMPUTE = new Set(["reference_unet", "denoising_unet"]);

/**
 * The precision a network's graph computes in when its weights are `dtype`. Elsewhere it is `dtype`; on WebGPU
 * the fp16 UNets compute in float32 over their fp16 weights (each weight cast to float32 in the graph). ORT
 * 1.30's WebGPU Conv/Gemm/MatMul accumulate in f16, and the tiny reference UNets are ill-conditioned (their
 * middle block normalises groups of 2 values at 1x1): against the CPU EP's fp16 graphs (which run most ops in
 * float32 behind Casts) the fp16 UNets were 1.3e-2 (reference) and 5.9e-2 (denoising, after CFG 3.5) away in
 * relative L2 on lavapipe. Computing only Conv/Gemm/MatMul in float32 (Casts around each) still left the
 * denoising UNet 3.2e-2 away, as every value rounded to f16 between ops is amplified there; float32 compute
 * over the same f16 weights gives 1.0e-3 and 3.7e-3. The fp16 weights cache is what is read from disk; ORT
 * folds the weight Casts at session creation (turning its constant folding off breaks its Reshape fusion on
 * the denoising UNet), so on the device the weights are float32 and fp16 saves no device memory there.
 */
export function computeDType(network: string, dtype: GraphDType, device?: Device): GraphDType {
  if (dtype === "float16" && device === "webgpu" && WEBGPU_F32_COMPUTE.has(network)) return "float32";
  return dtype;
}
