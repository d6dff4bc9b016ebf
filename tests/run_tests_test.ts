/**
 * The test task's runner: it finds the modules `deno test tests/` runs, splits them into balanced,
 * deterministic groups that together hold every module exactly once, and fails a run that leaves anything in
 * the temp folder it gives the tests.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { splitModules, testModules, withTestTemp } from "../scripts/run_tests.ts";
import { withEnv } from "./helpers/env.ts";

Deno.test("testModules: the test files under a folder as deno test finds them, sorted, helpers left out", () => {
  const dir = Deno.makeTempDirSync({ prefix: "hallo-run-tests-" });
  try {
    for (const f of ["b_test.ts", "a.test.ts", "test.ts", "helper.ts", "latest.ts", "sub/c_test.mjs"]) {
      Deno.mkdirSync(join(dir, f, ".."), { recursive: true });
      Deno.writeTextFileSync(join(dir, f), "");
    }
    Deno.mkdirSync(join(dir, "node_modules"));
    Deno.writeTextFileSync(join(dir, "node_modules", "x_test.ts"), "");
    assert.deepEqual(
      testModules(dir).map((p) => p.slice(dir.length + 1)),
      ["a.test.ts", "b_test.ts", "sub/c_test.mjs", "test.ts"],
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  const here = testModules(join(import.meta.dirname!));
  assert.ok(here.some((p) => p.endsWith("/run_tests_test.ts")));
  assert.ok(!here.some((p) => p.includes("/helpers/")));
});

Deno.test("splitModules: slowest first into the lightest group; every module once; same input, same groups", () => {
  const s: Record<string, number> = { a: 10, b: 6, c: 5, d: 1, e: 1, f: 1 };
  const groups = splitModules(Object.keys(s), 2, (f) => s[f]);
  // a -> 1 (10); b -> 2 (6); c -> 2 (11); d -> 1 (11); e -> 1 (12, ties go first); f -> 2 (12).
  assert.deepEqual(groups, [["a", "d", "e"], ["b", "c", "f"]]);
  assert.deepEqual(splitModules(Object.keys(s).reverse(), 2, (f) => s[f]), groups);
  assert.deepEqual(groups.flat().sort(), Object.keys(s));
  // More groups than modules: no empty group.
  assert.deepEqual(splitModules(["a", "b"], 3, (f) => s[f]), [["a"], ["b"]]);
});

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test("withTestTemp: fresh empty TMPDIR and XDG_RUNTIME_DIR (when unset) for the tests, removed after; run's code kept", async () => {
  let seen: Record<string, string> = {};
  const lines: string[] = [];
  const code = await withEnv({ XDG_RUNTIME_DIR: undefined }, () =>
    withTestTemp(async (env) => {
      seen = env;
      assert.deepEqual([...Deno.readDirSync(env.TMPDIR)], []);
      assert.equal((await Deno.stat(env.XDG_RUNTIME_DIR)).mode! & 0o777, 0o700);
      // What a test leaves outside TMPDIR is not the check's business (XDG_RUNTIME_DIR is removed anyway).
      await Deno.writeTextFile(join(env.XDG_RUNTIME_DIR, "socket"), "");
      return 3;
    }, (l) => lines.push(l)));
  assert.equal(code, 3);
  assert.deepEqual(lines, []);
  assert.deepEqual(Object.keys(seen).sort(), ["TMPDIR", "XDG_RUNTIME_DIR"]);
  assert.equal(await exists(seen.TMPDIR), false);
  assert.equal(await exists(seen.XDG_RUNTIME_DIR), false);
  // A runtime folder the session already has is left to the tests as it is.
  await withEnv({ XDG_RUNTIME_DIR: "/run/user/1234" }, () =>
    withTestTemp((env) => {
      seen = env;
      return Promise.resolve(0);
    }));
  assert.deepEqual(Object.keys(seen), ["TMPDIR"]);
});

Deno.test("withTestTemp: anything left in TMPDIR fails a passing run in one line naming it, and is removed", async () => {
  let tmp = "";
  const lines: string[] = [];
  const leave = (code: number) =>
    withTestTemp(async (env) => {
      tmp = env.TMPDIR;
      await Deno.mkdir(join(tmp, "hallo-weights-x1"));
      await Deno.writeTextFile(join(tmp, "mat-debug-42.log"), "");
      return code;
    }, (l) => lines.push(l));
  assert.equal(await leave(0), 1);
  assert.deepEqual(lines, [
    `test: FAILED: the tests left 2 entries in their TMPDIR (${tmp}): hallo-weights-x1, mat-debug-42.log`,
  ]);
  assert.equal(await exists(tmp), false);
  // A failing run keeps its own code.
  assert.equal(await leave(2), 2);
  assert.equal(lines.length, 2);
  assert.equal(await exists(tmp), false);
});
