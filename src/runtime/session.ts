/**
 * ORT sessions from built graphs. Weights stay in the checkpoints as external data: the model
 * bytes are handed to ORT with the folder that external locations are relative to.
 */
import * as ort from "onnxruntime-node";
import { type Device, deviceUnavailable, parseDevice } from "./device.ts";
import { createThroughOptimizedCache } from "./optimized_cache.ts";
import { fromOrt, toOrt } from "./tensors.ts";
import type { Tensor } from "../tensor.ts";

export interface SessionOptions {
  device?: Device;
  /** Intra-op threads (default: ORT's choice, all cores). */
  threads?: number;
  /** Keep weights memory-mapped instead of pre-packed copies (less memory, a little slower). */
  mmapWeights?: boolean;
  /** Graph optimisation level (default "all"). */
  optimization?: "disabled" | "basic" | "extended" | "all";
  /** Records node timings; `endProfiling()` writes them to `${profilePrefix}_<date>.json` (see profile.ts). */
  profilePrefix?: string;
}

/** A loaded network: named tensors in, named tensors out. */
export class Session {
  private constructor(readonly ort: ort.InferenceSession, readonly device: Device) {}

  /**
   * Creates a session from ONNX model bytes whose external data locations are relative to `externalRoot`.
   */
  static async create(model: Uint8Array, externalRoot: string, o: SessionOptions = {}): Promise<Session> {
    // validated here too: callers outside the CLI can pass any string, and ORT's own message names no fix
    const device = parseDevice(o.device ?? "cpu");
    const extra: Record<string, Record<string, string>> = {
      session: { model_external_initializers_file_folder_path: externalRoot },
    };
    if (o.mmapWeights) extra.session.disable_prepacking = "1";
    const opts: ort.InferenceSession.SessionOptions = {
      executionProviders: [device === "cpu" ? "cpu" : device],
      graphOptimizationLevel: o.optimization ?? "all",
      interOpNumThreads: 1,
      extra,
    };
    if (o.threads !== undefined) opts.intraOpNumThreads = o.threads;
    if (o.profilePrefix) Object.assign(opts, { enableProfiling: true, profileFilePrefix: o.profilePrefix });
    try {
      // a network loaded before on this machine skips ORT's graph optimisation (see optimized_cache.ts)
      const level = o.optimization ?? "all";
      const target = { device, level, prepack: !o.mmapWeights };
      const cached = await createThroughOptimizedCache(model, externalRoot, opts, target);
      return new Session(cached ?? await ort.InferenceSession.create(model, opts), device);
    } catch (e) {
      if (device !== "cpu") throw deviceUnavailable(device, e);
      throw e;
    }
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

  async release(): Promise<void> {
    await this.ort.release();
  }
}
