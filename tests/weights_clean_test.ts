/**
 * `weights clean`: removes the compiled caches of a weights folder (`.hallo-cache/` graphs and fp16 weights
 * beside the checkpoints, the per-user caches of its read-only sub-folders) with download leftovers, prints
 * what it removed and the bytes freed, and leaves checkpoints and other folders' caches alone (but `--all`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { compile } from "../src/runtime/cache.ts";
import { Graph } from "../src/onnx/graph.ts";
import { loadImageProj } from "../src/stages/networks/projections.ts";
import { userCacheDir, userCacheHome } from "../src/weights/cache_dirs.ts";
import { findCompiledCaches, removeCaches, treeBytes } from "../src/weights/clean_caches.ts";
import { formatBytes } from "../src/util/bytes.ts";
import { fp16Weights } from "../src/weights/fp16_cache.ts";
import { WeightStore } from "../src/weights/store.ts";
import { withEnv } from "./helpers/env.ts";
import { REFERENCE, tinyModel } from "./helpers/shared.ts";

const NET = tinyModel("hallo", "net.pth");

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

function fill(dir: string, bytes: number): void {
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeFileSync(join(dir, "x.onnx"), new Uint8Array(bytes));
}

/** Runs with XDG_CACHE_HOME in a temp folder and HALLO_GRAPH_CACHE unset, so graphs go beside checkpoints. */
async function withUserCache(fn: (tmp: string) => Promise<void> | void): Promise<void> {
  const tmp = Deno.makeTempDirSync({ prefix: "hallo-clean-" });
  try {
    await withEnv({ XDG_CACHE_HOME: join(tmp, "xdg"), HALLO_GRAPH_CACHE: undefined }, () => fn(tmp));
  } finally {
    Deno.chmodSync(tmp, 0o755);
    for (const e of Deno.readDirSync(tmp)) Deno.chmodSync(join(tmp, e.name), 0o755);
    Deno.removeSync(tmp, { recursive: true });
  }
}

/** The CLI as a user runs it; Deno's own cache stays where it is although XDG_CACHE_HOME moves. */
async function cli(env: Record<string, string>, ...args: string[]): Promise<{ code: number; err: string }> {
  const main = new URL("../src/cli/main.ts", import.meta.url).pathname;
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const denoDir = JSON.parse(new TextDecoder().decode(info.stdout)).denoDir as string;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "weights", ...args],
    env: { ...env, DENO_DIR: denoDir },
  }).output();
  return { code: r.code, err: new TextDecoder().decode(r.stderr) };
}

Deno.test("weights clean removes graphs and fp16 caches beside and per user, prints the bytes freed", async () => {
  await withUserCache(async (tmp) => {
    const weights = join(tmp, "pretrained_models");
    const hallo = join(weights, "hallo");
    Deno.mkdirSync(hallo, { recursive: true });
    const net = join(hallo, "net.pth");
    Deno.copyFileSync(NET, net);
    const cfg = JSON.parse(Deno.readTextFileSync(join(REFERENCE, "index.json"))).common.configs.image_proj;
    // A real fp32 and fp16 load: graphs and fp16 weights land in hallo/.hallo-cache.
    for (const dtype of ["float32", "float16"] as const) {
      await (await loadImageProj(net, { config: cfg, threads: 1, dtype })).release();
    }
    assert.ok([...Deno.readDirSync(join(hallo, ".hallo-cache", "graphs"))].length >= 2);
    assert.equal([...Deno.readDirSync(join(hallo, ".hallo-cache", "fp16"))].length, 1);

    // A read-only checkpoint folder: its fp16 weights are in the user cache.
    const ro = join(weights, "ro");
    Deno.mkdirSync(ro);
    Deno.copyFileSync(NET, join(ro, "net.pth"));
    Deno.chmodSync(ro, 0o555);
    const store = WeightStore.open(join(ro, "net.pth"));
    const refs = store.keys().filter((k) => k.startsWith("imageproj.")).map((k) => store.get(k));
    const userFp16 = userCacheDir("fp16", ro);
    assert.ok(fp16Weights("image_proj", refs, store).file!.startsWith(userFp16));
    // A user graph cache of a sub-folder, one of another weights folder, and a download leftover.
    const vae = join(weights, "sd-vae-ft-mse");
    Deno.mkdirSync(vae);
    const userGraphs = userCacheDir("graphs", vae);
    fill(userGraphs, 1000);
    const other = userCacheDir("graphs", join(tmp, "elsewhere"));
    fill(other, 10);
    Deno.writeFileSync(`${net}.partial`, new Uint8Array(5));

    const found = findCompiledCaches(weights);
    assert.deepEqual(
      found.map((e) => e.path).sort(),
      [join(hallo, ".hallo-cache"), userFp16, userGraphs].sort(),
    );
    const expected = found.reduce((a, e) => a + e.bytes, 0);
    assert.equal(expected, treeBytes(join(hallo, ".hallo-cache")) + treeBytes(userFp16) + 1000);

    const r = await cli({ XDG_CACHE_HOME: join(tmp, "xdg") }, "clean", "--dir", weights);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, new RegExp(`removed ${join(hallo, ".hallo-cache")} \\(beside cache, `));
    assert.match(r.err, new RegExp(`removed ${userFp16} \\(user fp16 cache, `));
    assert.ok(r.err.includes(`3 compiled cache folder(s) removed, ${formatBytes(expected)} freed`), r.err);
    assert.ok(r.err.includes("1 leftover file(s) removed"), r.err);
    for (const p of [join(hallo, ".hallo-cache"), userFp16, userGraphs, `${net}.partial`]) {
      assert.ok(!exists(p), `${p} should be gone`);
    }
    // Checkpoints and other folders' caches stay; a second clean finds nothing.
    assert.ok(exists(net) && exists(join(ro, "net.pth")) && exists(other));
    assert.deepEqual(findCompiledCaches(weights), []);

    // --all empties the whole user cache (every weights folder's).
    const all = findCompiledCaches(weights, { all: true });
    assert.deepEqual(all.map((e) => e.path), ["graphs", "fp16"].map((k) => join(userCacheHome(), k)));
    assert.equal(removeCaches(all), 10);
    assert.ok(!exists(other));
  });
});

Deno.test("the user graph cache clean looks for is the one compile() writes", async () => {
  await withUserCache(() => {
    // No .hallo-cache can be made in /proc, so compile() falls back to the per-user cache of that root.
    const c = compile({ network: "t", config: {}, dtype: "float32", files: ["/proc/version"] }, () => {
      const g = new Graph("t");
      g.output(g.input("x", [1]));
      return g;
    });
    assert.ok(c.path?.startsWith(`${userCacheDir("graphs", "/proc")}/`), c.path);
  });
});

Deno.test("clean of a folder without caches removes nothing", async () => {
  await withUserCache((tmp) => {
    Deno.mkdirSync(join(tmp, "w", "hallo"), { recursive: true });
    Deno.writeFileSync(join(tmp, "w", "hallo", "net.pth"), new Uint8Array(3));
    assert.deepEqual(findCompiledCaches(join(tmp, "w")), []);
    assert.deepEqual(findCompiledCaches(join(tmp, "missing")), []);
    assert.equal(removeCaches([]), 0);
  });
});
