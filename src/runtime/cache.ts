/**
 * Compile cache of built graphs. A graph's bytes depend on the builder version, the network
 * config, the checkpoint files (path, size, mtime), the dtype and the probes; that tuple is the key.
 * External data locations are relative to the common folder of the checkpoints ("external root"),
 * which is given to ORT at load time, so a cached graph can be loaded from anywhere.
 */
import { createHash } from "node:crypto";
import { dirname, join, resolve, sep } from "node:path";
import { cacheFolderFor, ensureWritableDir } from "../weights/cache_dirs.ts";
import type { Graph } from "../onnx/graph.ts";

/** Bumped whenever a change to any builder changes the graphs it emits. */
export const BUILDER_VERSION = "2";

export interface CompileKey {
  network: string;
  config: unknown;
  dtype: string;
  probes?: unknown;
  /** Checkpoint files the graph reads. */
  files: readonly string[];
  /** The device whose layer forms the graph was built with (`formsFor`); CPU when absent. */
  target?: string;
}

export interface Compiled {
  bytes: Uint8Array;
  externalRoot: string;
  /** Path of the cached .onnx, when the cache could be written. */
  path?: string;
  cached: boolean;
  buildSeconds: number;
  /** Checkpoint keys bound by the graph (empty when loaded from cache). */
  graph?: Graph;
}

/** Deepest folder containing every path. */
export function commonRoot(files: readonly string[]): string {
  if (files.length === 0) return Deno.cwd();
  const parts = files.map((f) => dirname(resolve(f)).split(sep));
  const out: string[] = [];
  for (let i = 0; i < parts[0].length; i++) {
    const p = parts[0][i];
    if (parts.every((x) => x[i] === p)) out.push(p);
    else break;
  }
  return out.join(sep) || sep;
}

function fileIdentity(f: string): [string, number, number] {
  const st = Deno.statSync(f);
  return [resolve(f), st.size, st.mtime?.getTime() ?? 0];
}

/** Hex digest identifying a graph. */
export function compileHash(k: CompileKey): string {
  const ident = {
    v: BUILDER_VERSION,
    network: k.network,
    config: k.config,
    dtype: k.dtype,
    probes: k.probes ?? null,
    files: k.files.map(fileIdentity),
    // CPU graphs keep the hashes they had before targets existed
    ...(k.target && k.target !== "cpu" ? { target: k.target } : {}),
  };
  return createHash("sha256").update(JSON.stringify(ident)).digest("hex").slice(0, 16);
}

/**
 * Cache folder for graphs over checkpoints under `root`: `<root>/.hallo-cache/graphs` when the checkpoint
 * folder is writable (so `weights clean` finds it), else a per-user cache; `HALLO_GRAPH_CACHE` overrides
 * (`off` disables caching).
 */
export function cacheDirFor(root: string): string | undefined {
  const env = Deno.env.get("HALLO_GRAPH_CACHE");
  if (env === "off") return undefined;
  if (env) return ensureWritableDir(env) ? env : undefined;
  return cacheFolderFor("graphs", root)?.dir;
}

/** Builds (or loads from cache) the graph for `key`. `build` must bind only files listed in `key.files`. */
export function compile(key: CompileKey, build: () => Graph, extraOutputs: readonly string[] = []): Compiled {
  const t0 = performance.now();
  const externalRoot = commonRoot(key.files);
  const dir = cacheDirFor(externalRoot);
  const path = dir ? join(dir, `${key.network}-${compileHash(key)}.onnx`) : undefined;
  if (path) {
    try {
      const bytes = Deno.readFileSync(path);
      return { bytes, externalRoot, path, cached: true, buildSeconds: (performance.now() - t0) / 1000 };
    } catch { /* not cached yet */ }
  }
  const graph = build();
  const bytes = graph.encode(externalRoot, extraOutputs, { external_root: externalRoot });
  if (path) {
    const tmp = `${path}.${Deno.pid}.tmp`;
    try {
      Deno.writeFileSync(tmp, bytes);
      Deno.renameSync(tmp, path);
    } catch {
      try {
        Deno.removeSync(tmp);
      } catch { /* nothing to clean */ }
    }
  }
  return { bytes, externalRoot, path, cached: false, buildSeconds: (performance.now() - t0) / 1000, graph };
}
