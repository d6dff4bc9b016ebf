/** Execution devices and how to ask ORT for them. */
export type Device = "cpu" | "cuda" | "webgpu";

export const DEVICES: readonly Device[] = ["cpu", "cuda", "webgpu"];

/** Thrown when a requested device cannot be used: never a silent fallback. */
export class DeviceError extends Error {
  override name = "DeviceError";
}

/** Validates a `--device` value. */
export function parseDevice(v: string): Device {
  if ((DEVICES as readonly string[]).includes(v)) return v as Device;
  throw new DeviceError(`unknown device '${v}': use one of ${DEVICES.join(", ")}`);
}

const HOW_TO: Record<Device, string> = {
  cpu: "",
  cuda:
    "the CUDA execution provider is not in the onnxruntime-node npm tarball; on a machine with internet and CUDA 12 " +
    "run `deno install --allow-scripts=npm:onnxruntime-node` so its install script fetches it, then retry",
  webgpu: "the WebGPU execution provider could not start (it needs a GPU with Vulkan drivers on Linux)",
};

/** The message for a device that failed to initialise. */
export function deviceUnavailable(device: Device, cause: unknown): DeviceError {
  const why = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
  return new DeviceError(`device '${device}' is not available: ${HOW_TO[device]} (${why})`);
}
