/**
 * The notebooks and their runner. The checker on synthetic notebooks (errors, missing mime types, too few
 * displays, bad metadata), type errors and nbconvert failures traced back to their cell; the committed notebooks
 * (no outputs, Deno kernel, an expectation on every code cell after the setup); then Jupyter for real: a
 * notebook with a type error, one with a failing cell and one missing an expected output each fail `deno task
 * notebooks` (the last after a second run), and every notebook runs on the tiny weights with every expected
 * display output. Needs Jupyter (nbconvert, nbclient, ipykernel): without it these tests fail, they never skip.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  cellExpectation,
  checkNotebook,
  failureSummary,
  type Notebook,
  notebookModule,
  NotebookRunError,
  selectNotebooks,
  typeErrors,
} from "../scripts/notebooks.ts";
import { tinyDirForChild } from "./helpers/tiny_temp.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NOTEBOOKS = join(ROOT, "notebooks");
const NAMES = [
  "01_image.ipynb",
  "02_audio.ipynb",
  "03_reference_bank.ipynb",
  "04_denoising_steps.ipynb",
  "05_ablation.ipynb",
  "06_which_audio_drives_the_mouth.ipynb",
  "07_what_do_the_weights_do.ipynb",
  "08_does_the_identity_drift.ipynb",
  "09_where_do_seams_come_from.ipynb",
  "10_does_loudness_change_the_result.ipynb",
];
const PLOTLY = "application/vnd.plotly.v1+json";

type Cell = Notebook["cells"][number];
const code = (
  source: string,
  hallo?: unknown,
  outputs: unknown[] = [],
): Cell => ({ cell_type: "code", id: "c", source, metadata: hallo ? { hallo } : {}, outputs } as Cell);
const shown = (...mimes: string[]) => ({
  output_type: "display_data",
  data: Object.fromEntries(mimes.map((m) => [m, "x"])),
});

Deno.test("checkNotebook: errors, missing mime types and too few displays, per cell", () => {
  const nb: Notebook = {
    cells: [
      { cell_type: "markdown", source: "# title" },
      code("setup"),
      code("fig", { expect: [PLOTLY, "image/png"] }, [shown(PLOTLY, "image/png")]),
      code("half", { expect: [PLOTLY, "image/png"] }, [shown("image/png")]),
      code("two notes", { expect: ["text/markdown"], displays: 2 }, [shown("text/markdown")]),
      code("boom", undefined, [{ output_type: "error", ename: "TypeError", evalue: "x is undefined" }]),
      code("result", { expect: ["text/plain"] }, [{
        output_type: "execute_result",
        data: { "text/plain": "1" },
      }]),
    ],
  };
  assert.deepEqual(checkNotebook(nb, "t.ipynb"), [
    { kind: "missing", cell: "cell 3 (c)", message: `no ${PLOTLY}` },
    { kind: "missing", cell: "cell 4 (c)", message: "1 of 2 display outputs" },
    { kind: "error", cell: "cell 5 (c)", message: "TypeError: x is undefined" },
  ]);
  // A complete notebook passes.
  assert.deepEqual(checkNotebook({ cells: [nb.cells[2], nb.cells[6]] }, "t.ipynb"), []);
  // Bad metadata is a one-line error naming the notebook and the cell.
  for (const bad of [{ expect: "image/png" }, { expect: [1] }, { expect: [], displays: 0 }, "x"]) {
    assert.throws(() => cellExpectation(code("x", bad), "t.ipynb cell 1"), (e: Error) => {
      assert.ok(e instanceof NotebookRunError);
      assert.match(e.message, /^t\.ipynb cell 1: metadata\.hallo\./);
      return true;
    });
  }
  assert.deepEqual(cellExpectation(code("x", { expect: ["a/b"] }), "w"), { expect: ["a/b"], displays: 1 });
});

Deno.test("notebookModule and typeErrors: relative imports made absolute, diagnostics traced to their cell", () => {
  const nb: Notebook = {
    cells: [
      code('import { f32 } from "../mod.ts";\nconst a = 1;'),
      { cell_type: "markdown", source: "text" },
      { ...code("const b: number = 'x';\nconst c = 2;"), id: "second" },
    ],
  };
  const mod = notebookModule(nb, "/p/notebooks");
  assert.match(mod.code, /from "file:\/\/\/p\/mod\.ts";/);
  assert.ok(mod.code.endsWith("export {};\n"));
  assert.deepEqual(mod.cells, [{ line: 1, cell: "cell 0 (c)" }, { line: 4, cell: "cell 2 (second)" }]);
  const out = "TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.\nconst b: number = 'x';\n" +
    "      ^\n    at file:///tmp/x/nb.ts:4:7\n\nerror: Type checking failed.";
  assert.deepEqual(typeErrors(out, mod), [
    "cell 2 (second) line 1: TS2322 Type 'string' is not assignable to type 'number'.",
  ]);
  // One check of several modules: each notebook gets only the diagnostics located in its own file.
  const two = out.replace("error: Type checking failed.", "") +
    "TS2304 [ERROR]: Cannot find name 'q'.\nq;\n^\n    at file:///tmp/x/other.ts:1:1\n";
  assert.deepEqual(typeErrors(two, mod, "/tmp/x/nb.ts"), typeErrors(out, mod));
  assert.deepEqual(typeErrors(two, mod, "/tmp/x/other.ts"), [
    "cell 0 (c) line 1: TS2304 Cannot find name 'q'.",
  ]);
  assert.deepEqual(typeErrors(two, mod, "/tmp/x/third.ts"), []);
});

Deno.test("failureSummary: the failing cell found by the source nbclient quotes", () => {
  const nb: Notebook = { cells: [code("setup"), { ...code("throw new RangeError('no');"), id: "bad" }] };
  const log = "[NbConvertApp] Executing\nTraceback (most recent call last):\n  File x\n" +
    "nbclient.exceptions.CellExecutionError: An error occurred while executing the following cell:\n" +
    "------------------\nthrow new RangeError('no');\n------------------\n\n\x1b[31mRangeError: no\x1b[0m\n" +
    "    at <anonymous>:1:7\n";
  assert.equal(failureSummary(log, nb), "cell 1 (bad): RangeError: no\n    at <anonymous>:1:7");
  assert.equal(failureSummary("a\nb\nkernel died\n"), "a\nb\nkernel died");
});

Deno.test("selectNotebooks: sorted, by prefix, unknown prefixes named", () => {
  const names = ["b.ipynb", "a.ipynb", "README.md", "a_two.ipynb"];
  assert.deepEqual(selectNotebooks(names), ["a.ipynb", "a_two.ipynb", "b.ipynb"]);
  assert.deepEqual(selectNotebooks(names, ["b"]), ["b.ipynb"]);
  assert.throws(() => selectNotebooks(names, ["b", "zz"]), /no notebook matches zz/);
});

Deno.test("committed notebooks: no outputs, Deno kernel, every code cell after the setup states its outputs", () => {
  const names = [...Deno.readDirSync(NOTEBOOKS)].map((e) => e.name).filter((n) => n.endsWith(".ipynb"))
    .sort();
  assert.deepEqual(names, NAMES);
  for (const name of names) {
    const nb = JSON.parse(Deno.readTextFileSync(join(NOTEBOOKS, name)));
    assert.equal(nb.metadata.kernelspec.name, "deno", name);
    const cells = (nb.cells as Cell[]).filter((c) => c.cell_type === "code");
    assert.ok(cells.length >= 4, name);
    cells.forEach((c, i) => {
      const src = Array.isArray(c.source) ? c.source.join("") : c.source ?? "";
      const where = `${name} ${c.id}`;
      assert.deepEqual(c.outputs, [], `${where}: committed with outputs`);
      const want = cellExpectation(c, where);
      if (i === 0) {
        // The first cell may lose its outputs (the kernel's first messages can precede Jupyter's subscription).
        assert.equal(want, undefined, `${where}: the setup cell should expect nothing`);
        assert.match(src, /from "\.\.\/mod\.ts"/, where);
        return;
      }
      assert.ok(want, `${where}: no metadata.hallo.expect`);
      if (/await show\(/.test(src)) assert.deepEqual(want.expect, [PLOTLY, "image/png"], where);
      // Outputs only through awaited displays: no console output or last-expression value to lose.
      assert.doesNotMatch(src, /console\.(log|info|warn)/, where);
    });
  }
});

/** Runs `deno task notebooks` with the tiny weights (HALLO_WEIGHTS removed); returns exit code and output. */
/** The notebooks' tiny random set, in a temp folder of this test module. */
const TINY_DIR = tinyDirForChild();

async function runTask(args: string[]): Promise<{ code: number; out: string }> {
  const env = Deno.env.toObject();
  delete env.HALLO_WEIGHTS;
  env.HALLO_TINY_DIR = TINY_DIR;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "notebooks", ...args],
    cwd: ROOT,
    clearEnv: true,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

function writeNotebook(path: string, cells: Cell[]): void {
  const nb = {
    cells: cells.map((c, i) => ({ ...c, id: `k${i}`, execution_count: null })),
    metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
    nbformat: 4,
    nbformat_minor: 5,
  };
  Deno.writeTextFileSync(path, JSON.stringify(nb));
}

Deno.test("deno task notebooks: a type error, a failing cell and a missing output each fail the run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo-nb-bad-" });
  try {
    const nbs = join(dir, "nbs");
    Deno.mkdirSync(nbs);
    const note =
      'const note = async (s: string) => { await Deno.jupyter.display({ "text/markdown": s }, { raw: true }); ' +
      "await new Promise((r) => setTimeout(r, 50)); };";
    writeNotebook(join(nbs, "a_type.ipynb"), [code("const n: number = 'text';")]);
    writeNotebook(join(nbs, "b_error.ipynb"), [
      code(note),
      code('throw new RangeError("deliberate");'),
      code('await note("never");', { expect: ["text/markdown"] }),
    ]);
    writeNotebook(join(nbs, "c_missing.ipynb"), [
      code(note),
      code('await note("only markdown");', { expect: ["image/png"] }),
    ]);
    const r = await runTask(["--dir", nbs, "--out-dir", join(dir, "out"), "--timeout", "60"]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /a_type\.ipynb\s+failed\s+\S+\s+0\s+type check: cell 0 \(k0\) line 1: TS2322/);
    assert.match(r.out, /b_error\.ipynb\s+failed\s+\S+\s+1\s+cell 1 \(k1\): RangeError: deliberate/);
    // A missing output gets a second run (the kernel's idle race), then fails naming the cell.
    assert.match(r.out, /c_missing\.ipynb\s+failed\s+\S+\s+2\s+cell 1 \(k1\): no image\/png/);
    // Sources untouched; executed copies and logs in the output folder.
    const src = JSON.parse(Deno.readTextFileSync(join(nbs, "c_missing.ipynb")));
    assert.deepEqual(src.cells[1].outputs, []);
    const executed = JSON.parse(Deno.readTextFileSync(join(dir, "out", "c_missing.ipynb")));
    assert.equal([executed.cells[1].outputs[0].data["text/markdown"]].flat().join(""), "only markdown");
    assert.ok(Deno.statSync(join(dir, "out", "b_error.log")).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task notebooks: every notebook runs on the tiny weights with every expected display output", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo-nb-" });
  try {
    const r = await runTask(["--out-dir", dir]);
    assert.equal(r.code, 0, r.out);
    for (const n of NAMES) assert.match(r.out, new RegExp(`${n.replace(".", "\\.")}\\s+passed`));
    // Figures per notebook: portrait; audio; bank; steps, attention, clip frames; sweep grid; audio attribution
    // and occlusion; weights x regions; identity drift and reference pixels read; seams and motion attention;
    // loudness.
    const figures: Record<string, number> = {
      "01_image.ipynb": 1,
      "02_audio.ipynb": 1,
      "03_reference_bank.ipynb": 1,
      "04_denoising_steps.ipynb": 3,
      "05_ablation.ipynb": 1,
      "06_which_audio_drives_the_mouth.ipynb": 2,
      "07_what_do_the_weights_do.ipynb": 1,
      "08_does_the_identity_drift.ipynb": 2,
      "09_where_do_seams_come_from.ipynb": 2,
      "10_does_loudness_change_the_result.ipynb": 1,
    };
    for (const name of NAMES) {
      const nb = JSON.parse(Deno.readTextFileSync(join(dir, name)));
      assert.deepEqual(checkNotebook(nb, name), [], name);
      const outs = (nb.cells as Cell[]).flatMap((c) =>
        (c.outputs ?? []) as { output_type: string; data?: Record<string, unknown> }[]
      );
      const figs = outs.filter((o) => o.data?.[PLOTLY]);
      assert.equal(figs.length, figures[name] ?? "no figure count recorded for this notebook", name);
      for (const f of figs) {
        const plot = f.data![PLOTLY] as { data: unknown[]; layout: Record<string, unknown> };
        assert.ok(plot.data.length > 0 && plot.layout.width, `${name}: empty Plotly figure`);
        assert.match(String(f.data!["image/png"]), /^iVBORw0KGgo/, `${name}: PNG fallback`);
        // plotly.js itself is never inlined.
        assert.ok(!JSON.stringify(f.data).includes("Plotly.newPlot"), name);
      }
      const md = outs.map((o) => String(o.data?.["text/markdown"] ?? "")).join("\n");
      assert.match(md, /TINY RANDOM WEIGHTS/, `${name}: the tiny-weights notice`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
