/**
 * What an execution provider needs from the process before ORT starts it, and a probe that starts it on a
 * one-node graph: the cheap way to learn whether a device works before any stage does heavy work.
 */
import "./ort_telemetry.ts";
import * as ort from "onnxruntime-node";
import { Graph } from "../onnx/graph.ts";
import { type Device, deviceUnavailable } from "./device.ts";

/**
 * Dawn (ORT's WebGPU) opens the Vulkan loader, whose layers and Mesa's drivers expect `XDG_RUNTIME_DIR`;
 * headless shells and CI often have none. Points it at a private folder when unset; returns the folder used.
 */
export function ensureRuntimeDir(): string {
  const have = Deno.env.get("XDG_RUNTIME_DIR");
  if (have) return have;
  const uid = Deno.uid() ?? "user";
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/hallo-runtime-${uid}`;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  Deno.chmodSync(dir, 0o700);
  Deno.env.set("XDG_RUNTIME_DIR", dir);
  return dir;
}

/** Prepares the process environment for `device` (no-op for the CPU). */
export function prepareDevice(device: Device): void {
  if (device === "webgpu") ensureRuntimeDir();
}

let probeModel: Uint8Array | undefined;

/** A float32 graph `y = x + x` on (2,): the smallest graph that makes an EP compile and run a kernel. */
function tinyModel(): Uint8Array {
  if (!probeModel) {
    const g = new Graph("probe");
    const x = g.input("x", [2]);
    g.output(g.op1("Add", [x, x], { path: "add" }), "y");
    probeModel = g.encode(Deno.cwd());
  }
  return probeModel;
}

/** Outcome of starting one provider. */
export interface ProbeResult {
  device: Device;
  ok: boolean;
  /** ORT's own error, first line, when the provider did not start. */
  error?: string;
  seconds: number;
}

/**
 * Starts `device`'s execution provider on a one-node graph and runs it once, checking the result. Never throws:
 * the result says what happened (see `requireDevice` for the throwing form).
 */
export async function probeProvider(device: Device): Promise<ProbeResult> {
  const t0 = performance.now();
  prepareDevice(device);
  try {
    const s = await ort.InferenceSession.create(tinyModel(), { executionProviders: [device] });
    try {
      const x = new ort.Tensor("float32", Float32Array.from([1.5, -2]), [2]);
      const y = (await s.run({ x })).y.data as Float32Array;
      if (y[0] !== 3 || y[1] !== -4) throw new Error(`the probe graph computed [${y}] instead of [3, -4]`);
    } finally {
      await s.release();
    }
    return { device, ok: true, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    const error = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    return { device, ok: false, error, seconds: (performance.now() - t0) / 1000 };
  }
}

/** Throws `DeviceError` naming the fix when `device`'s provider does not start. */
export async function requireDevice(device: Device): Promise<void> {
  const r = await probeProvider(device);
  if (!r.ok) throw deviceUnavailable(device, new Error(r.error));
}
