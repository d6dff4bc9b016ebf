/**
 * What the VAE, projection and face-locator stages share: build a graph over a checkpoint, get it
 * through the compile cache and open an ORT session on it, once, with the timings recorded.
 */
import { join } from "node:path";
import type { Graph, GraphDType, WeightSource } from "../../onnx/graph.ts";
import { compile } from "../../runtime/cache.ts";
import type { Device } from "../../runtime/device.ts";
import { buildForDtype } from "../../runtime/fp16_graph.ts";
import { Session } from "../../runtime/session.ts";
import type { F32Tensor, Tensor } from "../../tensor.ts";
import { WeightStore } from "../../weights/store.ts";

/** A model folder, checkpoint or input tensor a network stage cannot use, named with the problem. */
export class NetworkStageError extends Error {
  override name = "NetworkStageError";
}

/** Session options every network loader takes. */
export interface NetworkOptions {
  device?: Device;
  /** Intra-op threads of the session (default: ORT's choice). */
  threads?: number;
  /** Keep weights memory-mapped instead of pre-packed (less memory, a little slower). */
  mmapWeights?: boolean;
  /**
   * Graph precision (default float32). float16 binds a converted copy of the weights cached beside the
   * checkpoint; inputs and outputs stay float32 either way.
   */
  dtype?: GraphDType;
  /** On a GPU device, a compute node placed on the CPU fails the load (default: a warning naming it). */
  strictDevice?: boolean;
  /** ORT's CPU memory arena (default on; see `SessionOptions.cpuArena`). */
  cpuArena?: boolean;
}

/** One built network with its open session. */
export interface NetworkSession {
  readonly session: Session;
  /** Extra values returned by every run, by name. */
  readonly probes: readonly string[];
  /** Seconds spent building/encoding the graph and creating the session. */
  readonly timings: { build_s: number; session_s: number };
}

/**
 * Builds `build()` (always: it takes milliseconds and checks every weight shape, even when the encoded
 * graph then comes from the cache), compiles it under `network`/`config` and opens a session. For
 * `opts.dtype` float16, `build(w, dtype)` must build over `w` when given (see `buildForDtype`), and
 * `opts.weights` should be the store it reads.
 */
export async function openNetwork(
  network: string,
  config: unknown,
  files: readonly string[],
  build: (w: WeightSource | undefined, dtype: GraphDType) => Graph,
  opts: NetworkOptions & { probes?: readonly string[]; weights?: WeightSource } = {},
): Promise<NetworkSession> {
  const t0 = performance.now();
  const probes = [...(opts.probes ?? [])];
  const built = buildForDtype(network, opts.dtype ?? "float32", build, {
    weights: opts.weights,
    files,
    probes,
    device: opts.device,
  });
  const graph = built.graph;
  const compiled = compile(
    { network, config, dtype: graph.dtype, probes, files: built.files, target: opts.device },
    () => graph,
    probes,
  );
  const t1 = performance.now();
  const session = await Session.create(compiled.bytes, compiled.externalRoot, {
    device: opts.device,
    threads: opts.threads,
    mmapWeights: opts.mmapWeights,
    cpuArena: opts.cpuArena,
    name: network,
    graph,
    strictDevice: opts.strictDevice,
    placementFile: compiled.path && opts.device && opts.device !== "cpu"
      ? `${compiled.path}.${opts.device}.placement.json`
      : undefined,
  });
  return {
    session,
    probes,
    timings: { build_s: (t1 - t0) / 1000, session_s: (performance.now() - t1) / 1000 },
  };
}

/** Reads and parses a JSON file, with one-line errors naming it. */
export function readJson(file: string): unknown {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new NetworkStageError(`${file}: cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new NetworkStageError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** The first of `names` that exists as a file in `dir`. */
export function findFile(dir: string, names: readonly string[], what: string): string {
  for (const name of names) {
    const p = join(dir, name);
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* try the next name */ }
  }
  throw new NetworkStageError(`${dir}: no ${what} (looked for ${names.join(", ")})`);
}

/**
 * The store and files holding the `prefix` keys of Hallo's `net.pth`: a path is opened, an already
 * opened store (several modules share one file) is used as it is.
 */
export function netWeights(
  net: string | WeightStore,
  prefix: string,
): { store: WeightStore; files: string[] } {
  const store = typeof net === "string" ? WeightStore.open(net) : net;
  const keys = store.keys().filter((k) => k.startsWith(prefix));
  if (keys.length === 0) {
    const where = typeof net === "string" ? net : "the weight store";
    throw new NetworkStageError(`${where}: no '${prefix}*' tensors (is this Hallo's net.pth?)`);
  }
  return { store, files: [...new Set(keys.map((k) => store.get(k).file))] };
}

/** Checks that `t` is float32 with `rank` axes and the given fixed sizes (undefined = any). */
export function expectF32(
  t: Tensor,
  what: string,
  dims: readonly (number | undefined)[],
): F32Tensor {
  const ok = t.dtype === "float32" && t.shape.length === dims.length &&
    dims.every((d, i) => d === undefined || t.shape[i] === d);
  if (!ok) {
    const want = dims.map((d) => d ?? "*").join(", ");
    throw new NetworkStageError(
      `${what}: expected float32 (${want}), got ${t.dtype} [${t.shape.join(", ")}]`,
    );
  }
  return t as F32Tensor;
}

/** The probe values of a run, by name. */
export function pickProbes(
  out: Record<string, Tensor>,
  probes: readonly string[],
): Record<string, F32Tensor> {
  const r: Record<string, F32Tensor> = {};
  for (const p of probes) r[p] = out[p] as F32Tensor;
  return r;
}
