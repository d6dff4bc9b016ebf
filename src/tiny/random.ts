/**
 * Deterministic tiny random weights in Hallo's `pretrained_models/` layout, so the demo and tests run on a
 * fresh clone without the real (multi-GB) weights. Everything they produce is noise (`TINY_NOTICE`).
 *
 * Values: torch's default init magnitude (uniform +-1/sqrt(fan_in)) from a per-tensor integer PRNG (so the
 * bytes are the same on every machine and do not depend on tensor order), norm weights 1, biases 0, the
 * motion modules' `pos_encoder.pe` the real sinusoidal table, wav2vec2's weight-norm `g` = |v| (weight = v).
 * A set is written to a temporary sibling folder and renamed into place, so a killed run never leaves a
 * folder that looks complete.
 */
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeSafetensors } from "../weights/safetensors_write.ts";
import {
  readTinyRecord,
  TINY_CONFIGS,
  TINY_GENERATOR_VERSION,
  TINY_JSON,
  TINY_NOTICE,
  TINY_SEED,
  type TinyFileRecord,
  type TinyRecord,
  TinyWeightsError,
} from "./configs.ts";
import { layoutDigest, type TinyFileSpec, tinyLayout, type TinyTensorSpec } from "./layout.ts";

/**
 * Where the tiny random set lives by default: `HALLO_TINY_DIR` when set (the tests point it into their temp
 * folders), else `weights/tiny_pretrained_models` of this project (git-ignored).
 */
export function defaultTinyDir(): string {
  const given = Deno.env.get("HALLO_TINY_DIR");
  if (given) return resolve(given);
  const url = new URL("../../weights/tiny_pretrained_models", import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url) : resolve("weights/tiny_pretrained_models");
}

/** FNV-1a of the key, mixed with the seed: each tensor has its own stream. */
function streamSeed(seed: number, key: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** splitmix32: integer-only, so identical everywhere. Fills `out` with uniform values in [-bound, bound). */
function fillUniform(out: Float32Array, seed: number, bound: number): void {
  let s = seed | 0;
  const scale = (2 * bound) / 4294967296;
  for (let i = 0; i < out.length; i++) {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z = (z ^ (z >>> 16)) >>> 0;
    out[i] = z * scale - bound;
  }
}

/** Whether `key` is the weight or bias of a normalisation layer (LayerNorm, GroupNorm, `norms.0`, ...). */
function isNormParam(key: string, shape: readonly number[]): boolean {
  if (shape.length !== 1) return false;
  const module = key.split(".").slice(0, -1).filter((s) => !/^\d+$/.test(s));
  return /norm/i.test(module[module.length - 1] ?? "");
}

/** AnimateDiff's PositionalEncoding buffer (1, max_len, d), computed in float32 as torch does. */
function sinusoidalTable(shape: readonly number[]): Float32Array {
  const [, len, d] = shape;
  const out = new Float32Array(len * d);
  const f = Math.fround;
  for (let i = 0; 2 * i < d; i++) {
    const div = f(Math.exp(f(f(2 * i) * f(-Math.log(10000) / d))));
    for (let pos = 0; pos < len; pos++) {
      const a = f(pos * div);
      out[pos * d + 2 * i] = Math.sin(a);
      if (2 * i + 1 < d) out[pos * d + 2 * i + 1] = Math.cos(a);
    }
  }
  return out;
}

function randomTensor(seed: number, key: string, shape: readonly number[]): Float32Array {
  const out = new Float32Array(shape.reduce((a, d) => a * d, 1));
  const fanIn = shape.length >= 2 ? shape.slice(1).reduce((a, d) => a * d, 1) : 0;
  // torch's default Linear/Conv init bound; 1-D parameters (embeddings) get a small fixed range.
  fillUniform(out, streamSeed(seed, key), fanIn ? 1 / Math.sqrt(fanIn) : 0.05);
  return out;
}

/**
 * The values of one tensor of the set, a pure function of seed, key and shape (`shapeOf` gives the shapes of
 * the file's other tensors: a weight-norm `g` is computed from its `v`).
 */
export function tinyTensorValues(
  seed: number,
  key: string,
  shape: readonly number[],
  shapeOf: (key: string) => readonly number[] | undefined = () => undefined,
): Float32Array {
  if (key.endsWith("pos_encoder.pe") && shape.length === 3) return sinusoidalTable(shape);
  if (key.endsWith(".weight_g")) {
    return weightNormG(seed, `${key.slice(0, -"weight_g".length)}weight_v`, shapeOf);
  }
  if (isNormParam(key, shape)) return new Float32Array(shape[0]).fill(key.endsWith(".weight") ? 1 : 0);
  if (key.endsWith(".bias")) return new Float32Array(shape.reduce((a, d) => a * d, 1));
  return randomTensor(seed, key, shape);
}

/** weight = g * v / |v|, |v| over every dim but 2: g = |v| per kernel tap makes the effective weight v itself. */
function weightNormG(
  seed: number,
  vKey: string,
  shapeOf: (key: string) => readonly number[] | undefined,
): Float32Array {
  const shape = shapeOf(vKey);
  if (!shape || shape.length !== 3) {
    throw new TinyWeightsError(`weight-norm tensor '${vKey}' is missing beside its weight_g`);
  }
  const v = randomTensor(seed, vKey, shape);
  const k = shape[2];
  const sums = new Float64Array(k);
  for (let i = 0; i < v.length; i++) sums[i % k] += v[i] * v[i];
  return Float32Array.from(sums, Math.sqrt);
}

function writeCheckpoint(root: string, f: TinyFileSpec, seed: number): TinyFileRecord {
  const specs = f.tensors as readonly TinyTensorSpec[];
  const shapes = new Map(specs.map((t) => [t.name, t.shape]));
  const tensors = specs.map((t) => ({
    name: t.name,
    dtype: "F32" as const,
    shape: t.shape,
    data: tinyTensorValues(seed, t.name, t.shape, (k) => shapes.get(k)),
  }));
  const bytes = writeSafetensors(join(root, f.path), tensors, {
    format: "pt",
    generator: `hallo-lab tiny_random v${TINY_GENERATOR_VERSION}`,
    seed: String(seed),
  });
  return { bytes, tensors: tensors.length };
}

/** Writes a whole set into the existing, empty folder `root`; tiny.json comes last. */
function writeSet(root: string, seed: number, files: readonly TinyFileSpec[], layout: string): TinyRecord {
  const record: TinyRecord = {
    generator: "hallo-lab tiny_random",
    version: TINY_GENERATOR_VERSION,
    seed,
    layout,
    notice: TINY_NOTICE,
    configs: TINY_CONFIGS,
    files: {},
  };
  for (const f of files) {
    Deno.mkdirSync(dirname(join(root, f.path)), { recursive: true });
    if (f.tensors) {
      record.files[f.path] = writeCheckpoint(root, f, seed);
    } else {
      const text = new TextEncoder().encode(`${JSON.stringify(f.json, null, 2)}\n`);
      Deno.writeFileSync(join(root, f.path), text);
      record.files[f.path] = { bytes: text.length, tensors: 0 };
    }
  }
  Deno.writeTextFileSync(join(root, TINY_JSON), `${JSON.stringify(record, null, 2)}\n`);
  return record;
}

function sizeOf(path: string): number | undefined {
  try {
    const st = Deno.statSync(path);
    return st.isFile ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `dir` holds a complete set made by this generator version with `seed` and the current layout:
 * tiny.json present and matching, every file it lists there with its recorded size, no file missing.
 */
export function isTinySetComplete(
  dir: string,
  seed = TINY_SEED,
  files: readonly TinyFileSpec[] = tinyLayout(),
): boolean {
  let rec: TinyRecord | undefined;
  try {
    rec = readTinyRecord(dir);
  } catch {
    return false;
  }
  if (!rec || rec.version !== TINY_GENERATOR_VERSION || rec.seed !== seed) return false;
  if (rec.layout !== layoutDigest(files, TINY_CONFIGS)) return false;
  const listed = Object.keys(rec.files);
  if (listed.length !== files.length || files.some((f) => !listed.includes(f.path))) return false;
  return listed.every((p) => sizeOf(join(dir, p)) === rec.files[p].bytes);
}

const STALE_MS = 10 * 60 * 1000;

/** Whether process `pid` still runs (Linux /proc; elsewhere unknown, so assumed alive). */
function alive(pid: number): boolean {
  try {
    Deno.statSync("/proc/self");
  } catch {
    return true;
  }
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Removes temp/old siblings of `dir` left by killed runs (their process is gone, or they are old). */
function removeLeftovers(dir: string): void {
  const parent = dirname(dir);
  const pattern = new RegExp(`^${basename(dir).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.(tmp|old)-(\\d+)-`);
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(parent)];
  } catch {
    return;
  }
  for (const e of entries) {
    const m = e.isDirectory ? pattern.exec(e.name) : null;
    if (!m || Number(m[2]) === Deno.pid) continue;
    const path = join(parent, e.name);
    const age = Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0);
    if (!alive(Number(m[2])) || age > STALE_MS) Deno.removeSync(path, { recursive: true });
  }
}

/** Whether an existing `dir` may be replaced: an (older or broken) tiny set, or an empty folder. */
function replaceable(dir: string): boolean {
  if (sizeOf(join(dir, TINY_JSON)) !== undefined) return true;
  return [...Deno.readDirSync(dir)].length === 0;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Result of `ensureTinyWeights`. */
export interface TinyWeights {
  /** Absolute path of the set (a `pretrained_models/` folder). */
  dir: string;
  /** True when this call generated it, false when a complete set was already there. */
  created: boolean;
}

/**
 * Makes sure `dir` holds the complete tiny random set (generating it, once, when it is missing, incomplete,
 * or from another generator version, seed or layout). A folder that is not a tiny set is never replaced: that
 * is a TinyWeightsError naming it.
 */
export async function ensureTinyWeights(
  dir: string = defaultTinyDir(),
  opts: { seed?: number } = {},
): Promise<TinyWeights> {
  const target = resolve(dir);
  const seed = opts.seed ?? TINY_SEED;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new TinyWeightsError(`seed must be an integer in [0, 2^32), got ${seed}`);
  }
  const files = tinyLayout();
  if (isTinySetComplete(target, seed, files)) return { dir: target, created: false };
  if (exists(target) && !replaceable(target)) {
    throw new TinyWeightsError(
      `${target}: exists and is not a tiny weight set (no ${TINY_JSON}); move it away or pick another folder`,
    );
  }
  await Deno.mkdir(dirname(target), { recursive: true });
  removeLeftovers(target);
  const stamp = `${Deno.pid}-${Date.now().toString(36)}`;
  const tmp = `${target}.tmp-${stamp}`;
  Deno.mkdirSync(tmp);
  try {
    writeSet(tmp, seed, files, layoutDigest(files, TINY_CONFIGS));
    if (exists(target)) {
      // Another run may have finished meanwhile; otherwise swap the stale set out.
      if (isTinySetComplete(target, seed, files)) {
        Deno.removeSync(tmp, { recursive: true });
        return { dir: target, created: false };
      }
      const old = `${target}.old-${stamp}`;
      Deno.renameSync(target, old);
      Deno.renameSync(tmp, target);
      Deno.removeSync(old, { recursive: true });
    } else {
      Deno.renameSync(tmp, target);
    }
  } catch (e) {
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch { /* already moved or gone */ }
    // Lost a race against a concurrent run that installed a complete set: that set is as good as ours.
    if (isTinySetComplete(target, seed, files)) return { dir: target, created: false };
    if (e instanceof TinyWeightsError) throw e;
    throw new TinyWeightsError(
      `${target}: cannot write the tiny weight set (${(e as Error).message.split("\n")[0]})`,
    );
  }
  return { dir: target, created: true };
}
