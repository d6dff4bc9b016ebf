/** `--patch`: interventions on the command line, each a JSON object, an array of them, or `@file.json`. */
import type { Intervention } from "../stages/inspect/interventions.ts";
import { parseInterventions } from "../stages/inspect/interventions_json.ts";
import { UsageError } from "./options.ts";

/** Every `--patch` value as one list, checked field by field (a one-line UsageError naming the problem). */
export async function patchOption(values: readonly string[] | undefined): Promise<Intervention[]> {
  const out: Intervention[] = [];
  for (const v of values ?? []) {
    let text = v;
    if (v.startsWith("@")) {
      try {
        text = await Deno.readTextFile(v.slice(1));
      } catch (e) {
        throw new UsageError(
          `--patch ${v}: cannot read (${e instanceof Error ? e.message.split(":")[0] : e})`,
        );
      }
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UsageError(`--patch ${v}: not JSON (e.g. '{"kind":"audio-silence","steps":[3]}')`);
    }
    try {
      out.push(...parseInterventions(Array.isArray(json) ? json : [json], `--patch ${v}`));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return out;
}
