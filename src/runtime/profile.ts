/**
 * ORT's profiler trace (a Chrome-trace JSON array written by a session created with `profilePrefix`), read
 * back as time per op class for each run: node events ("cat": "Node", "<node>_kernel_time", with the executed
 * op type in args.op_name) fall inside their run's "model_run" event.
 */
import { join } from "node:path";
import { OP_CLASSES, type OpClass, opClass } from "../onnx/flops.ts";

/** One `session.run` of a trace: its wall time and the kernel time per op class, in seconds. */
export interface ProfiledRun {
  seconds: number;
  byClass: Record<OpClass, number>;
  /** Kernel time per executed op type (after ORT's fusions), in seconds. */
  byOp: Record<string, number>;
}

interface TraceEvent {
  cat?: string;
  name?: string;
  ts?: number;
  dur?: number;
  args?: { op_name?: string };
}

/** Splits a parsed trace into its runs, in order. Throws on a trace with no run. */
export function parseProfile(trace: unknown, file = "profile"): ProfiledRun[] {
  if (!Array.isArray(trace)) throw new Error(`${file}: not an ORT profile (expected a JSON array of events)`);
  const events = trace as TraceEvent[];
  const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run")
    .sort((a, b) => a.ts! - b.ts!);
  if (runs.length === 0) throw new Error(`${file}: the profile holds no model_run event`);
  const nodes = events.filter((e) => e.cat === "Node" && e.name?.endsWith("_kernel_time"));
  return runs.map((r) => {
    const byClass = Object.fromEntries(OP_CLASSES.map((c) => [c, 0])) as Record<OpClass, number>;
    const byOp: Record<string, number> = {};
    for (const e of nodes) {
      if (e.ts! < r.ts! || e.ts! > r.ts! + r.dur!) continue;
      const op = e.args?.op_name ?? "?";
      const s = e.dur! / 1e6;
      byClass[opClass(op)] += s;
      byOp[op] = (byOp[op] ?? 0) + s;
    }
    return { seconds: r.dur! / 1e6, byClass, byOp };
  });
}

/** Reads the trace file a session wrote under `dir` (the folder of its `profilePrefix`). */
export async function readProfile(dir: string): Promise<ProfiledRun[]> {
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(".json")) files.push(e.name);
  if (files.length !== 1) throw new Error(`${dir}: expected one ORT profile, found ${files.length}`);
  const file = join(dir, files[0]);
  return parseProfile(JSON.parse(await Deno.readTextFile(file)), file);
}
