/** Validation of CLI values, before any heavy work: one-line errors naming the option and the problem. */
import { dirname, resolve } from "node:path";
import { type Device, parseDevice } from "../runtime/device.ts";

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export function num(
  name: string,
  v: string | undefined,
  dflt: number,
  o: { min?: number; int?: boolean } = {},
): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x)) throw new UsageError(`--${name} must be a number, got '${v}'`);
  if (o.int && !Number.isInteger(x)) throw new UsageError(`--${name} must be an integer, got '${v}'`);
  if (o.min !== undefined && x < o.min) throw new UsageError(`--${name} must be >= ${o.min}, got ${v}`);
  return x;
}

/** A comma-separated list of numbers (sweeps). */
export function numList(
  name: string,
  v: string | undefined,
  dflt: number,
  o: { min?: number } = {},
): number[] {
  if (v === undefined) return [dflt];
  return v.split(",").map((s) => num(name, s, dflt, o));
}

/** An input file that exists and can be read. */
export async function readableFile(name: string, path: string | undefined): Promise<string> {
  if (!path) throw new UsageError(`--${name} is required`);
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) throw new UsageError(`--${name} ${path}: not a file`);
    const f = await Deno.open(path);
    f.close();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(
      `--${name} ${path}: cannot read (${e instanceof Error ? e.message.split(":")[0] : e})`,
    );
  }
  return resolve(path);
}

/** An output path whose folder exists (or can be made) and can be written. */
export async function writablePath(name: string, path: string | undefined): Promise<string> {
  if (!path) throw new UsageError(`--${name} is required`);
  const abs = resolve(path);
  try {
    if ((await Deno.stat(abs)).isDirectory) throw new UsageError(`--${name} ${path}: is a directory`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
  const dir = dirname(abs);
  const probe = `${abs}.write-test-${Deno.pid}`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array());
    await Deno.remove(probe);
  } catch (e) {
    throw new UsageError(
      `--${name} ${path}: cannot be written (${e instanceof Error ? e.message.split(":")[0] : e})`,
    );
  }
  return abs;
}

/** Options `animate` and `sweep` share (node:util parseArgs spec); sweep reads the numbers as lists. */
export const GENERATION_OPTIONS = {
  image: { type: "string" },
  audio: { type: "string" },
  out: { type: "string" },
  weights: { type: "string" },
  steps: { type: "string" },
  cfg: { type: "string" },
  "pose-weight": { type: "string" },
  "face-weight": { type: "string" },
  "lip-weight": { type: "string" },
  "face-expand-ratio": { type: "string" },
  seed: { type: "string" },
  size: { type: "string" },
  device: { type: "string" },
  threads: { type: "string" },
  "no-separate": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** The options `animate` and `sweep` validate alike: video size, face expansion, threads, device. */
export function runOptions(v: {
  size?: string;
  "face-expand-ratio"?: string;
  threads?: string;
  device?: string;
}): { size: number; faceExpandRatio: number; threads?: number; device: Device } {
  const size = num("size", v.size, 512, { min: 64, int: true });
  if (size % 64 !== 0) throw new UsageError(`--size must be a multiple of 64, got ${size}`);
  const faceExpandRatio = num("face-expand-ratio", v["face-expand-ratio"], 1.2, { min: 0.01 });
  const threads = v.threads === undefined ? undefined : num("threads", v.threads, 0, { min: 1, int: true });
  try {
    return { size, faceExpandRatio, threads, device: parseDevice(v.device ?? "cpu") };
  } catch (e) {
    throw new UsageError(`--device: ${(e as Error).message}`);
  }
}
