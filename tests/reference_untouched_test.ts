/**
 * The repository is self-contained and its reference set stays as committed: running every kind of reference
 * consumer on tests/reference (the parity runner over all cases, the parity CLI on its default directory,
 * model loads through the test helpers, fp32 and fp16) leaves every file and folder there byte-identical,
 * and no source, test, script or benchmark reads the folder that used to sit beside the checkout.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { join, relative } from "node:path";
import { PARITY_CASES } from "../src/parity/registry.ts";
import { runParity } from "../src/parity/runner.ts";
import { vaeCase } from "../src/parity/cases/vae.ts";
import { loadImageProj } from "../src/stages/networks/projections.ts";
import { withEnv } from "./helpers/env.ts";
import { PROJECT, REFERENCE, referenceCase, tinyModel } from "./helpers/shared.ts";
import { readIndex } from "../src/parity/reference.ts";

/** Every entry under `root`: folders by name, files by size, mtime and sha256. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      const rel = relative(root, p);
      if (e.isDirectory) {
        out.set(rel, "dir");
        walk(p);
      } else {
        const st = Deno.lstatSync(p);
        const sha = e.isFile ? createHash("sha256").update(Deno.readFileSync(p)).digest("hex") : "link";
        out.set(rel, `${st.size} ${st.mtime?.getTime()} ${sha}`);
      }
    }
  };
  walk(root);
  return out;
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("parity over every case, the parity CLI and model loads write nothing into tests/reference", async () => {
  const before = snapshot(REFERENCE);
  assert.ok(before.size > 50, `${before.size} entries`);
  const tmp = Deno.makeTempDirSync({ prefix: "hallo-untouched-" });
  try {
    // No graph-cache override: left alone, a load caches its graph beside the checkpoints.
    await withEnv({ HALLO_GRAPH_CACHE: undefined }, async () => {
      const rows = await runParity(REFERENCE, PARITY_CASES);
      const failed = rows.filter((r) => !r.pass);
      assert.deepEqual(failed, []);
      assert.deepEqual([...new Set(rows.map((r) => r.case))].sort(), [...readIndex(REFERENCE).cases].sort());
      assert.equal(Deno.env.get("HALLO_GRAPH_CACHE"), undefined, "the runner restores the environment");

      // The CLI with no directory: the set inside the repository.
      const cli = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(PROJECT, "src", "cli", "parity.ts"),
          "--case",
          "image_proj",
          "--case",
          "ddim_scheduler",
        ],
        cwd: tmp,
      }).output();
      const out = new TextDecoder().decode(cli.stdout);
      assert.equal(cli.code, 0, out + new TextDecoder().decode(cli.stderr));
      assert.match(out, new RegExp(`^reference: ${REFERENCE.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
      assert.match(out, /^10 passed, 0 failed$/m);

      // Loads through the helpers (fp32 and fp16) cache beside the module's private copy, not the set.
      await withEnv({ XDG_CACHE_HOME: join(tmp, "xdg") }, async () => {
        const net = tinyModel("hallo", "net.pth");
        const config = readIndex(REFERENCE).common!.configs!.image_proj as never;
        for (const dtype of ["float32", "float16"] as const) {
          await (await loadImageProj(net, { config, threads: 1, dtype })).release();
        }
        await vaeCase.run(referenceCase("vae"));
        assert.ok(exists(join(net, "..", ".hallo-cache", "graphs")));
        assert.ok(exists(join(net, "..", ".hallo-cache", "fp16")));
        assert.ok(!net.startsWith(REFERENCE));
      });
    });
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
  assert.deepEqual(snapshot(REFERENCE), before);
});

Deno.test("no source, test, script, benchmark or the README reads the folder beside the checkout", () => {
  const self = fileURLToPath(import.meta.url);
  const beside = ["..", "shared"];
  const needles = [
    beside.join("/"),
    new RegExp(beside.map((s) => `["']${s.replace(/\./g, "\\.")}["']`).join("\\s*,\\s*")),
  ];
  const text = /\.(ts|js|mjs|json|md|py|sh|txt|ya?ml|toml|ipynb)$/;
  const hits: string[] = [];
  const scan = (p: string) => {
    if (p === self || !text.test(p)) return;
    const s = Deno.readTextFileSync(p);
    if (needles.some((n) => typeof n === "string" ? s.includes(n) : n.test(s))) {
      hits.push(relative(PROJECT, p));
    }
  };
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) walk(join(dir, e.name));
      else if (e.isFile) scan(join(dir, e.name));
    }
  };
  for (const d of ["src", "tests", "scripts", "bench"]) walk(join(PROJECT, d));
  scan(join(PROJECT, "README.md"));
  assert.deepEqual(hits, []);
});
