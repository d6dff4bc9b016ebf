/**
 * ORT sessions from built graphs. Weights stay in the checkpoints as external data: the model
 * bytes are handed to ORT with the folder that external locations are relative to.
 */
import "./ort_telemetry.ts";
import * as ort from "onnxruntime-node";
import { type Device, DeviceError, deviceUnavailable, parseDevice } from "./device.ts";
import { createThroughOptimizedCache, MIN_EXTERNAL_BYTES } from "./optimized_cache.ts";
import { externalData } from "../onnx/proto_read.ts";
import {
  classifyPlacement,
  describeFallback,
  type GraphNodes,
  parsePlacement,
  passThrough,
  type Placement,
  PlacementError,
} from "./placement.ts";
import { prepareDevice, probeProvider } from "./providers.ts";
import { captureStderr } from "./stderr_capture.ts";
import { fromOrt, toOrt } from "./tensors.ts";
import type { Tensor } from "../tensor.ts";

export interface SessionOptions {
  device?: Device;
  /** Intra-op threads (default: ORT's choice, all cores). */
  threads?: number;
  /**
   * Weights read in place from their file instead of pre-packed copies (less memory, a warm load in a fraction of
   * a second). Default: in place for a graph that reads at least MIN_EXTERNAL_BYTES of external weights (the
   * UNets, the VAE, wav2vec2 at full size), pre-packed below (small and tiny networks, whose numbers then stay
   * those of every earlier release: MLAS rounds packed and unpacked products differently).
   */
  mmapWeights?: boolean;
  /** Graph optimisation level (default "all"). */
  optimization?: "disabled" | "basic" | "extended" | "all";
  /** Records node timings; `endProfiling()` writes them to `${profilePrefix}_<date>.json` (see profile.ts). */
  profilePrefix?: string;
  /** The network's name in placement warnings and errors (default "model"). */
  name?: string;
  /** The built graph: tells shape-only nodes on the CPU from compute nodes by data dependence. */
  graph?: GraphNodes;
  /** On a GPU device, a compute node placed on the CPU is an error instead of a warning. */
  strictDevice?: boolean;
  /**
   * Where this model's placement on this device is kept (beside a cached graph): read instead of creating the
   * verbose inspection session, written after one.
   */
  placementFile?: string;
  /**
   * WebGPU: outputs stay in GPU buffers (`runOnDevice` returns them; they can be fed to any session on the
   * device). onnxruntime-node 1.30 aborts the process when JS downloads such a tensor (`getData()`), so they
   * are read back by feeding them to a session whose outputs are on the CPU.
   */
  outputsOnDevice?: boolean;
  /**
   * ORT's CPU memory arena (default true). Off, every activation is allocated and freed as it is used: the
   * arena grows in powers of two and keeps its peak, which at 512x512 is gigabytes over what the step holds.
   */
  cpuArena?: boolean;
}

/**
 * Where ORT puts the nodes of `model` on a GPU device. ORT names each node's provider only in a session's
 * verbose log, and a verbose session also logs every kernel of every run, so a session is created only to
 * read the report and released at once; the session kept is a quiet one. (ORT's warning-level log is no
 * shortcut: a graph placed wholly on the CPU draws no warning.) Errors are the provider's own.
 */
async function placementOf(
  model: Uint8Array,
  opts: ort.InferenceSession.SessionOptions,
  o: SessionOptions,
): Promise<Placement> {
  // ORT places a given graph the same way every time: a placement read once for a cached graph is kept beside it
  const cached = o.placementFile ? readPlacement(o.placementFile) : undefined;
  if (cached) return cached;
  const verbose = await captureStderr(() =>
    ort.InferenceSession.create(model, { ...opts, logSeverityLevel: 0, logVerbosityLevel: 0 })
  );
  await verbose.value.release();
  const by = parsePlacement(verbose.text);
  if (!by) throw new PlacementError(`${o.name ?? "model"}: ORT's verbose log has no node placement report`);
  const placement = classifyPlacement(by, o.graph);
  if (o.placementFile) writePlacement(o.placementFile, placement);
  return placement;
}

/** A placement saved by `writePlacement` under this onnxruntime-node version, or undefined. */
function readPlacement(file: string): Placement | undefined {
  try {
    const j = JSON.parse(Deno.readTextFileSync(file)) as { ort: string; placement: Placement };
    return j.ort === ort.env.versions.node ? j.placement : undefined;
  } catch {
    return undefined;
  }
}

function writePlacement(file: string, placement: Placement): void {
  const tmp = `${file}.${Deno.pid}.tmp`;
  try {
    Deno.writeTextFileSync(tmp, JSON.stringify({ ort: ort.env.versions.node, placement }));
    Deno.renameSync(tmp, file);
  } catch { /* an unwritable cache only costs the inspection next time */ }
}

/**
 * The error for a failed GPU session: the device's when its provider does not start on a one-node graph,
 * else ORT's own (the model is at fault, not the device).
 */
async function blame(device: Device, e: unknown): Promise<unknown> {
  if (e instanceof PlacementError) return e;
  return (await probeProvider(device)).ok ? e : deviceUnavailable(device, e);
}

/** Bytes `model` reads from external data files (0 for bytes that do not parse: ORT reports those). */
function externalBytes(model: Uint8Array): number {
  try {
    return externalData(model).bytes;
  } catch {
    return 0;
  }
}

/** A loaded network: named tensors in, named tensors out. */
export class Session {
  private constructor(
    readonly ort: ort.InferenceSession,
    readonly device: Device,
    /** Where ORT put each node (GPU devices only: CPU sessions place everything on the CPU). */
    readonly placement?: Placement,
  ) {}

  /**
   * Creates a session from ONNX model bytes whose external data locations are relative to `externalRoot`.
   */
  static async create(model: Uint8Array, externalRoot: string, o: SessionOptions = {}): Promise<Session> {
    // validated here too: callers outside the CLI can pass any string, and ORT's own message names no fix
    const device = parseDevice(o.device ?? "cpu");
    const extra: Record<string, Record<string, string>> = {
      session: { model_external_initializers_file_folder_path: externalRoot },
    };
    const inPlace = o.mmapWeights ?? externalBytes(model) >= MIN_EXTERNAL_BYTES;
    if (inPlace) extra.session.disable_prepacking = "1";
    const opts: ort.InferenceSession.SessionOptions = {
      executionProviders: [device === "cpu" ? "cpu" : device],
      graphOptimizationLevel: o.optimization ?? "all",
      interOpNumThreads: 1,
      extra,
    };
    if (o.cpuArena === false) opts.enableCpuMemArena = false;
    if (o.threads !== undefined) opts.intraOpNumThreads = o.threads;
    if (o.profilePrefix) Object.assign(opts, { enableProfiling: true, profileFilePrefix: o.profilePrefix });
    if (o.outputsOnDevice) {
      if (device !== "webgpu") {
        throw new DeviceError(
          `outputsOnDevice: onnxruntime-node 1.30 keeps outputs on the GPU only for webgpu`,
        );
      }
      opts.preferredOutputLocation = "gpu-buffer";
    }
    if (device === "cpu") {
      // a network loaded before on this machine skips ORT's graph optimisation (see optimized_cache.ts)
      const target = { device, level: o.optimization ?? "all", prepack: !inPlace };
      const cached = await createThroughOptimizedCache(model, externalRoot, opts, target);
      return new Session(cached ?? await ort.InferenceSession.create(model, opts), device);
    }
    prepareDevice(device);
    let placement: Placement;
    try {
      placement = await placementOf(model, opts, o);
    } catch (e) {
      throw await blame(device, e);
    }
    if (placement.cpuCompute.length > 0) {
      const msg = describeFallback(o.name ?? "model", device, placement.cpuCompute);
      if (o.strictDevice) throw new PlacementError(`${msg} (--strict-device)`);
      console.warn(`warning: ${msg}`);
    }
    let created: { value: ort.InferenceSession; text: string };
    try {
      created = await captureStderr(() => ort.InferenceSession.create(model, opts));
    } catch (e) {
      throw await blame(device, e);
    }
    for (const line of passThrough(created.text)) console.error(line);
    return new Session(created.value, device, placement);
  }

  get inputNames(): readonly string[] {
    return this.ort.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.ort.outputNames;
  }

  /** Runs the network; returns every output (or those named in `fetch`). */
  async run(feeds: Record<string, Tensor>, fetch?: readonly string[]): Promise<Record<string, Tensor>> {
    const inputs: Record<string, ort.Tensor> = {};
    for (const name of this.ort.inputNames) {
      const t = feeds[name];
      if (!t) throw new Error(`missing input '${name}' (inputs: ${this.ort.inputNames.join(", ")})`);
      inputs[name] = toOrt(t);
    }
    const out = fetch ? await this.ort.run(inputs, fetch as string[]) : await this.ort.run(inputs);
    const res: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) {
      res[k] = fromOrt(v);
      v.dispose();
    }
    return res;
  }

  /** Stops profiling (sessions created with `profilePrefix`) and writes the trace file. */
  endProfiling(): void {
    this.ort.endProfiling();
  }

  /**
   * Runs on ORT tensors as they are (CPU or GPU-buffer), returning ORT's outputs undisposed: the caller owns
   * them (`dispose()`); with `outputsOnDevice` they stay on the GPU.
   */
  async runOnDevice(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    return await this.ort.run(feeds);
  }

  async release(): Promise<void> {
    await this.ort.release();
  }
}
