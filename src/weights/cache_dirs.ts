/**
 * Where compiled artefacts (graphs, fp16 weights, ORT-optimised models) are kept: beside the checkpoints in `.hallo-cache/` when
 * the checkpoint folder may be written, else in a per-user cache keyed by the folder's path. One place so
 * that the writers and `weights clean` agree on the layout.
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";

/** Name of the cache folder kept inside a checkpoint folder. */
export const BESIDE_CACHE = ".hallo-cache";

/** Kinds of compiled artefacts; each is a sub-folder of both cache roots. */
export type CacheKind = "graphs" | "fp16" | "optimized";

/** The per-user cache root: `$XDG_CACHE_HOME/hallo-lab`, else `~/.cache/hallo-lab`. */
export function userCacheHome(): string {
  const home = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(home, "hallo-lab");
}

/**
 * The per-user cache folder of `kind` for artefacts over checkpoints under `root`. The same formula as
 * src/runtime/cache.ts `cacheDirFor` uses for graphs (first 12 hex digits of sha256 of the path).
 */
export function userCacheDir(kind: CacheKind, root: string): string {
  return join(userCacheHome(), kind, createHash("sha256").update(root).digest("hex").slice(0, 12));
}

/**
 * Whether files may be created in `dir` (which must exist). A folder without any write permission bit
 * counts as read-only even where the probe would succeed: root ignores mode bits, and read-only shared
 * checkpoints must stay untouched.
 */
export function folderWritable(dir: string): boolean {
  try {
    const st = Deno.statSync(dir);
    if (!st.isDirectory || (st.mode !== null && (st.mode & 0o222) === 0)) return false;
    const probe = join(dir, `.hallo-w${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
    Deno.writeFileSync(probe, new Uint8Array(), { createNew: true });
    Deno.removeSync(probe);
    return true;
  } catch {
    return false;
  }
}

/** Creates `dir` (and parents) and reports whether it can be written. */
export function ensureWritableDir(dir: string): boolean {
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch {
    return false;
  }
  return folderWritable(dir);
}

/**
 * Cache folder of `kind` for artefacts derived from checkpoints in `folder`: `<folder>/.hallo-cache/<kind>`
 * when `folder` is writable, else the per-user one; undefined when neither can be written.
 */
export function cacheFolderFor(
  kind: CacheKind,
  folder: string,
): { dir: string; beside: boolean } | undefined {
  const abs = resolve(folder);
  if (folderWritable(abs)) {
    const beside = join(abs, BESIDE_CACHE, kind);
    if (ensureWritableDir(beside)) return { dir: beside, beside: true };
  }
  const user = userCacheDir(kind, abs);
  return ensureWritableDir(user) ? { dir: user, beside: false } : undefined;
}
