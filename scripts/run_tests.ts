/**
 * `deno task test [ARGS]`: the test suite, type-checked once, then its modules in two `deno test` processes
 * at a time. Most of the suite waits on one core (child CLIs, Jupyter, ffmpeg, single-threaded sessions), so
 * on a 2-core machine two processes take about half the wall time of one.
 *
 * Processes, not `deno test --parallel`: that runs modules as workers of one process, which share its
 * environment, and tests set variables (HALLO_GRAPH_CACHE, XDG_CACHE_HOME, HALLO_MEM_AVAILABLE_GIB...) that
 * another module would then read or pass to its children. Within each process the modules run one after
 * another, as in a plain `deno test`; every test writes only in temp folders it makes, and ports are free ones.
 *
 * With ARGS (`--filter x`, ...) it is `deno test -A --no-check=remote tests/ ARGS` in one process, as before.
 * `DENO_JOBS=N` sets the number of processes (1: one plain `deno test` over tests/).
 *
 * Every form runs the tests with TMPDIR at a fresh folder (see `withTestTemp`): tests write only in temp folders
 * they remove, so anything still there when the processes end fails the run, named in one line.
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TESTS = join(ROOT, "tests");

/**
 * Seconds a module takes, for the ones far above the rest (full suite, 2-core machine under load, Dec 2026);
 * any other module counts as `SMALL_S`. Only the split uses these: a stale figure costs balance, never a test.
 */
const SLOW_S: Record<string, number> = {
  "webgpu_test.ts": 310,
  "notebooks_test.ts": 195,
  "animate_cli_test.ts": 105,
  "audio_mdx_test.ts": 35,
  "inspect_wiring_test.ts": 35,
  "sweep_test.ts": 30,
  "replay_devices_test.ts": 30,
  "report_test.ts": 20,
  "weights_fuzz_test.ts": 20,
  "gpu_check_test.ts": 17,
  "hallo_test.ts": 13,
  "readme_walk_test.ts": 10,
  "attention_chunked_test.ts": 9,
  "optimized_cache_test.ts": 9,
  "prepare_image_test.ts": 9,
};
const SMALL_S = 2;

/** Test modules under `dir` as `deno test` finds them (`*_test.ts`, `*.test.ts`, `test.ts`), sorted. */
export function testModules(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      if (e.isDirectory && e.name !== "node_modules") walk(p);
      else if (e.isFile && /(^|[._])test\.(ts|tsx|mts|js|mjs|jsx)$/.test(e.name)) found.push(p);
    }
  };
  walk(dir);
  return found.sort();
}

/**
 * `files` split into `n` groups of about equal estimated time: slowest first, each into the group with the
 * least so far (ties: the first group). Deterministic: the same files give the same groups.
 */
export function splitModules(files: string[], n: number, seconds: (file: string) => number): string[][] {
  const groups = Array.from({ length: n }, () => ({ files: [] as string[], s: 0 }));
  const order = [...files].sort((a, b) => seconds(b) - seconds(a) || (a < b ? -1 : a > b ? 1 : 0));
  for (const f of order) {
    const g = groups.reduce((best, x) => x.s < best.s ? x : best);
    g.files.push(f);
    g.s += seconds(f);
  }
  return groups.map((g) => g.files.sort()).filter((g) => g.length > 0);
}

const estimate = (file: string) => SLOW_S[file.split("/").pop()!] ?? SMALL_S;

/**
 * Runs `run` with the variables it should give the test processes: TMPDIR at a fresh folder, and, when unset,
 * XDG_RUNTIME_DIR at another (what a login session provides; WebGPU tests would otherwise make
 * `hallo-runtime-<uid>` in TMPDIR, see `ensureRuntimeDir`). Afterwards a TMPDIR that is not empty makes the code
 * 1 (or keeps `run`'s failure) and is named in one line through `report`; both folders are then removed.
 */
export async function withTestTemp(
  run: (env: Record<string, string>) => Promise<number>,
  report: (line: string) => void = console.error,
): Promise<number> {
  // Short names: Chromium puts its single-instance socket in TMPDIR, and a socket path has at most 107 bytes.
  const tmp = await Deno.makeTempDir({ prefix: "hallo-test-" });
  const runtime = Deno.env.get("XDG_RUNTIME_DIR")
    ? undefined
    : await Deno.makeTempDir({ prefix: "hallo-xdg-" });
  try {
    const code = await run({ TMPDIR: tmp, ...(runtime ? { XDG_RUNTIME_DIR: runtime } : {}) });
    const left = [...Deno.readDirSync(tmp)].map((e) => e.name).sort();
    if (left.length === 0) return code;
    const shown = left.slice(0, 10).join(", ") + (left.length > 10 ? `, ... (${left.length} in all)` : "");
    report(`test: FAILED: the tests left ${left.length} entries in their TMPDIR (${tmp}): ${shown}`);
    return code || 1;
  } finally {
    for (const dir of runtime ? [tmp, runtime] : [tmp]) {
      await Deno.remove(dir, { recursive: true }).catch((e) =>
        report(`test: cannot remove ${dir}: ${e.message}`)
      );
    }
  }
}

async function run(args: string[], env: Record<string, string> = {}): Promise<number> {
  const r = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, env }).spawn().status;
  return r.code;
}

/** Runs `deno test` over `files`, each output line prefixed with `[tag]`; returns its exit code. */
async function runGroup(tag: string, files: string[], env: Record<string, string>): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", ...files.map((f) => relative(ROOT, f))],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const enc = new TextEncoder();
  const forward = async (stream: ReadableStream<Uint8Array>, to: typeof Deno.stdout) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const l of lines) await to.write(enc.encode(`[${tag}] ${l}\n`));
    }
    if (rest) await to.write(enc.encode(`[${tag}] ${rest}\n`));
  };
  const [status] = await Promise.all([
    child.status,
    forward(child.stdout, Deno.stdout),
    forward(child.stderr, Deno.stderr),
  ]);
  return status.code;
}

export async function main(args: string[]): Promise<number> {
  if (args.length) {
    return await withTestTemp((env) => run(["test", "-A", "--no-check=remote", "tests/", ...args], env));
  }
  const jobs = Number(Deno.env.get("DENO_JOBS") ?? 2);
  if (!Number.isInteger(jobs) || jobs < 1) {
    console.error(`test: DENO_JOBS must be a positive integer, got '${Deno.env.get("DENO_JOBS")}'`);
    return 2;
  }
  if (jobs === 1) return await withTestTemp((env) => run(["test", "-A", "--no-check=remote", "tests/"], env));
  const files = testModules(TESTS);
  // One type check of every module (what each `deno test` would do, without doing it twice); remote
  // modules unchecked, as `--no-check=remote`.
  const checked = await run(["check", ...files.map((f) => relative(ROOT, f))]);
  if (checked !== 0) return checked;
  const groups = splitModules(files, jobs, estimate);
  const t0 = performance.now();
  return await withTestTemp(async (env) => {
    const codes = await Promise.all(groups.map((g, i) => runGroup(String(i + 1), g, env)));
    const s = (performance.now() - t0) / 1000;
    console.log(
      `\ntest: ${files.length} modules in ${groups.length} processes, ${Math.floor(s / 60)}m ${
        Math.round(s % 60)
      }s`,
    );
    groups.forEach((g, i) =>
      console.log(`test: [${i + 1}] ${codes[i] === 0 ? "ok" : "FAILED"}, ${g.length} modules`)
    );
    return codes.some((c) => c !== 0) ? 1 : 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
