/**
 * What the WebGPU tests share: a hard check that the provider starts (lavapipe on CI: the tests fail, never
 * skip, where it is missing), and a writable mirror of tests/reference so fp16 weight caches and compiled
 * graphs land in a temp folder instead of the reference set.
 */
import { basename, join } from "node:path";
import { probeProvider } from "../../src/runtime/providers.ts";
import { REFERENCE } from "./shared.ts";

/** Throws, naming the fix, when ORT's WebGPU provider does not start here. */
export async function requireWebGpu(): Promise<void> {
  const r = await probeProvider("webgpu");
  if (!r.ok) {
    throw new Error(
      `ORT's WebGPU provider does not start (${r.error}): these tests run on Mesa's lavapipe; install ` +
        "`mesa-vulkan-drivers` from bookworm-backports as .ci/run does, or run `deno task hallo doctor`",
    );
  }
}

/**
 * A temp folder mirroring tests/reference: every folder is new (so caches written beside checkpoints stay
 * inside it), case files are symlinks, and the tiny checkpoints are copies (43 MB), because ORT refuses
 * external data that resolves outside the model's folder. Returns the folder; remove it after.
 */
export function referenceMirror(): string {
  const root = Deno.makeTempDirSync({ prefix: "hallo-webgpu-ref-" });
  const mirror = (src: string, dst: string, copy: boolean) => {
    Deno.mkdirSync(dst, { recursive: true });
    for (const e of Deno.readDirSync(src)) {
      if (e.name === ".hallo-cache") continue;
      const s = join(src, e.name);
      if (e.isDirectory) mirror(s, join(dst, e.name), copy || e.name === "tiny_models");
      else if (copy) Deno.copyFileSync(s, join(dst, basename(s)));
      else Deno.symlinkSync(s, join(dst, basename(s)));
    }
  };
  mirror(REFERENCE, root, false);
  return root;
}
