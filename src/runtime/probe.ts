/**
 * `probeDevice`: whether a device's execution provider loads and runs, found out in milliseconds with a
 * one-node graph, so a command can refuse an unusable `--device` before it reads or prepares anything.
 */
import { Graph } from "../onnx/graph.ts";
import { type Device, DeviceError, deviceUnavailable } from "./device.ts";
import { Session } from "./session.ts";

const probed = new Map<Device, Promise<void>>();

async function probe(device: Device): Promise<void> {
  const g = new Graph("device_probe");
  g.output(g.op1("Relu", [g.input("x", [2])], { path: "probe", outName: "y" }));
  // Session.create turns a provider that fails to load into a DeviceError naming the fix.
  const session = await Session.create(g.encode("/"), "/", { device, threads: 1 });
  try {
    const y = await session.run({ x: { dtype: "float32", shape: [2], data: Float32Array.of(-1, 2) } });
    const got = [...(y.y.data as Float32Array)];
    if (got[0] !== 0 || got[1] !== 2) {
      throw deviceUnavailable(device, new Error(`a test Relu gave [${got}] instead of [0,2]`));
    }
  } catch (e) {
    throw e instanceof DeviceError ? e : deviceUnavailable(device, e);
  } finally {
    await session.release();
  }
}

/**
 * Resolves when `device` can create and run an ORT session; throws a one-line DeviceError saying how to get
 * the device otherwise. The answer is cached for the process.
 */
export function probeDevice(device: Device): Promise<void> {
  let p = probed.get(device);
  if (!p) {
    p = probe(device);
    probed.set(device, p);
  }
  return p;
}
