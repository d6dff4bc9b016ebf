/**
 * `deno task notebooks [--only 01,04] [--out-dir DIR] [--dir DIR] [--timeout S] [--no-typecheck] [--no-retry]`:
 * runs every notebook in notebooks/ (or `--dir`) headless (Jupyter's nbconvert with Deno's kernel) and checks what came out.
 *
 * - The kernel is registered for the run only: a private kernelspec `deno` whose argv is the Deno running this
 *   script (`Deno.execPath()`, so `npx deno@x task notebooks` uses that Deno), put first on JUPYTER_PATH. The
 *   user's own kernels are neither needed nor touched.
 * - Sources are never written: executed copies go to `--out-dir` (default out/notebooks/), with a log each.
 * - A notebook fails when a cell errors (nbconvert stops there and says which), when an `error` output is
 *   present, or when a cell misses a display output its metadata expects:
 *   `"hallo": {"expect": ["application/vnd.plotly.v1+json", "image/png"], "displays": 2}` = each listed mime
 *   type in at least one display output of the cell, and at least `displays` (default 1) display outputs.
 * - A notebook with missing outputs runs once more: Deno's kernel can send a cell's `idle` before its last
 *   messages and Jupyter then drops them (the notebooks pause after each display to avoid it; a rerun covers what
 *   is left). Errors are not retried.
 * - Before running, the code cells of each notebook are type-checked as one module (`deno check`): the kernel
 *   itself runs TypeScript without checking it. One `deno check` takes every notebook (each check pays for
 *   mod.ts's whole graph, seconds); when it fails, a notebook its diagnostics do not name is checked alone.
 *
 * Exit code 0 when every notebook passed, 1 otherwise (with a summary table), 2 on bad usage.
 */
import { basename, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Default seconds per notebook: the tiny weights take seconds; Hallo's real weights on a CPU take hours. */
const TINY_TIMEOUT_S = 300;
const REAL_TIMEOUT_S = 6 * 3600;

/** A runner problem that ends the run (no Jupyter, bad metadata, bad options): one line. */
export class NotebookRunError extends Error {
  override name = "NotebookRunError";
}

/** What a code cell must show, from its `metadata.hallo`. */
export interface Expectation {
  /** Mime types that must each appear in at least one display output of the cell. */
  expect: string[];
  /** Minimum number of display outputs. */
  displays: number;
}

interface NbOutput {
  output_type: string;
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
}

interface NbCell {
  cell_type: string;
  id?: string;
  metadata?: Record<string, unknown>;
  source?: string | string[];
  outputs?: NbOutput[];
}

/** The part of an .ipynb the runner reads. */
export interface Notebook {
  cells: NbCell[];
}

/** A problem found in an executed notebook. */
export interface Finding {
  kind: "error" | "missing";
  cell: string;
  message: string;
}

const text = (s: string | string[] | undefined) => (Array.isArray(s) ? s.join("") : s ?? "");
const cellName = (c: NbCell, i: number) => `cell ${i}${c.id ? ` (${c.id})` : ""}`;

/** Reads a cell's `metadata.hallo`; undefined when it expects nothing. Bad metadata is a NotebookRunError. */
export function cellExpectation(cell: NbCell, where: string): Expectation | undefined {
  const h = cell.metadata?.hallo;
  if (h === undefined) return undefined;
  const o = h as { expect?: unknown; displays?: unknown };
  if (
    typeof h !== "object" || h === null || !Array.isArray(o.expect) ||
    o.expect.some((m) => typeof m !== "string")
  ) {
    throw new NotebookRunError(`${where}: metadata.hallo.expect must be a list of mime types`);
  }
  const displays = o.displays ?? 1;
  if (typeof displays !== "number" || !Number.isInteger(displays) || displays < 1) {
    throw new NotebookRunError(`${where}: metadata.hallo.displays must be a positive integer`);
  }
  return { expect: o.expect as string[], displays };
}

/** Error outputs and missing expected outputs of an executed notebook (empty: it passed). */
export function checkNotebook(nb: Notebook, name: string): Finding[] {
  const found: Finding[] = [];
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type !== "code") return;
    const where = cellName(cell, i);
    const outputs = cell.outputs ?? [];
    for (const o of outputs) {
      if (o.output_type === "error") {
        found.push({ kind: "error", cell: where, message: `${o.ename ?? "Error"}: ${o.evalue ?? ""}` });
      }
    }
    const want = cellExpectation(cell, `${name} ${where}`);
    if (!want) return;
    const shown = outputs.filter((o) =>
      o.output_type === "display_data" || o.output_type === "execute_result"
    );
    const missing = want.expect.filter((m) => !shown.some((o) => o.data && m in o.data));
    const problems: string[] = [];
    if (missing.length) problems.push(`no ${missing.join(", ")}`);
    if (shown.length < want.displays) problems.push(`${shown.length} of ${want.displays} display outputs`);
    if (problems.length) found.push({ kind: "missing", cell: where, message: problems.join("; ") });
  });
  return found;
}

/** A notebook's code cells as one module, and where each cell starts in it. */
export interface NotebookModule {
  code: string;
  /** 1-based first line of each code cell in `code`, with the cell's name. */
  cells: { line: number; cell: string }[];
}

/** The code cells of a notebook as one module, relative imports made absolute (for `deno check`). */
export function notebookModule(nb: Notebook, notebookDir: string): NotebookModule {
  const cells: NotebookModule["cells"] = [];
  const parts: string[] = [];
  let line = 1;
  nb.cells.forEach((c, i) => {
    if (c.cell_type !== "code") return;
    const src = text(c.source).replace(
      /(from\s+|import\s*\(\s*)(["'])(\.{1,2}\/[^"']+)\2/g,
      (_, pre: string, q: string, spec: string) =>
        `${pre}${q}${pathToFileURL(resolve(notebookDir, spec)).href}${q}`,
    );
    cells.push({ line, cell: cellName(c, i) });
    parts.push(src);
    line += src.split("\n").length + 1;
  });
  return { code: `${parts.join("\n\n")}\n\nexport {};\n`, cells };
}

/**
 * `deno check` diagnostics on a notebook module, as `cell N (id) line L: TSxxxx message` lines; with `file`
 * (the module's path), only those located in that file (a check of several modules).
 */
export function typeErrors(out: string, mod: NotebookModule, file?: string): string[] {
  const found: string[] = [];
  let pending: string | undefined;
  const here = file === undefined ? undefined : pathToFileURL(file).href;
  for (const l of out.split("\n")) {
    const ts = l.match(/^(TS\d+) \[ERROR\]: (.*)$/);
    if (ts) pending = `${ts[1]} ${ts[2]}`;
    const at = l.match(/^\s+at (.*):(\d+):\d+$/);
    if (at && pending && here !== undefined && at[1] !== here) pending = undefined;
    else if (at && pending) {
      const n = Number(at[2]);
      const c = mod.cells.findLast((x) => x.line <= n) ?? mod.cells[0];
      found.push(`${c?.cell ?? "?"} line ${n - (c?.line ?? 1) + 1}: ${pending}`);
      pending = undefined;
    }
  }
  return found;
}

interface Options {
  only?: string[];
  dir: string;
  outDir: string;
  timeoutS: number;
  typecheck: boolean;
  retry: boolean;
}

function parseArgs(args: string[]): Options {
  const o: Options = {
    dir: join(ROOT, "notebooks"),
    outDir: join(ROOT, "out", "notebooks"),
    timeoutS: Deno.env.get("HALLO_WEIGHTS") ? REAL_TIMEOUT_S : TINY_TIMEOUT_S,
    typecheck: true,
    retry: true,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith("--")) throw new NotebookRunError(`${a} needs a value`);
      return v;
    };
    if (a === "--only") o.only = value().split(",").filter(Boolean);
    else if (a === "--out-dir") o.outDir = resolve(value());
    else if (a === "--dir") o.dir = resolve(value());
    else if (a === "--timeout") {
      const v = value();
      o.timeoutS = Number(v);
      if (!Number.isFinite(o.timeoutS) || o.timeoutS <= 0) {
        throw new NotebookRunError(`--timeout must be a positive number of seconds, got '${v}'`);
      }
    } else if (a === "--no-typecheck") o.typecheck = false;
    else if (a === "--no-retry") o.retry = false;
    else {throw new NotebookRunError(
        `unknown option '${a}' (--only, --out-dir, --dir, --timeout, --no-typecheck, --no-retry)`,
      );}
  }
  return o;
}

/** The notebooks to run, sorted; `only` picks by name prefix (`01`, `04_denoising`). */
export function selectNotebooks(names: string[], only?: string[]): string[] {
  const all = names.filter((n) => n.endsWith(".ipynb")).sort();
  if (!only) return all;
  const picked = all.filter((n) => only.some((p) => n.startsWith(p)));
  const unknown = only.filter((p) => !all.some((n) => n.startsWith(p)));
  if (unknown.length) {
    throw new NotebookRunError(`no notebook matches ${unknown.join(", ")} (have ${all.join(", ")})`);
  }
  return picked;
}

async function output(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } catch {
    return { ok: false, out: "" };
  }
}

/** Fails with the packages to install when Jupyter's nbconvert is not usable. */
async function requireJupyter(): Promise<string> {
  const r = await output("jupyter", ["nbconvert", "--version"]);
  if (!r.ok) {
    throw new NotebookRunError(
      "jupyter nbconvert is not available: install jupyter-notebook jupyter-nbconvert python3-nbclient " +
        "python3-ipykernel (Debian) or `pip install nbconvert nbclient ipykernel`",
    );
  }
  return r.out.trim();
}

/** A kernelspec `deno` running this very Deno, in a folder meant for JUPYTER_PATH. */
async function privateKernel(dir: string): Promise<void> {
  const spec = join(dir, "kernels", "deno");
  await Deno.mkdir(spec, { recursive: true });
  await Deno.writeTextFile(
    join(spec, "kernel.json"),
    JSON.stringify({
      argv: [Deno.execPath(), "jupyter", "--kernel", "--conn", "{connection_file}"],
      display_name: "Deno (hallo-lab notebooks)",
      language: "typescript",
    }),
  );
}

/** `deno check` on the given modules; undefined when they pass, else its output. */
async function denoCheck(paths: string[]): Promise<string | undefined> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", "--config", join(ROOT, "deno.json"), ...paths],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.success) return undefined;
  return new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
}

/**
 * Type problems per notebook (undefined: none), checked in one `deno check`; a failed check's diagnostics
 * go to the notebooks they name, and a notebook named by none is checked alone (the failure may be another's,
 * or lie outside every notebook). Notebooks that do not parse are left to `runNotebook`.
 */
async function typecheckAll(
  names: string[],
  dir: string,
  tmp: string,
): Promise<Map<string, string | undefined>> {
  const mods: { name: string; path: string; mod: NotebookModule }[] = [];
  for (const name of names) {
    let nb: Notebook;
    try {
      nb = JSON.parse(await Deno.readTextFile(join(dir, name)));
      if (!Array.isArray(nb.cells)) continue;
    } catch {
      continue;
    }
    const path = join(tmp, `${basename(name, ".ipynb")}.ts`);
    const mod = notebookModule(nb, dir);
    await Deno.writeTextFile(path, mod.code);
    mods.push({ name, path, mod });
  }
  const problems = new Map<string, string | undefined>();
  const all = mods.length ? await denoCheck(mods.map((m) => m.path)) : undefined;
  for (const m of mods) {
    let out = all;
    let errors = out === undefined ? [] : typeErrors(out, m.mod, m.path);
    if (out !== undefined && errors.length === 0 && mods.length > 1) {
      out = await denoCheck([m.path]);
      errors = out === undefined ? [] : typeErrors(out, m.mod, m.path);
    }
    problems.set(
      m.name,
      out === undefined
        ? undefined
        : errors.length
        ? errors.slice(0, 8).join("\n")
        : out.trim().split("\n").slice(0, 8).join("\n"),
    );
  }
  return problems;
}

interface Attempt {
  ok: boolean;
  timedOut: boolean;
  log: string;
}

/** One nbconvert run in its own process group, so a timeout ends the kernel too. */
async function execute(file: string, o: Options, env: Record<string, string>): Promise<Attempt> {
  const args = [
    "jupyter",
    "nbconvert",
    "--to",
    "notebook",
    "--execute",
    file,
    "--output-dir",
    o.outDir,
    "--ExecutePreprocessor.kernel_name=deno",
    `--ExecutePreprocessor.timeout=${Math.ceil(o.timeoutS)}`,
  ];
  const child = new Deno.Command("setsid", { args, cwd: ROOT, env, stdout: "piped", stderr: "piped" })
    .spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* already gone */ }
  }, o.timeoutS * 1000 + 10_000);
  const r = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { ok: r.success && !timedOut, timedOut, log: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/**
 * What failed, from nbconvert's log: the failing cell (found by its source, which nbclient's
 * CellExecutionError quotes) and the error's first lines; else the log's last lines.
 */
export function failureSummary(log: string, nb?: Notebook): string {
  // deno-lint-ignore no-control-regex
  const lines = log.replace(/\x1b\[[0-9;]*m/g, "").split("\n").map((l) => l.trimEnd());
  const start = lines.findLastIndex((l) =>
    l.includes("An error occurred while executing the following cell")
  );
  const bar = (i: number) => lines.findIndex((l, k) => k > i && /^-{6,}$/.test(l));
  const open = start >= 0 ? bar(start) : -1;
  const close = open >= 0 ? bar(open) : -1;
  if (close < 0) return lines.filter((l) => l.trim()).slice(-6).join("\n");
  const source = lines.slice(open + 1, close).join("\n").trim();
  const index = nb?.cells.findIndex((c) => c.cell_type === "code" && text(c.source).trim() === source) ?? -1;
  const where = index >= 0 ? cellName(nb!.cells[index], index) : "a cell";
  const error = lines.slice(close + 1).filter((l) => l.trim()).slice(0, 3);
  return `${where}: ${error.join("\n")}`;
}

interface Result {
  name: string;
  status: "passed" | "failed";
  seconds: number;
  attempts: number;
  details: string;
}

async function runNotebook(
  name: string,
  o: Options,
  env: Record<string, string>,
  typeProblems: Map<string, string | undefined>,
): Promise<Result> {
  const file = join(o.dir, name);
  const t0 = performance.now();
  const result = (status: Result["status"], attempts: number, details: string): Result => ({
    name,
    status,
    seconds: (performance.now() - t0) / 1000,
    attempts,
    details,
  });
  let source: Notebook;
  try {
    source = JSON.parse(await Deno.readTextFile(file));
    if (!Array.isArray(source.cells)) throw new Error("no cells");
  } catch (e) {
    return result("failed", 0, `${file}: not a notebook (${(e as Error).message.split("\n")[0]})`);
  }
  // Metadata problems are found before minutes of execution.
  source.cells.forEach((c, i) => cellExpectation(c, `${name} ${cellName(c, i)}`));
  const problem = typeProblems.get(name);
  if (problem) return result("failed", 0, `type check: ${problem}`);
  const logFile = join(o.outDir, `${basename(name, ".ipynb")}.log`);
  const attempts = o.retry ? 2 : 1;
  let findings: Finding[] = [];
  for (let a = 1; a <= attempts; a++) {
    const run = await execute(file, o, env);
    await Deno.writeTextFile(logFile, run.log);
    if (run.timedOut) return result("failed", a, `timed out after ${o.timeoutS} s (log: ${logFile})`);
    if (!run.ok) return result("failed", a, `${failureSummary(run.log, source)}\n(log: ${logFile})`);
    const executed: Notebook = JSON.parse(await Deno.readTextFile(join(o.outDir, name)));
    findings = checkNotebook(executed, name);
    const errors = findings.filter((f) => f.kind === "error");
    if (errors.length) return result("failed", a, errors.map((f) => `${f.cell}: ${f.message}`).join("\n"));
    if (findings.length === 0) {
      return result("passed", a, a > 1 ? "outputs complete on the second run (the first one lost some)" : "");
    }
  }
  return result("failed", attempts, findings.map((f) => `${f.cell}: ${f.message}`).join("\n"));
}

function summaryTable(rows: Result[]): string {
  const head = ["notebook", "status", "seconds", "runs", "details"];
  const body = rows.map((
    r,
  ) => [r.name, r.status, r.seconds.toFixed(1), String(r.attempts), r.details.split("\n")[0]]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd();
  return [line(head), line(w.map((n) => "-".repeat(n))), ...body.map(line)].join("\n");
}

/** Runs the notebooks; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let o: Options;
  let names: string[];
  try {
    o = parseArgs(args);
    let entries: string[];
    try {
      entries = [...Deno.readDirSync(o.dir)].map((e) => e.name);
    } catch {
      throw new NotebookRunError(`${o.dir}: not a readable folder`);
    }
    names = selectNotebooks(entries, o.only);
    if (names.length === 0) throw new NotebookRunError(`${o.dir}: no notebooks`);
  } catch (e) {
    if (!(e instanceof NotebookRunError)) throw e;
    console.error(`notebooks: ${e.message}`);
    return 2;
  }
  const tmp = await Deno.makeTempDir({ prefix: "hallo-notebooks-" });
  try {
    const version = await requireJupyter();
    await privateKernel(tmp);
    await Deno.mkdir(o.outDir, { recursive: true });
    const env = {
      JUPYTER_PATH: [tmp, Deno.env.get("JUPYTER_PATH")].filter(Boolean).join(":"),
      // Connection files in the run's folder: nothing left behind, and no need for a writable home.
      JUPYTER_RUNTIME_DIR: join(tmp, "runtime"),
      HALLO_NOTEBOOK_OUT: join(o.outDir, "work"),
    };
    const mode = Deno.env.get("HALLO_WEIGHTS")
      ? `HALLO_WEIGHTS=${Deno.env.get("HALLO_WEIGHTS")}`
      : "tiny weights";
    console.log(`notebooks: ${names.length} with nbconvert ${version}, kernel ${Deno.execPath()}, ${mode}`);
    const typeProblems = o.typecheck ? await typecheckAll(names, o.dir, tmp) : new Map();
    const results: Result[] = [];
    for (const name of names) {
      const r = await runNotebook(name, o, env, typeProblems);
      console.log(
        `notebooks: ${name} ${r.status} in ${r.seconds.toFixed(1)} s${r.attempts > 1 ? " (2 runs)" : ""}`,
      );
      results.push(r);
    }
    console.log(`\n${summaryTable(results)}`);
    const failed = results.filter((r) => r.status === "failed");
    for (const r of failed) console.log(`\n${r.name}:\n${r.details}`);
    console.log(`\nexecuted notebooks: ${o.outDir}`);
    return failed.length ? 1 : 0;
  } catch (e) {
    if (!(e instanceof NotebookRunError)) throw e;
    console.error(`notebooks: ${e.message}`);
    return 1;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
