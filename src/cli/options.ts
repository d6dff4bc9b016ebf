/** Validation of CLI values, before any heavy work: one-line errors naming the option and the problem. */
import { dirname, resolve } from "node:path";
import { type Device, parseDevice } from "../runtime/device.ts";
import type { CfgBatch } from "../stages/generate/models.ts";
import { AudioDecodeError, decodeAudioChunks } from "../stages/audio/decode.ts";

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What `--x` must be, as errors say it: "an integer >= 1", "a number from 0 to 10". */
function allowed(o: { min?: number; max?: number; int?: boolean }): string {
  const what = o.int ? "an integer" : "a number";
  if (o.min !== undefined && o.max !== undefined) return `${what} from ${o.min} to ${o.max}`;
  if (o.min !== undefined) return `${what} >= ${o.min}`;
  if (o.max !== undefined) return `${what} <= ${o.max}`;
  return what;
}

/**
 * A numeric option (`undefined`: the default). Errors name the option, the allowed range and the value:
 * `--steps must be >= 1, got -1`, `--seed must be from 0 to 9007199254740991, got 1e30`.
 */
export function num(
  name: string,
  v: string | undefined,
  dflt: number,
  o: { min?: number; max?: number; int?: boolean } = {},
): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x)) {
    throw new UsageError(`--${name} must be a number, got '${v}' (allowed: ${allowed(o)})`);
  }
  if (o.int && !Number.isInteger(x)) throw new UsageError(`--${name} must be ${allowed(o)}, got '${v}'`);
  const low = o.min !== undefined && x < o.min;
  const high = o.max !== undefined && x > o.max;
  if (low || high) {
    const range = o.min !== undefined && o.max !== undefined
      ? `from ${o.min} to ${o.max}`
      : low
      ? `>= ${o.min}`
      : `<= ${o.max}`;
    throw new UsageError(`--${name} must be ${range}${o.int ? " (an integer)" : ""}, got ${v}`);
  }
  return x;
}

/**
 * Largest seed: `torch.manual_seed` takes any 64-bit value, but a seed travels here as a JS number, exact up to
 * 2^53 - 1; a larger one would silently become another seed.
 */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/** `--seed`: an integer from 0 to MAX_SEED (default 42). */
export function seedOption(v: string | undefined): number {
  return num("seed", v, 42, { min: 0, max: MAX_SEED, int: true });
}

/** A value that is a negative number (or a list starting with one), which parseArgs takes for an option. */
const NEGATIVE = /^-(\d|\.\d|inf|nan)/i;

/**
 * Rewrites `--x -1` to `--x=-1` for options declared as taking a value, so negative numbers reach the range
 * checks in both spellings (node:util parseArgs calls the space form "ambiguous" and stops).
 */
export function joinNegativeValues(
  args: readonly string[],
  options: Readonly<Record<string, { type: "string" | "boolean"; short?: string }>>,
): string[] {
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(options)) {
    if (spec.type !== "string") continue;
    takesValue.add(`--${name}`);
    if (spec.short) takesValue.add(`-${spec.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    if (takesValue.has(a) && next !== undefined && NEGATIVE.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * Decodes the start of `path` (the first 4096 samples at 16 kHz mono) so a file that is not audio, has no
 * audio track or holds NaN/inf samples there fails in a fraction of a second, before any image work.
 */
export async function checkAudioFile(name: string, path: string): Promise<void> {
  try {
    for await (const _ of decodeAudioChunks(path, { sampleRate: 16000, channels: 1, chunkFrames: 4096 })) {
      break;
    }
  } catch (e) {
    if (e instanceof AudioDecodeError) throw new UsageError(`--${name} ${e.message}`);
    throw e;
  }
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
  "cfg-batch": { type: "string" },
  "no-separate": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** `--cfg-batch joint|halves`; undefined when absent (the cost model picks). */
export function cfgBatchOption(v: string | undefined): CfgBatch | undefined {
  if (v === undefined || v === "joint" || v === "halves") return v;
  throw new UsageError(`--cfg-batch must be joint or halves, got '${v}'`);
}

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
