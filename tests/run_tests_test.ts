/**
 * The test task's runner: it finds the modules `deno test tests/` runs, and splits them into balanced,
 * deterministic groups that together hold every module exactly once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { splitModules, testModules } from "../scripts/run_tests.ts";

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
