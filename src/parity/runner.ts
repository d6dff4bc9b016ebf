/**
 * Runs parity cases against a reference directory and produces one row per compared tensor. The directory
 * is only read: compiled graphs, which otherwise land beside the checkpoints in `tiny_models/.hallo-cache/`,
 * go to a temp folder of the run (unless HALLO_GRAPH_CACHE names a place).
 */
import { compare } from "./compare.ts";
import { comparedTensors, readCase, readIndex, type ReferenceIndex } from "./reference.ts";
import type { CaseNetworkOptions, ParityCase } from "./types.ts";

export interface ParityRow {
  case: string;
  tensor: string;
  rel_l2: number | null;
  max_abs: number | null;
  pass: boolean;
  build_s: number | null;
  session_s: number | null;
  run_s: number | null;
  /** `not implemented`, `missing`, or an error message. */
  note?: string;
}

export interface RunOptions {
  /** Only these cases (a named case that cannot run is a failure). */
  only?: readonly string[];
  /** Count `not implemented` cases as failures. */
  strict?: boolean;
  onRow?: (r: ParityRow) => void;
  /** Device and precision of every case's networks (default: CPU, float32). */
  network?: CaseNetworkOptions;
}

const blank = { rel_l2: null, max_abs: null, build_s: null, session_s: null, run_s: null };

const GRAPH_CACHE_ENV = "HALLO_GRAPH_CACHE";
let runCache: { dir: string; users: number } | undefined;

/**
 * Runs `fn` with the graph cache (src/runtime/cache.ts) in a temp folder removed afterwards, unless the user
 * set HALLO_GRAPH_CACHE. Overlapping runs in one process share the folder; the last one out removes it.
 */
async function withRunGraphCache<T>(fn: () => Promise<T>): Promise<T> {
  if (!runCache) {
    if (Deno.env.get(GRAPH_CACHE_ENV) !== undefined) return await fn();
    const dir = Deno.makeTempDirSync({ prefix: "hallo-parity-graphs-" });
    Deno.env.set(GRAPH_CACHE_ENV, dir);
    runCache = { dir, users: 0 };
  }
  const held = runCache;
  held.users++;
  try {
    return await fn();
  } finally {
    if (--held.users === 0) {
      Deno.env.delete(GRAPH_CACHE_ENV);
      Deno.removeSync(held.dir, { recursive: true });
      runCache = undefined;
    }
  }
}

/**
 * Runs every case of `dir` that `registry` knows (or `only`), returning all rows. Writes nothing into `dir`.
 */
export async function runParity(
  dir: string,
  registry: readonly ParityCase[],
  o: RunOptions = {},
): Promise<ParityRow[]> {
  const index = readIndex(dir);
  return await withRunGraphCache(() => runCases(dir, index, registry, o));
}

async function runCases(
  dir: string,
  index: ReferenceIndex,
  registry: readonly ParityCase[],
  o: RunOptions,
): Promise<ParityRow[]> {
  const names = o.only?.length ? [...o.only] : index.cases;
  const rows: ParityRow[] = [];
  const emit = (r: ParityRow) => {
    rows.push(r);
    o.onRow?.(r);
  };
  for (const name of names) {
    const impl = registry.find((c) => c.name === name);
    const named = !!o.only?.length;
    if (!index.cases.includes(name)) {
      emit({ case: name, tensor: "-", ...blank, pass: false, note: "not in this reference directory" });
      continue;
    }
    if (!impl) {
      emit({ case: name, tensor: "-", ...blank, pass: !(o.strict || named), note: "not implemented" });
      continue;
    }
    try {
      const input = { ...readCase(dir, index, name), network: o.network };
      const res = await impl.run(input);
      const times = { build_s: res.build_s, session_s: res.session_s, run_s: res.run_s };
      for (const t of comparedTensors(input.meta)) {
        if (impl.skip?.includes(t)) continue;
        const ref = input.tensors.get(t);
        const got = res.outputs[t];
        if (!ref) {
          emit({
            case: name,
            tensor: t,
            ...blank,
            ...times,
            pass: false,
            note: "missing from the reference file",
          });
          continue;
        }
        if (!got) {
          emit({ case: name, tensor: t, ...blank, ...times, pass: false, note: "missing" });
          continue;
        }
        const e = compare(got instanceof Float32Array ? got : got.data, ref.data, `${name}/${t}`);
        emit({
          case: name,
          tensor: t,
          ...e,
          ...times,
          pass: e.rel_l2 <= (impl.tolerances?.[t] ?? impl.toleranceOf?.(t) ?? impl.tolerance),
        });
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      emit({ case: name, tensor: "-", ...blank, pass: false, note: `error: ${msg.split("\n")[0]}` });
    }
  }
  return rows;
}
