/**
 * Test modules leave the environment as they found it. `deno task test` (scripts/run_tests.ts) imports every
 * module of a `deno test` process before any test runs, so a module-level `Deno.env.set` or `Deno.env.delete`
 * would change the variable for every other module of that process, to a value that depends on import order.
 * Tests set variables with withEnv or testWithEnv (tests/helpers/env.ts), for as long as they run.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { testWithEnv, withEnv } from "./helpers/env.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TESTS = join(ROOT, "tests");

/**
 * 1-based numbers of the lines of `source` that change the environment at module level. `deno fmt` writes
 * module-level statements at column 0 and whatever is inside a body indented, so an unindented line (not a
 * comment) calling `Deno.env.set(` or `Deno.env.delete(` runs when the module is imported.
 */
function moduleLevelEnvWrites(source: string): number[] {
  const found: number[] = [];
  for (const [i, line] of source.split("\n").entries()) {
    if (/^\s/.test(line) || /^(\/\/|\/\*|\*)/.test(line)) continue;
    if (/\bDeno\.env\.(set|delete)\(/.test(line)) found.push(i + 1);
  }
  return found;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory && e.name !== "node_modules") out.push(...tsFiles(p));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

Deno.test("moduleLevelEnvWrites finds unindented set and delete calls, not those in bodies or comments", () => {
  const source = [
    'Deno.env.set("HALLO_GRAPH_CACHE", "off");', // 1
    "function f() {",
    '  Deno.env.set("A", "1");',
    "}",
    'if (x) Deno.env.delete("B");', // 5
    '// Deno.env.set("C", "1") would leak',
    " * Deno.env.delete(k) in JSDoc",
    'const put = () => { Deno.env.get("D"); };',
    'await withEnv({ E: "1" }, () => run());',
    'Deno.env.delete("F");', // 10
  ].join("\n");
  assert.deepEqual(moduleLevelEnvWrites(source), [1, 5, 10]);
});

Deno.test("no test module or helper sets or deletes an environment variable at module level", () => {
  const found = tsFiles(TESTS).flatMap((file) =>
    moduleLevelEnvWrites(Deno.readTextFileSync(file)).map((line) => `${relative(ROOT, file)}:${line}`)
  );
  assert.deepEqual(
    found,
    [],
    `module-level Deno.env.set/delete at ${
      found.join(", ")
    }: it changes the variable for every module of the ` +
      "deno test process; set it for the tests that need it with withEnv or testWithEnv (tests/helpers/env.ts)",
  );
});

// testWithEnv: the variable is set while each of its tests runs, and only then.
const PROBE = "HALLO_TEST_HYGIENE_PROBE";
const probed = testWithEnv({ [PROBE]: "on" });
const atImport = Deno.env.get(PROBE);

probed("testWithEnv sets its variables while the test runs (name and body form)", () => {
  assert.equal(atImport, undefined, `${PROBE} was set at import`);
  assert.equal(Deno.env.get(PROBE), "on");
});

probed({
  name: "testWithEnv sets its variables while the test runs (definition form, context passed on)",
  fn: (t) => {
    assert.equal(
      t.name,
      "testWithEnv sets its variables while the test runs (definition form, context passed on)",
    );
    assert.equal(Deno.env.get(PROBE), "on");
  },
});

Deno.test("after testWithEnv's tests, and after a withEnv body throws, the variables are as before", async () => {
  assert.equal(Deno.env.get(PROBE), undefined);
  await assert.rejects(
    withEnv({ [PROBE]: "thrown" }, () => {
      assert.equal(Deno.env.get(PROBE), "thrown");
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(Deno.env.get(PROBE), undefined);
});
