/**
 * Cache of ORT-optimised models, so that a network loaded before on this machine starts in seconds.
 *
 * On CPU at optimisation level "all", session creation of a UNet is mostly ORT's graph optimisation (about
 * 40 s in the NCHWc layout pass, which reorders every conv weight) and then the pre-packing of the weights
 * for the GEMM kernels (tens of seconds more). ORT can save the graph it ends up with
 * (`optimizedModelFilePath`), weights as one external data file, the pre-packed ones included; loading
 * that file with optimisation disabled gives the same graph and the same packed weights, hence the same
 * kernels and the same numbers, without redoing either. The saved graph is specific to the ORT build and this CPU (NCHWc block size depends on
 * the vector width), so both are part of the key, with the model bytes, the identity of every external
 * data file they point at (path, size, mtime: the weights are copied into the cache), the EP and the level.
 *
 * An entry is a folder `<slot>-<key>/` holding model.onnx, model.data and manifest.json. It is written in
 * a temporary folder and renamed into place, and on every load its sizes, the hash of model.onnx and a
 * sampled hash of model.data are checked against the manifest, so a partial or damaged entry is never
 * used (it is removed and rewritten). Entries of the same graph over older weights (same slot) are removed
 * when a new one is written. It lives with the graph cache: `.hallo-cache/optimized` beside the
 * checkpoints (removed by `weights clean`), `<HALLO_GRAPH_CACHE>/optimized` when that is set, nowhere when
 * HALLO_GRAPH_CACHE or HALLO_OPTIMIZED_CACHE is `off`. Only graphs that read at least MIN_EXTERNAL_BYTES of
 * weights are cached, unless HALLO_OPTIMIZED_CACHE is `all`.
 */
import "./ort_telemetry.ts";
import * as ort from "onnxruntime-node";
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { externalData } from "../onnx/proto_read.ts";
import { cacheFolderFor, ensureWritableDir } from "../weights/cache_dirs.ts";
import { formatBytes } from "../util/bytes.ts";
import type { Device } from "./device.ts";

/** Bumped whenever the layout of an entry or the way it is loaded changes. */
export const OPTIMIZED_FORMAT = "1";

const MODEL = "model.onnx";
const DATA = "model.data";
const MANIFEST = "manifest.json";
/** Blocks of model.data hashed at load time (hashing gigabytes would cost more than the cache saves). */
const SAMPLE_BLOCKS = 64;
const SAMPLE_BYTES = 64 * 1024;
/**
 * Graphs reading less than this from external files (the small networks, the tiny test weights) start in
 * about a second: a second copy of their weights is not worth it. HALLO_OPTIMIZED_CACHE=all caches them too.
 */
export const MIN_EXTERNAL_BYTES = 64 * 1024 * 1024;
/** Temporary folders older than this are left over by killed processes. */
const STALE_TMP_MS = 24 * 3600 * 1000;

type Level = "disabled" | "basic" | "extended" | "all";

/** What decides the optimised graph, besides the model bytes. */
export interface OptimizedTarget {
  device: Device;
  level: Level;
  /**
   * Whether ORT pre-packs the weights (false under `session.disable_prepacking`, which also changes the
   * kernels). When it does, the pre-packed weights are saved in the entry too, so a later load maps them
   * instead of packing gigabytes again.
   */
  prepack: boolean;
}

interface Manifest {
  format: string;
  key: string;
  model_bytes: number;
  model_sha256: string;
  /** null when ORT wrote no data file (no initializer reached the external size threshold). */
  data_bytes: number | null;
  data_sample_sha256: string | null;
}

/** Whether the cache applies: only the CPU EP at level "all" has a slow optimisation worth caching. */
export function optimizedCacheApplies(t: OptimizedTarget): boolean {
  return t.device === "cpu" && t.level === "all";
}

function optimizedCacheOff(): boolean {
  return Deno.env.get("HALLO_OPTIMIZED_CACHE") === "off" || Deno.env.get("HALLO_GRAPH_CACHE") === "off";
}

/**
 * Folder of optimised models for graphs over checkpoints under `externalRoot` (see the module comment);
 * undefined when switched off or when nothing can be written.
 */
export function optimizedCacheDir(externalRoot: string): string | undefined {
  if (optimizedCacheOff()) return undefined;
  const env = Deno.env.get("HALLO_GRAPH_CACHE");
  if (env) {
    const dir = join(env, "optimized");
    return ensureWritableDir(dir) ? dir : undefined;
  }
  return cacheFolderFor("optimized", externalRoot)?.dir;
}

let cpuId: string | undefined;

/** This CPU's model and feature flags (what ORT's layout passes choose their block sizes from). */
function cpuIdentity(): string {
  if (cpuId !== undefined) return cpuId;
  let text = "";
  try {
    text = Deno.readTextFileSync("/proc/cpuinfo");
  } catch { /* not Linux: the architecture is all we know */ }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, "m").exec(text)?.[1] ?? "";
  cpuId = [Deno.build.os, Deno.build.arch, field("model name"), field("flags"), field("Features")].join("|");
  return cpuId;
}

function sha256(b: Uint8Array | string): string {
  return createHash("sha256").update(b).digest("hex");
}

/**
 * The entry name for `model`: `<slot>-<key>`, where the slot names the graph (model bytes, external root,
 * target) and the key everything that decides the optimised file (slot, ORT version, CPU, format and the
 * identity of each external data file); with the bytes the model reads from external files. Throws when an
 * external data file cannot be found or the model bytes are malformed.
 */
export function optimizedEntry(
  model: Uint8Array,
  externalRoot: string,
  t: OptimizedTarget,
): { name: string; externalBytes: number } {
  const root = resolve(externalRoot);
  const slot = sha256(JSON.stringify([sha256(model), root, t.device, t.level, t.prepack])).slice(0, 16);
  const ext = externalData(model);
  const files = ext.locations.map((loc) => {
    const st = Deno.statSync(resolve(root, loc));
    return [loc, st.size, st.mtime?.getTime() ?? 0];
  });
  const key = sha256(JSON.stringify({
    format: OPTIMIZED_FORMAT,
    slot,
    ort: ort.env.versions,
    cpu: cpuIdentity(),
    files,
  })).slice(0, 16);
  return { name: `${slot}-${key}`, externalBytes: ext.bytes };
}

/** sha256 over SAMPLE_BLOCKS blocks spread evenly through the file, the last one included. */
function sampleHash(path: string, size: number): string {
  const h = createHash("sha256");
  const f = Deno.openSync(path, { read: true });
  try {
    const buf = new Uint8Array(Math.min(SAMPLE_BYTES, size));
    const span = size - buf.length;
    for (let i = 0; i < SAMPLE_BLOCKS; i++) {
      const at = Math.round(span * i / (SAMPLE_BLOCKS - 1));
      f.seekSync(at, Deno.SeekMode.Start);
      let got = 0;
      while (got < buf.length) {
        const n = f.readSync(buf.subarray(got));
        if (n === null) throw new Error(`${path}: ends before byte ${at + buf.length}`);
        got += n;
      }
      h.update(buf);
    }
  } finally {
    f.close();
  }
  return h.digest("hex");
}

function fileSize(path: string): number | null {
  try {
    return Deno.statSync(path).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Describes the entry folder `dir` as written just now (after ORT saved model.onnx and model.data). */
function describe(dir: string, key: string): Manifest {
  const model = Deno.readFileSync(join(dir, MODEL));
  const dataBytes = fileSize(join(dir, DATA));
  return {
    format: OPTIMIZED_FORMAT,
    key,
    model_bytes: model.length,
    model_sha256: sha256(model),
    data_bytes: dataBytes,
    data_sample_sha256: dataBytes === null ? null : sampleHash(join(dir, DATA), dataBytes),
  };
}

/**
 * The model bytes of the entry folder `dir` when its files agree with its manifest; else the reason it
 * cannot be used.
 */
export function readVerifiedEntry(dir: string, key: string): { model: Uint8Array } | { problem: string } {
  let m: Manifest;
  try {
    m = JSON.parse(Deno.readTextFileSync(join(dir, MANIFEST)));
  } catch (e) {
    return { problem: `no readable ${MANIFEST} (${(e as Error).message.split("\n")[0]})` };
  }
  if (m.format !== OPTIMIZED_FORMAT || m.key !== key) return { problem: `${MANIFEST} is for another key` };
  let model: Uint8Array;
  try {
    model = Deno.readFileSync(join(dir, MODEL));
  } catch {
    return { problem: `${MODEL} is missing` };
  }
  if (model.length !== m.model_bytes) {
    return { problem: `${MODEL} has ${model.length} bytes, not ${m.model_bytes}` };
  }
  if (sha256(model) !== m.model_sha256) return { problem: `${MODEL} does not match its hash` };
  const dataBytes = fileSize(join(dir, DATA));
  if (dataBytes !== m.data_bytes) {
    return { problem: `${DATA} has ${dataBytes ?? "no"} bytes, not ${m.data_bytes}` };
  }
  if (dataBytes !== null && sampleHash(join(dir, DATA), dataBytes) !== m.data_sample_sha256) {
    return { problem: `${DATA} does not match its sampled hash` };
  }
  return { model };
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch { /* already gone, or another process holds it: harmless */ }
}

/** Removes the older entries of `slot` (same graph over other weights or another ORT) and stale temp folders. */
function prune(dir: string, slot: string, keep: string): void {
  for (const e of Deno.readDirSync(dir)) {
    if (!e.isDirectory || e.name === keep) continue;
    const p = join(dir, e.name);
    if (e.name.endsWith(".tmp")) {
      const age = Date.now() - (Deno.statSync(p).mtime?.getTime() ?? Date.now());
      if (age > STALE_TMP_MS) removeQuietly(p);
    } else if (e.name.startsWith(`${slot}-`)) removeQuietly(p);
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/**
 * Creates the session for `model` through the optimised-model cache: loads a verified entry with
 * optimisation disabled, or creates the session as `opts` says while ORT saves the optimised model into a
 * new entry (its disk cost printed). Returns undefined where the cache does not apply or cannot be used
 * (the caller then creates the session plainly). `opts` are the options of the plain path; their
 * `extra.session` must name the external data folder.
 */
export async function createThroughOptimizedCache(
  model: Uint8Array,
  externalRoot: string,
  opts: ort.InferenceSession.SessionOptions,
  t: OptimizedTarget,
): Promise<ort.InferenceSession | undefined> {
  if (!optimizedCacheApplies(t) || optimizedCacheOff()) return undefined;
  let name: string;
  try {
    const e = optimizedEntry(model, externalRoot, t);
    if (e.externalBytes < MIN_EXTERNAL_BYTES && Deno.env.get("HALLO_OPTIMIZED_CACHE") !== "all") {
      return undefined;
    }
    name = e.name;
  } catch {
    return undefined; // a missing weights file or malformed bytes: the plain path reports it as ORT does
  }
  const dir = optimizedCacheDir(externalRoot);
  if (!dir) return undefined;
  const entry = join(dir, name);
  const extra = (opts.extra ?? {}) as Record<string, Record<string, string>>;
  if (fileSize(entry) !== null) {
    const got = readVerifiedEntry(entry, name);
    if ("model" in got) {
      try {
        return await ort.InferenceSession.create(got.model, {
          ...opts,
          graphOptimizationLevel: "disabled",
          extra: {
            ...extra,
            session: { ...extra.session, model_external_initializers_file_folder_path: entry },
          },
        });
      } catch (e) {
        console.warn(
          `warning: ${entry}: ORT cannot load the cached optimised model (${firstLine(e)}); rebuilding it`,
        );
      }
    } else console.warn(`warning: ${entry}: ${got.problem}; rebuilding the cached optimised model`);
    removeQuietly(entry);
  }
  const tmp = join(dir, `${name}.${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.tmp`);
  let session: ort.InferenceSession;
  try {
    Deno.mkdirSync(tmp);
    session = await ort.InferenceSession.create(model, {
      ...opts,
      // ORT warns that a saved NCHWc graph only suits the machine it was made on: the key says so already
      logSeverityLevel: opts.logSeverityLevel ?? 3,
      optimizedModelFilePath: join(tmp, MODEL),
      extra: {
        ...extra,
        session: {
          ...extra.session,
          optimized_model_external_initializers_file_name: DATA,
          optimized_model_external_initializers_min_size_in_bytes: "1024",
          save_external_prepacked_constant_initializers: t.prepack ? "1" : "0",
        },
      },
    });
  } catch (e) {
    removeQuietly(tmp);
    console.warn(
      `warning: cannot save the optimised model in ${dir} (${firstLine(e)}); loading without the cache`,
    );
    return undefined;
  }
  try {
    Deno.writeTextFileSync(join(tmp, MANIFEST), JSON.stringify(describe(tmp, name), null, 1));
    Deno.renameSync(tmp, entry);
    const bytes = (fileSize(join(entry, MODEL)) ?? 0) + (fileSize(join(entry, DATA)) ?? 0);
    console.error(`cached the optimised model in ${entry} (${formatBytes(bytes)} on disk)`);
    prune(dir, name.split("-")[0], name);
  } catch (e) {
    // another process renamed the same entry first, or the disk filled: the session stands either way
    removeQuietly(tmp);
    if (fileSize(entry) === null) {
      console.warn(`warning: cannot keep the optimised model in ${dir} (${firstLine(e)})`);
    }
  }
  return session;
}
