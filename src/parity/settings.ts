/**
 * A case's settings, read from the case itself: numbers of its sidecar JSON, `index.json`'s configs, and
 * where upstream's exporter only wrote them in prose, the `note` of a tensor (`guidance_scale=3.5`,
 * `with 40 steps`). Nothing falls back to the values of the public reference set: a setting that is absent
 * is a one-line error naming the case, the file and what is missing; two records of one setting that
 * disagree are an error too.
 */
import type { CaseInput } from "./types.ts";

/** A setting a case needs is missing, malformed, or recorded twice with different values. */
export class CaseSettingError extends Error {
  override name = "CaseSettingError";
}

/** `<case>.json` of `input`, for messages. */
export function sidecarName(input: CaseInput): string {
  return `${String(input.meta.case ?? "case")}.json`;
}

/** Throws a CaseSettingError naming the case and its sidecar. */
export function settingError(input: CaseInput, problem: string): never {
  throw new CaseSettingError(
    `parity case '${String(input.meta.case ?? "?")}' (${sidecarName(input)}): ${problem}`,
  );
}

/** The sidecar's `meta[key]` as a finite number, or undefined when absent; an error when not a number. */
export function optionalNumber(input: CaseInput, key: string): number | undefined {
  const v = input.meta[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    settingError(input, `'${key}' must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** The sidecar's `meta[key]` as a finite number, or a clear error. */
export function metaNumber(input: CaseInput, key: string): number {
  const v = optionalNumber(input, key);
  if (v === undefined) settingError(input, `'${key}' is missing`);
  return v;
}

/** The sidecar's `meta[key]` as a positive integer, or a clear error. */
export function metaCount(input: CaseInput, key: string): number {
  const v = metaNumber(input, key);
  if (!Number.isInteger(v) || v < 1) settingError(input, `'${key}' must be a positive integer, got ${v}`);
  return v;
}

/** The sidecar's `meta[key]` as a list of `length` finite numbers, or undefined when absent. */
export function optionalNumbers(input: CaseInput, key: string, length: number): number[] | undefined {
  const v = input.meta[key];
  if (v === undefined || v === null) return undefined;
  if (
    !Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === "number" && Number.isFinite(x))
  ) {
    settingError(input, `'${key}' must be a list of ${length} numbers, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/** `index.json`'s `common.configs[name]` as an object, or a clear error. */
export function indexConfig<C>(input: CaseInput, name: string): C {
  const cfg = input.index.common?.configs?.[name];
  if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg)) {
    settingError(input, `index.json has no object common.configs.${name}`);
  }
  return cfg as C;
}

/** The `note` (or `notes`) text the sidecar gives tensor `tensor`; '' when there is none. */
export function tensorNote(input: CaseInput, tensor: string): string {
  const t = (input.meta.tensors as Record<string, Record<string, unknown>> | undefined)?.[tensor];
  return [t?.note, t?.notes].filter((n) => typeof n === "string").join(" ");
}

const NUMBER = String.raw`[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?`;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Every number a note writes after `key` as `key=value` or `key: value` (case-insensitive, `_` or a space
 * between words), e.g. `guidance_scale=3.5`.
 */
export function noteValues(note: string, key: string): number[] {
  const k = key.split(/[_ ]/).map(escape).join("[_ ]");
  const re = new RegExp(String.raw`(?<![\w.])${k}\s*[=:]\s*(${NUMBER})(?![\w.])`, "gi");
  return [...note.matchAll(re)].map((m) => Number(m[1]));
}

/** All values in `found` agree (one setting recorded in several places), or a clear error naming `what`. */
function single(
  input: CaseInput,
  what: string,
  found: { where: string; value: number }[],
): number | undefined {
  const distinct = [...new Set(found.map((f) => f.value))];
  if (distinct.length > 1) {
    settingError(
      input,
      `${what} is recorded with different values: ${found.map((f) => `${f.where} ${f.value}`).join(", ")}`,
    );
  }
  return distinct[0];
}

/**
 * The classifier-free guidance scale of a case: the sidecar's `guidance_scale` number, or
 * `guidance_scale=<number>` in the note of `tensor` (how upstream's exporter records it for
 * `noise_pred_guided`). Absent or contradictory records are a clear error.
 */
export function guidanceScale(input: CaseInput, tensor = "noise_pred_guided"): number {
  const found: { where: string; value: number }[] = [];
  const top = optionalNumber(input, "guidance_scale");
  if (top !== undefined) found.push({ where: "'guidance_scale'", value: top });
  for (const v of noteValues(tensorNote(input, tensor), "guidance_scale")) {
    found.push({ where: `the note of tensor '${tensor}'`, value: v });
  }
  const g = single(input, "the guidance scale", found);
  if (g === undefined) {
    settingError(
      input,
      `no guidance scale: neither a 'guidance_scale' number nor 'guidance_scale=<number>' in the note of tensor '${tensor}'`,
    );
  }
  return g;
}

/**
 * The number of inference steps a scheduler `step()` result was computed with: `with <N> steps` in the note
 * of `tensor` (how upstream's exporter records it), or `num_inference_steps=<N>` there.
 */
export function noteSteps(input: CaseInput, tensor: string): number {
  const note = tensorNote(input, tensor);
  const found = [
    ...[...note.matchAll(/\bwith\s+(\d+)\s+(?:inference\s+)?steps\b/gi)].map((m) => Number(m[1])),
    ...noteValues(note, "num_inference_steps"),
  ].map((value) => ({ where: `the note of tensor '${tensor}'`, value }));
  const n = single(input, `the step count of '${tensor}'`, found);
  if (n === undefined) {
    settingError(
      input,
      `the note of tensor '${tensor}' does not say how many steps ('with <N> steps') it was computed with`,
    );
  }
  if (!Number.isInteger(n) || n < 1) {
    settingError(input, `tensor '${tensor}': ${n} steps is not a positive integer`);
  }
  return n;
}

/**
 * Checks that a setting the case records in its sidecar (`meta[key]`, when present) equals the value the
 * case's tensors imply; an error naming both otherwise.
 */
export function agrees(
  input: CaseInput,
  key: string,
  implied: number | readonly number[],
  from: string,
): void {
  const v = input.meta[key];
  if (v === undefined || v === null) return;
  const same = Array.isArray(implied)
    ? Array.isArray(v) && v.length === implied.length &&
      v.every((x, i) => Math.fround(x) === Math.fround(implied[i]))
    : typeof v === "number" && Math.fround(v) === Math.fround(implied as number);
  if (!same) {
    settingError(input, `'${key}' is ${JSON.stringify(v)} but ${from} gives ${JSON.stringify(implied)}`);
  }
}

/** One entry of a case's `pairing`: bank entry `i` is written by block `writer` and read by block `reader`. */
export interface PairingEntry {
  i: number;
  writer: string;
  reader: string;
}

/** The sidecar's `pairing` list, checked, or a clear error. */
export function pairing(input: CaseInput): PairingEntry[] {
  const p = input.meta.pairing;
  if (!Array.isArray(p) || p.length === 0) {
    settingError(input, `'pairing' (the bank entries' writer and reader blocks) is missing`);
  }
  const seen = new Set<number>();
  return p.map((e, k) => {
    const ok = typeof e === "object" && e !== null && Number.isInteger(e.i) && e.i >= 0 &&
      typeof e.writer === "string" && typeof e.reader === "string";
    if (!ok) settingError(input, `pairing[${k}] must be {i, writer, reader}, got ${JSON.stringify(e)}`);
    if (seen.has(e.i)) settingError(input, `pairing lists bank entry ${e.i} twice`);
    seen.add(e.i);
    return { i: e.i, writer: e.writer, reader: e.reader };
  });
}
