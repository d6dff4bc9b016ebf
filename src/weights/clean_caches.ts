/**
 * Finding and removing compiled caches of a weights folder: every `.hallo-cache/` under it (graphs, fp16
 * weights and ORT-optimised models kept beside the checkpoints) and the per-user cache folders keyed by its
 * sub-folders (used when a checkpoint folder is read-only). Nothing else is ever removed.
 */
import { join, resolve } from "node:path";
import { BESIDE_CACHE, type CacheKind, userCacheDir, userCacheHome } from "./cache_dirs.ts";

/** One cache folder found. */
export interface CacheEntry {
  path: string;
  /** Bytes of the files under it. */
  bytes: number;
  /** `beside`: a `.hallo-cache/` in the weights folder; else the per-user cache of that kind. */
  where: "beside" | `user ${CacheKind}`;
}

/** Checkpoint layouts are shallow (`stable-diffusion-v1-5/unet/`); this bounds a walk of a mistaken `--dir /`. */
const MAX_DEPTH = 6;

const KINDS: readonly CacheKind[] = ["graphs", "fp16", "optimized"];

function isDir(p: string): boolean {
  try {
    return Deno.lstatSync(p).isDirectory;
  } catch {
    return false;
  }
}

/** Total size of the regular files under `p` (symlinks are not followed). */
export function treeBytes(p: string): number {
  const st = Deno.lstatSync(p);
  if (!st.isDirectory) return st.isFile ? st.size : 0;
  let n = 0;
  for (const e of Deno.readDirSync(p)) n += treeBytes(join(p, e.name));
  return n;
}

/** Folders under `dir` (itself included), without following symlinks or entering cache folders. */
function walkFolders(dir: string, depth: number, out: { folders: string[]; beside: string[] }): void {
  out.folders.push(dir);
  if (depth >= MAX_DEPTH) return;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isDirectory) continue;
    const p = join(dir, e.name);
    if (e.name === BESIDE_CACHE) out.beside.push(p);
    else walkFolders(p, depth + 1, out);
  }
}

/**
 * Compiled caches of the weights folder `dir`; with `all`, the whole per-user cache too (caches of every
 * weights folder). A missing `dir` has none beside it but may still have user caches.
 */
export function findCompiledCaches(dir: string, o: { all?: boolean } = {}): CacheEntry[] {
  const root = resolve(dir);
  const found = { folders: [] as string[], beside: [] as string[] };
  if (isDir(root)) walkFolders(root, 0, found);
  else found.folders.push(root);
  const entries: CacheEntry[] = found.beside.map((p) => ({ path: p, bytes: treeBytes(p), where: "beside" }));
  const seen = new Set(entries.map((e) => e.path));
  const add = (p: string, kind: CacheKind) => {
    if (seen.has(p) || !isDir(p)) return;
    seen.add(p);
    entries.push({ path: p, bytes: treeBytes(p), where: `user ${kind}` });
  };
  for (const kind of KINDS) {
    if (o.all) add(join(userCacheHome(), kind), kind);
    else for (const f of found.folders) add(userCacheDir(kind, f), kind);
  }
  return entries;
}

/** Removes the cache folders; returns the bytes freed. */
export function removeCaches(entries: readonly CacheEntry[]): number {
  let freed = 0;
  for (const e of entries) {
    try {
      Deno.removeSync(e.path, { recursive: true });
      freed += e.bytes;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return freed;
}
