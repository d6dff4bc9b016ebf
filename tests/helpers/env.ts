/** Running test code under temporary environment variables. */

/**
 * Runs `fn` with each variable of `vars` set (a string) or unset (undefined), then puts every one back as it
 * was, whatever `fn` does.
 */
export async function withEnv<T>(
  vars: Readonly<Record<string, string | undefined>>,
  fn: () => Promise<T> | T,
): Promise<T> {
  const saved = Object.keys(vars).map((k) => [k, Deno.env.get(k)] as const);
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) Deno.env.delete(k);
    else Deno.env.set(k, v);
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

/** `Deno.test`'s two usual forms: a name and a body, or a definition. */
export type TestRegistrar = {
  (name: string, fn: (t: Deno.TestContext) => void | Promise<void>): void;
  (def: Deno.TestDefinition): void;
};

/**
 * `Deno.test` for a module whose every test needs `vars`: each test runs inside {@link withEnv}, so they are set
 * only while that test runs. Setting them at module level would set them for every module `deno test` imports
 * into the same process, all of which are imported before any test runs.
 *
 * @example
 * const test = testWithEnv({ HALLO_GRAPH_CACHE: "off" });
 * test("compiles without a graph cache", () => {});
 */
export function testWithEnv(vars: Readonly<Record<string, string | undefined>>): TestRegistrar {
  return (nameOrDef: string | Deno.TestDefinition, fn?: (t: Deno.TestContext) => void | Promise<void>) => {
    const def = typeof nameOrDef === "string" ? { name: nameOrDef, fn: fn! } : nameOrDef;
    Deno.test({ ...def, fn: (t) => withEnv(vars, () => def.fn(t)) });
  };
}
