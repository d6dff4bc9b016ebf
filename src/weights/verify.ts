/**
 * Checks of a weights folder. `verifyFormat` is the light format check of a download: enough to tell a
 * complete file of the right kind from a truncated download, an HTML error page or a Git LFS pointer.
 * `checkFile` / `checkWeights` then open each file the stages read with the readers the stages use
 * (zip directory and local headers, the restricted unpickler, storage sizes, safetensors header rules, the
 * config parsers), open each ONNX model in an ORT session and build every graph over the checkpoints, so
 * "valid" means the stages will load it; for checkpoints that reads headers and directories only (milliseconds
 * for a multi-GB file). `deep` also reads every tensor once and compares the size and sha256 the manifest
 * records.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseUNetConfig } from "../models/unet_config.ts";
import { parseVaeConfig } from "../models/vae.ts";
import { parseWav2Vec2Config } from "../models/wav2vec2.ts";
import { audioBindings, networksBindings, onnxSessions } from "./bindings.ts";
import { openCheckpoint } from "./checkpoint.ts";
import { readTensorBytes } from "./convert.ts";
import { CheckpointError, oneLine } from "./errors.ts";
import { MAX_HEADER_BYTES } from "./safetensors.ts";
import { withFileSource } from "./source.ts";
import type { HalloConfigs } from "../models/hallo_configs.ts";
import { DTYPE_BYTES } from "../onnx/tensor_ref.ts";
import {
  MANIFEST,
  STAGES,
  type WeightsFile,
  type WeightsFormat,
  type WeightsManifest,
  type WeightsStage,
} from "./manifest.ts";

/** A file that is not a valid instance of its expected format; the message is one line naming the file. */
export class WeightsFormatError extends Error {
  readonly file: string;
  readonly problem: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "WeightsFormatError";
    this.file = file;
    this.problem = problem;
  }
}

/** Headers and directories larger than this are treated as corrupt rather than read into memory. */
const MAX_METADATA_BYTES = 256 * 1024 * 1024;
/** JSON files of a model folder are small; anything bigger is not one of them. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;

const DTYPE_SIZE: Record<string, number> = {
  ...DTYPE_BYTES,
  // Formats the readers refuse but a downloaded file may still validly hold.
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  U32: 4,
  U64: 8,
};

class Reader {
  constructor(readonly path: string, readonly file: Deno.FsFile, readonly size: number) {}

  /** Exactly `length` bytes at `offset`, or a format error saying what was being read. */
  async at(offset: number, length: number, what: string): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new WeightsFormatError(
        this.path,
        `${what} (bytes ${offset}..${
          offset + length
        }) lies outside the file (${this.size} bytes): truncated?`,
      );
    }
    const buf = new Uint8Array(length);
    await this.file.seek(offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < length) {
      const n = await this.file.read(buf.subarray(got));
      if (n === null) throw new WeightsFormatError(this.path, `file ended while reading ${what}`);
      got += n;
    }
    return buf;
  }

  fail(problem: string): never {
    throw new WeightsFormatError(this.path, problem);
  }
}

function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}
function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
}
function u64(b: Uint8Array, o: number): number {
  return u32(b, o) + u32(b, o + 4) * 0x100000000;
}

function isSig(b: Uint8Array, o: number, c: number, d: number): boolean {
  return b[o] === 0x50 && b[o + 1] === 0x4b && b[o + 2] === c && b[o + 3] === d;
}

/** What a file looks like when it is not what it should be: turns "bad magic" into something actionable. */
function sniff(head: Uint8Array): string {
  const text = new TextDecoder().decode(head.subarray(0, 64)).trimStart().toLowerCase();
  if (text.startsWith("version https://git-lfs")) return " (it is a Git LFS pointer, not the file)";
  if (text.startsWith("<!doctype") || text.startsWith("<html")) return " (it is an HTML page)";
  if (text.startsWith("{")) return " (it looks like JSON)";
  return "";
}

async function checkSafetensors(r: Reader): Promise<string> {
  const head = await r.at(0, Math.min(r.size, 64), "safetensors header length");
  const n = r.size >= 8 ? u64(head, 0) : -1;
  if (n > MAX_HEADER_BYTES) {
    r.fail(`safetensors header length ${n} exceeds the ${MAX_HEADER_BYTES} byte limit${sniff(head)}`);
  }
  if (n < 2 || 8 + n > r.size) {
    r.fail(`safetensors header length ${n} does not fit a ${r.size}-byte file${sniff(head)}`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await r.at(8, n, "header")));
  } catch (e) {
    if (e instanceof WeightsFormatError) throw e;
    r.fail(`safetensors header is not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    r.fail("safetensors header is not a JSON object");
  }
  const dataSize = r.size - 8 - n;
  let count = 0;
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const offs = t?.data_offsets;
    if (
      !Array.isArray(offs) || offs.length !== 2 || !Number.isSafeInteger(offs[0]) ||
      !Number.isSafeInteger(offs[1]) || offs[0] < 0 || offs[1] < offs[0]
    ) {
      r.fail(`tensor '${name}' has no valid data_offsets`);
    }
    if (offs[1] > dataSize) {
      r.fail(`tensor '${name}' ends at byte ${offs[1]} of a ${dataSize}-byte data section: truncated?`);
    }
    const width = DTYPE_SIZE[String(t.dtype)];
    if (width === undefined) r.fail(`tensor '${name}' has unknown dtype ${JSON.stringify(t.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      r.fail(`tensor '${name}' has no valid shape`);
    }
    const numel = (t.shape as number[]).reduce((a, b) => a * b, 1);
    if (numel * width !== offs[1] - offs[0]) {
      r.fail(`tensor '${name}' has ${offs[1] - offs[0]} bytes for shape [${t.shape}] ${t.dtype}`);
    }
    count++;
  }
  return `safetensors, ${count} tensors`;
}

/** The names in a zip's central directory (zip64 aware: torch writes zip64 for checkpoints over 4 GB). */
async function zipEntries(r: Reader): Promise<string[]> {
  if (r.size < 22) r.fail(`too small for a zip file (${r.size} bytes)`);
  const tailLen = Math.min(r.size, 22 + 0xffff);
  const tailStart = r.size - tailLen;
  const tail = await r.at(tailStart, tailLen, "end of file");
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (isSig(tail, i, 5, 6) && i + 22 + u16(tail, i + 20) <= tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    const head = await r.at(0, Math.min(64, r.size), "start of file");
    r.fail(`no zip end-of-central-directory record: truncated or not a zip${sniff(head)}`);
  }
  let total = u16(tail, eocd + 10);
  let cdSize = u32(tail, eocd + 12);
  let cdOffset = u32(tail, eocd + 16);
  if (total === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || !isSig(tail, loc, 6, 7)) r.fail("zip64 sizes without a zip64 locator");
    const recOffset = u64(tail, loc + 8);
    const rec = await r.at(recOffset, 56, "zip64 end-of-central-directory record");
    if (!isSig(rec, 0, 6, 6)) r.fail("zip64 end-of-central-directory record has a bad signature");
    total = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  if (cdSize > MAX_METADATA_BYTES) r.fail(`zip central directory of ${cdSize} bytes is implausible`);
  const cd = await r.at(cdOffset, cdSize, "zip central directory");
  const names: string[] = [];
  let p = 0;
  const dec = new TextDecoder();
  while (p + 46 <= cd.length && isSig(cd, p, 1, 2)) {
    const nameLen = u16(cd, p + 28);
    const extraLen = u16(cd, p + 30);
    const commentLen = u16(cd, p + 32);
    if (p + 46 + nameLen > cd.length) r.fail("zip central directory entry runs past the directory");
    names.push(dec.decode(cd.subarray(p + 46, p + 46 + nameLen)));
    p += 46 + nameLen + extraLen + commentLen;
  }
  if (names.length !== total) {
    r.fail(`zip central directory lists ${names.length} entries, the end record says ${total}`);
  }
  return names;
}

async function checkPth(r: Reader): Promise<string> {
  const names = await zipEntries(r);
  if (!names.some((n) => n === "data.pkl" || n.endsWith("/data.pkl"))) {
    r.fail(`zip has no data.pkl entry: not a torch checkpoint (${names.length} entries)`);
  }
  return `torch zip, ${names.length} entries`;
}

async function checkTask(r: Reader): Promise<string> {
  const names = await zipEntries(r);
  const models = names.filter((n) => n.endsWith(".tflite")).length;
  if (models === 0) r.fail(`task bundle has no .tflite model (${names.length} entries)`);
  return `task bundle, ${models} tflite models`;
}

/** Legacy (pre-1.6) torch.save: pickle protocol 2 whose first object is the long 0x1950a86a20f9469cfc6c. */
const LEGACY_TORCH_MAGIC = [
  0x80,
  0x02,
  0x8a,
  0x0a,
  0x6c,
  0xfc,
  0x9c,
  0x46,
  0xf9,
  0x20,
  0x6a,
  0xa8,
  0x50,
  0x19,
];

async function checkCkpt(r: Reader): Promise<string> {
  const head = await r.at(0, Math.min(r.size, 64), "start of file");
  if (isSig(head, 0, 3, 4)) return await checkPth(r);
  if (LEGACY_TORCH_MAGIC.every((b, i) => head[i] === b)) return "legacy torch pickle";
  return r.fail(`neither a torch zip nor a legacy torch pickle${sniff(head)}`);
}

/** Reads a protobuf varint at `o` of `b`; returns [value, next offset] or null if it runs past the bytes. */
function varint(b: Uint8Array, o: number): [number, number] | null {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10 && o + i < b.length; i++) {
    const byte = b[o + i];
    v += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return [v, o + i + 1];
    mul *= 128;
  }
  return null;
}

/** ONNX ModelProto top level: field 1 ir_version (varint) and field 7 graph (bytes) inside the file. */
async function checkOnnx(r: Reader): Promise<string> {
  let pos = 0;
  let irVersion: number | undefined;
  let graph = false;
  for (let fields = 0; pos < r.size; fields++) {
    if (fields > 100_000) r.fail("more than 100000 top-level protobuf fields: not an ONNX model");
    const b = await r.at(pos, Math.min(20, r.size - pos), "protobuf field");
    const tag = varint(b, 0);
    if (!tag || tag[0] < 8) r.fail(`bad protobuf tag at byte ${pos}: not an ONNX model${sniff(b)}`);
    const [key, afterTag] = tag;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let next: number;
    if (wire === 0) {
      const v = varint(b, afterTag);
      if (!v) r.fail(`bad varint at byte ${pos + afterTag}`);
      if (field === 1) irVersion = v[0];
      next = pos + v[1];
    } else if (wire === 2) {
      const len = varint(b, afterTag);
      if (!len) r.fail(`bad length at byte ${pos + afterTag}`);
      next = pos + len[1] + len[0];
      if (next > r.size) {
        r.fail(`protobuf field ${field} ends at byte ${next}, past the end (${r.size} bytes): truncated?`);
      }
      if (field === 7) graph = true;
    } else if (wire === 1) {
      next = pos + afterTag + 8;
    } else if (wire === 5) {
      next = pos + afterTag + 4;
    } else {
      return r.fail(`protobuf wire type ${wire} at byte ${pos}: not an ONNX model${sniff(b)}`);
    }
    if (next > r.size) r.fail(`protobuf field ${field} runs past the end: truncated?`);
    if ((field === 1 && wire !== 0) || (field === 7 && wire !== 2)) {
      r.fail(`field ${field} has wire type ${wire}: not an ONNX model`);
    }
    pos = next;
  }
  if (irVersion === undefined) r.fail("no ir_version (field 1): not an ONNX model");
  if (!graph) r.fail("no graph (field 7): not an ONNX model");
  return `onnx, ir_version ${irVersion}`;
}

async function checkJson(r: Reader): Promise<string> {
  if (r.size > MAX_JSON_BYTES) r.fail(`${r.size} bytes is too large for a config JSON`);
  const bytes = await r.at(0, r.size, "JSON");
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    r.fail(`not valid JSON (${(e as Error).message.split("\n")[0]})${sniff(bytes)}`);
  }
  if (Array.isArray(value)) return `JSON array of ${value.length}`;
  if (typeof value === "object" && value !== null) return `JSON object, ${Object.keys(value).length} keys`;
  return `JSON ${typeof value}`;
}

const CHECKS: Record<WeightsFormat, (r: Reader) => Promise<string>> = {
  safetensors: checkSafetensors,
  pth: checkPth,
  ckpt: checkCkpt,
  onnx: checkOnnx,
  task: checkTask,
  json: checkJson,
};

/**
 * Checks that `path` is a complete file of `format`. Returns a short description ("safetensors,
 * 248 tensors"); throws a WeightsFormatError naming the file and the problem. A missing file throws
 * Deno.errors.NotFound, so callers can tell "absent" from "broken".
 */
export async function verifyFormat(path: string, format: WeightsFormat): Promise<string> {
  const file = await Deno.open(path, { read: true });
  try {
    const info = await file.stat();
    if (!info.isFile) throw new WeightsFormatError(path, "not a regular file");
    if (info.size === 0) throw new WeightsFormatError(path, "empty file");
    return await CHECKS[format](new Reader(path, file, info.size));
  } finally {
    file.close();
  }
}

/** The state of one manifest file in a weights folder. */
export interface FileCheck {
  readonly file: WeightsFile;
  /** Absolute path where the file is expected. */
  readonly path: string;
  readonly present: boolean;
  /** Present and passing its checks. */
  readonly valid: boolean;
  /** Size in bytes (0 when absent). */
  readonly size: number;
  /** Format description when valid, the problem otherwise ("missing" when absent). */
  readonly detail: string;
}

/** Options of {@link checkFile} and {@link checkWeights}. */
export interface CheckOptions {
  /**
   * Also read every tensor once (an I/O error or a short read fails the file) and compare the size and
   * sha256 the manifest records. Zeroed or altered bytes inside tensor data change no structure a reader
   * can see: only the sha256 tells them apart.
   */
  readonly deep?: boolean;
  /**
   * Sizes upstream hard-codes in inference.py, for a folder of test weights made with others (as the parity
   * runner passes them); default: the folder's tiny.json, else upstream's.
   */
  readonly configs?: HalloConfigs;
}

/** The parsers the stages read each config with, by manifest name. */
const CONFIG_PARSERS: Record<string, (raw: Record<string, unknown>, file: string) => unknown> = {
  unet_config: parseUNetConfig,
  vae_config: parseVaeConfig,
  wav2vec_config: parseWav2Vec2Config,
};

/**
 * Opens `path` as the stages open it: checkpoints through the checkpoint readers (every tensor's
 * entry, storage size and offsets), configs as JSON objects through their parsers. Returns extra detail;
 * throws a WeightsFormatError naming the problem.
 */
function readAsStagesDo(path: string, file: WeightsFile): string {
  const fail = (problem: string): never => {
    throw new WeightsFormatError(path, problem);
  };
  if (file.format === "safetensors" || file.format === "pth") {
    try {
      const n = openCheckpoint(path).tensors.size;
      // The format check already counted a safetensors file's tensors.
      return file.format === "pth" ? `${n} tensors` : "";
    } catch (e) {
      if (e instanceof CheckpointError) fail(e.problem);
      throw e;
    }
  }
  if (file.format === "json") {
    const value = JSON.parse(Deno.readTextFileSync(path));
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      fail(`expected a JSON object, found ${Array.isArray(value) ? "an array" : typeof value}`);
    }
    const parse = CONFIG_PARSERS[file.name];
    if (parse) {
      try {
        parse(value, path);
      } catch (e) {
        // The parsers name the file themselves; keep the problem only.
        fail(oneLine((e as Error).message).replace(`${path}: `, ""));
      }
    }
  }
  return "";
}

/**
 * The format check, then `path` opened as the stages open it (checkpoint readers, config parsers); files no
 * stage reads get the format check only. Returns a short description; throws a WeightsFormatError naming
 * the file and the problem (Deno.errors.NotFound when it is absent).
 */
export async function verifyFile(path: string, file: WeightsFile): Promise<string> {
  const details = [await verifyFormat(path, file.format)];
  if (file.status !== "unused") details.push(readAsStagesDo(path, file));
  return details.filter(Boolean).join(", ");
}

/** sha256 of a whole file, read in 16 MiB chunks. */
async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(16 << 20);
  for (;;) {
    const n = await f.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

/** `--deep`: the manifest's size and sha256 when it has them, then every tensor read once. */
async function deepCheck(path: string, file: WeightsFile, size: number): Promise<string> {
  const notes: string[] = [];
  if (file.size !== undefined && size !== file.size) {
    throw new WeightsFormatError(path, `${size} bytes, the manifest says ${file.size}`);
  }
  if (file.sha256) {
    const got = await sha256File(path);
    if (got !== file.sha256) {
      throw new WeightsFormatError(path, `sha256 ${got} differs from the manifest's ${file.sha256}`);
    }
    notes.push("sha256 ok");
  } else {
    notes.push("no sha256 in the manifest");
  }
  if (file.format === "safetensors" || file.format === "pth") {
    let bytes = 0;
    try {
      const ckpt = openCheckpoint(path);
      withFileSource(path, (src) => {
        for (const ref of ckpt.tensors.values()) bytes += readTensorBytes(ref, src).length;
      });
    } catch (e) {
      if (e instanceof CheckpointError) throw new WeightsFormatError(path, e.problem);
      throw e;
    }
    notes.push(`every tensor read (${bytes} bytes)`);
  }
  return notes.join(", ");
}

/** Checks one manifest file in `dir` without throwing for a missing or broken file. */
export async function checkFile(dir: string, file: WeightsFile, opts: CheckOptions = {}): Promise<FileCheck> {
  const path = join(dir, file.path);
  let size = 0;
  try {
    size = (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { file, path, present: false, valid: false, size, detail: "missing" };
    }
    throw e;
  }
  try {
    const details = [await verifyFile(path, file)];
    if (opts.deep) details.push(await deepCheck(path, file, size));
    return { file, path, present: true, valid: true, size, detail: details.filter(Boolean).join(", ") };
  } catch (e) {
    const problem = e instanceof WeightsFormatError
      ? e.problem
      : oneLine((e as Error).message.split("\n")[0]);
    return { file, path, present: true, valid: false, size, detail: problem };
  }
}

/**
 * Checks every manifest file in `dir`, in manifest order, then builds each stage's graphs over the
 * checkpoints that passed (the key set and shapes each network binds) and opens each ONNX model the stages
 * run in an ORT session; a file that fails is reported invalid with the problem.
 */
export async function checkWeights(
  dir: string,
  manifest: WeightsManifest = MANIFEST,
  opts: CheckOptions = {},
): Promise<FileCheck[]> {
  const out: FileCheck[] = [];
  for (const f of manifest.files) out.push(await checkFile(dir, f, opts));
  const usable = out.filter((c) => c.valid && c.file.status !== "unused");
  const valid = Object.fromEntries(usable.map((c) => [c.file.name, c.path]));
  const onnx = Object.fromEntries(
    usable.filter((c) => c.file.format === "onnx").map((c) => [c.file.name, c.path]),
  );
  const problems = [
    ...networksBindings(valid, opts.configs),
    ...audioBindings(valid),
    ...await onnxSessions(onnx),
  ];
  return out.map((c) => {
    const p = problems.find((b) => b.name === c.file.name);
    return p ? { ...c, valid: false, detail: p.problem } : c;
  });
}

/** Stages whose required files are all present and valid. */
export function enabledStages(checks: readonly FileCheck[]): WeightsStage[] {
  const stages = STAGES.filter((s) => checks.some((c) => c.file.stage === s));
  return stages.filter((s) =>
    checks.every((c) => c.file.stage !== s || c.file.status !== "required" || c.valid)
  );
}

/** Required files of `stages` that are missing or invalid. */
export function missingFor(checks: readonly FileCheck[], stages: readonly WeightsStage[]): FileCheck[] {
  return checks.filter((c) => stages.includes(c.file.stage) && c.file.status === "required" && !c.valid);
}
