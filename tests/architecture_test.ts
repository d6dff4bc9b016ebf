/**
 * The layer rule of README's layout section, checked on the import graph of src/. Layers, lowest first:
 * graphs (onnx, models) <- weights/runtime (weights, runtime, sampling, tensor.ts, util) <- stages (stages,
 * tiny; inside it the input stages image/audio/video/networks <- generate) <- views/report/cli (viz, report,
 * cli, parity). An import may point to its own layer or a lower one, never up; the graph has no cycle; and views
 * only draw: src/viz imports nothing from src/stages/generate (which runs the networks and the sampler).
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SRC = join(ROOT, "src");

/** Rank of each part of src/ (the longest matching prefix wins) and its layer's name. */
const LAYERS: [prefix: string, rank: number, layer: string][] = [
  ["onnx", 0, "graphs"],
  ["models", 0, "graphs"],
  ["tensor.ts", 1, "weights/runtime"],
  ["util", 1, "weights/runtime"],
  ["weights", 1, "weights/runtime"],
  ["runtime", 1, "weights/runtime"],
  ["sampling", 1, "weights/runtime"],
  ["tiny", 2, "stages"],
  ["stages", 2, "stages"],
  ["stages/generate", 2.5, "stages (generation, above the input stages)"],
  ["viz", 3, "views/report/cli"],
  ["report", 3, "views/report/cli"],
  ["cli", 3, "views/report/cli"],
  ["parity", 3, "views/report/cli"],
];

/** Imports the ranks allow but the rule does not: [from, to, why]. */
const FORBIDDEN: [from: string, to: string, why: string][] = [
  ["viz", "stages/generate", "views only draw; running the pipeline is a stage"],
];

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...tsFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/** Relative specifiers of `import ... from`, `export ... from`, `import "x"` and `import("x")`. */
function importSpecifiers(source: string): string[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specs: string[] = [];
  const patterns = [
    /(?:^|[;\s])(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/g,
    /(?:^|[;\s])import\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) specs.push(m[1]);
  return specs.filter((s) => s.startsWith("."));
}

const within = (path: string, prefix: string) => path === prefix || path.startsWith(prefix + "/");

function layerOf(file: string): { rank: number; layer: string } {
  const path = relative(SRC, file);
  const hits = LAYERS.filter(([p]) => within(path, p)).sort((a, b) => b[0].length - a[0].length);
  if (hits.length === 0) throw new Error(`src/${path}: no layer assigned; add it to LAYERS and README`);
  return { rank: hits[0][1], layer: hits[0][2] };
}

function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of tsFiles(SRC)) {
    const deps = importSpecifiers(Deno.readTextFileSync(file))
      .map((s) => resolve(dirname(file), s))
      .filter((p) => p.startsWith(SRC + "/"));
    graph.set(file, [...new Set(deps)]);
  }
  return graph;
}

function findCycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string) => {
    state.set(n, 1);
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      const s = state.get(d);
      if (s === 1) cycles.push([...stack.slice(stack.indexOf(d)), d]);
      else if (s === undefined) visit(d);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return cycles;
}

const rel = (p: string) => relative(ROOT, p);

Deno.test("importSpecifiers reads import, export-from, side-effect and dynamic imports but not comments", () => {
  const src = [
    `import { a } from "./a.ts";`,
    `import type { B } from "../b.ts";`,
    `export { c } from "./c.ts";`,
    `export * as d from "./d.ts";`,
    `import "./e.ts";`,
    `const f = await import("./f.ts");`,
    `import {\n  g,\n  h,\n} from "./gh.ts";`,
    `// import { x } from "./commented.ts";`,
    `/* export { y } from "./block.ts"; */`,
    `import sharp from "sharp";`,
  ].join("\n");
  assert.deepEqual(importSpecifiers(src).sort(), [
    "../b.ts",
    "./a.ts",
    "./c.ts",
    "./d.ts",
    "./e.ts",
    "./f.ts",
    "./gh.ts",
  ]);
});

Deno.test("every import in src/ points to its own layer or a lower one", () => {
  const bad: string[] = [];
  for (const [file, deps] of importGraph()) {
    const from = layerOf(file);
    for (const dep of deps) {
      const to = layerOf(dep);
      if (to.rank > from.rank) bad.push(`${rel(file)} (${from.layer}) -> ${rel(dep)} (${to.layer})`);
      for (const [f, t, why] of FORBIDDEN) {
        if (within(relative(SRC, file), f) && within(relative(SRC, dep), t)) {
          bad.push(`${rel(file)} -> ${rel(dep)} (${why})`);
        }
      }
    }
  }
  assert.deepEqual(bad, [], `imports against the layer rule:\n${bad.join("\n")}`);
});

Deno.test("src/ has no import cycle", () => {
  const cycles = findCycles(importGraph()).map((c) => c.map(rel).join(" -> "));
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.join("\n")}`);
});

Deno.test("the layer rule covers every file of src/", () => {
  for (const file of importGraph().keys()) layerOf(file);
});
