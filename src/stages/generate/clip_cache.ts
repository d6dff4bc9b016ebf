/**
 * The activation cache of one clip of a run, as the front door wires it: spilled into the run dir under the
 * clip's prefix (`clip-NNNN.activations-*.safetensors`), so caches of long videos stay bounded in memory and
 * every clip's values can be read back by name after the run.
 */
import { ActivationCache } from "../inspect/cache.ts";
import type { SiteReduction } from "../inspect/reduce.ts";
import { runFiles } from "./run_dir.ts";

/** What one clip's cache records and how much memory it may hold. */
export interface ClipCacheOptions {
  /** Sites (probe names, e.g. `<module path>.probs`) and each one's reduction. */
  sites: Readonly<Record<string, SiteReduction>>;
  /** Bytes held in memory before spilling (default 256 MiB). */
  maxBytes?: number;
}

/**
 * Clip `clip`'s activation cache, spilling into `runDir`.
 *
 * @example
 * ```ts ignore
 * const site = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2.probs";
 * const caches: ActivationCache[] = [];
 * await hallo.animate(image, audio, {
 *   out: "out.mp4",
 *   cache: (clip, runDir) => (caches[clip] = clipActivationCache(runDir, clip, { sites: { [site]: { mean: ["heads", "steps"] } } })),
 * });
 * console.log(caches[0].get(site).shape);
 * ```
 */
export function clipActivationCache(runDir: string, clip: number, o: ClipCacheOptions): ActivationCache {
  return new ActivationCache({
    sites: o.sites,
    maxBytes: o.maxBytes ?? 256 * 2 ** 20,
    spillDir: runDir,
    prefix: runFiles.cachePrefix(clip),
  });
}
