/**
 * The JSON form of interventions for the run record (`run.json`): an intervention is already plain data, so
 * writing is `JSON.stringify`; reading checks every field and names the first problem.
 */
import { InspectError } from "./errors.ts";
import { type Intervention, INTERVENTION_KINDS } from "./interventions.ts";

const FIELDS: Record<
  Intervention["kind"],
  Record<string, "int" | "ints" | "string" | "strings" | "number" | "region">
> = {
  "audio-clip": { clip: "int" },
  "audio-silence": { windows: "ints" },
  "audio-shift": { by: "int" },
  "bank-image": { image: "string", layers: "strings" },
  "bank-zero": { layers: "strings" },
  "motion-frames-clip": { clip: "int", layers: "strings" },
  "motion-frames-zero": { layers: "strings" },
  "face-embedding-image": { image: "string" },
  "face-embedding-uncond": {},
  "mask": { region: "region", fill: "number" },
};

/** Fields that may be left out (all steps, all layers, all windows). */
const OPTIONAL = new Set(["steps", "layers", "windows"]);

function fits(type: string, v: unknown): boolean {
  const int = (x: unknown) => Number.isInteger(x);
  switch (type) {
    case "int":
      return int(v);
    case "ints":
      return Array.isArray(v) && v.every((x) => int(x) && (x as number) >= 0);
    case "string":
      return typeof v === "string" && v.length > 0;
    case "strings":
      return Array.isArray(v) && v.every((x) => typeof x === "string" && x.length > 0);
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    default:
      return v === "full" || v === "face" || v === "lip";
  }
}

/** Reads one intervention from its JSON value; `label` names where it came from in errors. */
export function parseIntervention(value: unknown, label: string): Intervention {
  const fail = (p: string): never => {
    throw new InspectError(`${label}: ${p}`);
  };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail("an intervention is a JSON object");
  }
  const o = value as Record<string, unknown>;
  const kind = o.kind as Intervention["kind"];
  if (!INTERVENTION_KINDS.includes(kind)) {
    fail(`unknown intervention kind ${JSON.stringify(o.kind)} (${INTERVENTION_KINDS.join(", ")})`);
  }
  const fields: Record<string, string> = { ...FIELDS[kind], steps: "ints" };
  for (const k of Object.keys(o)) {
    if (k !== "kind" && !Object.hasOwn(fields, k)) fail(`${kind} has no field '${k}'`);
  }
  for (const [k, type] of Object.entries(fields)) {
    if (o[k] === undefined) {
      if (!OPTIONAL.has(k)) fail(`${kind} needs '${k}'`);
      continue;
    }
    if (!fits(type, o[k])) {
      fail(
        `${kind}.${k} = ${JSON.stringify(o[k])} is not ${
          type === "region" ? "full, face or lip" : `a valid ${type}`
        }`,
      );
    }
  }
  return structuredClone(o) as unknown as Intervention;
}

/** Reads a list of interventions (the run record's `interventions`). */
export function parseInterventions(value: unknown, label: string): Intervention[] {
  if (!Array.isArray(value)) throw new InspectError(`${label}: interventions are a JSON array`);
  return value.map((v, i) => parseIntervention(v, `${label}[${i}]`));
}
