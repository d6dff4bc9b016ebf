/**
 * The tiny random weight set in a temp folder of this test module (made on the first call, removed when the
 * module unloads), so tests never write into the project's weights/ folder.
 */
import { join } from "node:path";
import { ensureTinyWeights } from "../../src/tiny/random.ts";

let made: Promise<string> | undefined;

/** The folder of a complete tiny random set private to this test module. */
export function tinyWeightsDir(): Promise<string> {
  made ??= (async () => {
    const tmp = Deno.makeTempDirSync({ prefix: "hallo-tiny-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
    return (await ensureTinyWeights(join(tmp, "tiny"))).dir;
  })();
  return made;
}

/** A temp folder for `HALLO_TINY_DIR` of a child process; removed when the module unloads. */
export function tinyDirForChild(): string {
  const tmp = Deno.makeTempDirSync({ prefix: "hallo-tiny-child-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
  return join(tmp, "tiny");
}
