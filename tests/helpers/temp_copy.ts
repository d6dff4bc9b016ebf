/**
 * Private, writable copies of read-only test data. Loading a checkpoint compiles its graph into a
 * `.hallo-cache/` beside it, so tests that open sessions work on a copy in a temp folder they create,
 * never on the reference data itself.
 */
import { basename, join } from "node:path";

const copies = new Map<string, string>();

/** Copies the tree at `src` to `dst` (files and folders; entries named in `skip` at the top are left out). */
function copyTree(src: string, dst: string, skip: ReadonlySet<string> = new Set()): void {
  Deno.mkdirSync(dst, { recursive: true });
  for (const e of Deno.readDirSync(src)) {
    if (skip.has(e.name)) continue;
    const from = join(src, e.name), to = join(dst, e.name);
    if (e.isDirectory) copyTree(from, to);
    else if (e.isFile) Deno.copyFileSync(from, to);
    else throw new Error(`${from}: test data must hold only files and folders`);
  }
}

/**
 * A copy of the folder `src` (without its top-level entries named in `skip`) in a temp folder made on the
 * first call and reused by every later call of this test module; the temp folder is removed when the
 * module unloads.
 */
export function tempCopyOnce(src: string, skip: readonly string[] = []): string {
  const key = `${src}\0${[...skip].sort().join("\0")}`;
  const known = copies.get(key);
  if (known) return known;
  const tmp = Deno.makeTempDirSync({ prefix: "hallo-testdata-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
  const dst = join(tmp, basename(src));
  copyTree(src, dst, new Set(skip));
  copies.set(key, dst);
  return dst;
}
