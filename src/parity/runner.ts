/** Runs parity cases against a reference directory and produces one row per compared tensor. */
import { compare } from "./compare.ts";
import { comparedTensors, readCase, readIndex } from "./reference.ts";
import type { CaseNetworkOptions, ParityCase } from "./types.ts";

export interface Row {
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
  onRow?: (r: Row) => void;
  /** Device and precision of every case's networks (default: CPU, float32). */
  network?: CaseNetworkOptions;
}

const blank = { rel_l2: null, max_abs: null, build_s: null, session_s: null, run_s: null };

/** Runs every case of `dir` that `registry` knows (or `only`), returning all rows. */
export async function runParity(
  dir: string,
  registry: readonly ParityCase[],
  o: RunOptions = {},
): Promise<Row[]> {
  const index = readIndex(dir);
  const names = o.only?.length ? [...o.only] : index.cases;
  const rows: Row[] = [];
  const emit = (r: Row) => {
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
          pass: e.rel_l2 <= (impl.tolerances?.[t] ?? impl.tolerance),
        });
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      emit({ case: name, tensor: "-", ...blank, pass: false, note: `error: ${msg.split("\n")[0]}` });
    }
  }
  return rows;
}
