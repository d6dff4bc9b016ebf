/**
 * Builders for checkpoint test files, written byte by byte: stored zips (optionally ZIP64, torch-style 64-byte
 * data alignment), pickles from named opcodes, torch-like state-dict pickles, and safetensors files.
 */
import { deflateRawSync } from "node:zlib";
import { CheckpointError } from "../../src/weights/errors.ts";

const enc = new TextEncoder();

/** Concatenates byte chunks. */
export function concat(parts: (Uint8Array | number[])[]): Uint8Array {
  const arrs = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrs.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const a of arrs) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

function le(n: number, bytes: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  for (let i = 0; i < bytes; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One zip entry to write; `deflate` stores it compressed (method 8). */
export interface ZipInput {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

/** Writes a zip archive like torch.save: stored entries, data aligned to 64 bytes with an "FB" extra field. */
export function makeZip(files: ZipInput[], opts: { zip64?: boolean } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let pos = 0;
  for (const f of files) {
    const name = enc.encode(f.name);
    const body = f.deflate ? new Uint8Array(deflateRawSync(f.data)) : f.data;
    const method = f.deflate ? 8 : 0;
    const crc = crc32(f.data);
    const z64local = opts.zip64
      ? [...le(1, 2), ...le(16, 2), ...le(f.data.length, 8), ...le(body.length, 8)]
      : [];
    const fixed = 30 + name.length + z64local.length + 4;
    const pad = (64 - ((pos + fixed) % 64)) % 64;
    const extra = [...z64local, ...le(0x4246, 2), ...le(pad, 2), ...new Array(pad).fill(0x5a)];
    const sz = (n: number) => le(opts.zip64 ? 0xffffffff : n, 4);
    const local = concat([
      le(0x04034b50, 4),
      le(opts.zip64 ? 45 : 20, 2),
      le(0, 2),
      le(method, 2),
      le(0, 4),
      le(crc, 4),
      sz(body.length),
      sz(f.data.length),
      le(name.length, 2),
      le(extra.length, 2),
      name,
      extra,
      body,
    ]);
    const cdExtra = opts.zip64
      ? [...le(1, 2), ...le(24, 2), ...le(f.data.length, 8), ...le(body.length, 8), ...le(pos, 8)]
      : [];
    central.push(concat([
      le(0x02014b50, 4),
      le(45, 2),
      le(opts.zip64 ? 45 : 20, 2),
      le(0, 2),
      le(method, 2),
      le(0, 4),
      le(crc, 4),
      sz(body.length),
      sz(f.data.length),
      le(name.length, 2),
      le(cdExtra.length, 2),
      le(0, 2),
      le(0, 2),
      le(0, 2),
      le(0, 4),
      le(opts.zip64 ? 0xffffffff : pos, 4),
      name,
      cdExtra,
    ]));
    parts.push(local);
    pos += local.length;
  }
  const cd = concat(central);
  const cdOffset = pos;
  const tail: (Uint8Array | number[])[] = [];
  if (opts.zip64) {
    const recPos = cdOffset + cd.length;
    tail.push(
      concat([
        le(0x06064b50, 4),
        le(44, 8),
        le(45, 2),
        le(45, 2),
        le(0, 4),
        le(0, 4),
        le(files.length, 8),
        le(files.length, 8),
        le(cd.length, 8),
        le(cdOffset, 8),
      ]),
      concat([le(0x07064b50, 4), le(0, 4), le(recPos, 8), le(1, 4)]),
    );
  }
  const n16 = opts.zip64 ? 0xffff : files.length;
  const n32 = (n: number) => le(opts.zip64 ? 0xffffffff : n, 4);
  tail.push(
    concat([
      le(0x06054b50, 4),
      le(0, 2),
      le(0, 2),
      le(n16, 2),
      le(n16, 2),
      n32(cd.length),
      n32(cdOffset),
      le(0, 2),
    ]),
  );
  return concat([...parts, cd, ...tail]);
}

/** Pickle opcodes as byte builders, so tests spell out every byte of a pickle. */
export const op = {
  proto: (v: number) => [0x80, v],
  frame: (n: number) => [0x95, ...le(n, 8)],
  global: (module: string, name: string) => [0x63, ...enc.encode(`${module}\n${name}\n`)],
  stackGlobal: [0x93],
  str: (s: string) => {
    const b = enc.encode(s);
    return [0x58, ...le(b.length, 4), ...b];
  },
  shortStr: (s: string) => {
    const b = enc.encode(s);
    return [0x8c, b.length, ...b];
  },
  int: (n: number) =>
    n >= 0 && n < 256 ? [0x4b, n] : n >= 0 && n < 65536 ? [0x4d, ...le(n, 2)] : [0x4a, ...le(n >>> 0, 4)],
  long1: (bytes: number[]) => [0x8a, bytes.length, ...bytes],
  mark: [0x28],
  tuple: [0x74],
  tuple1: [0x85],
  tuple2: [0x86],
  tuple3: [0x87],
  emptyTuple: [0x29],
  emptyDict: [0x7d],
  emptyList: [0x5d],
  append: [0x61],
  reduce: [0x52],
  build: [0x62],
  setitem: [0x73],
  setitems: [0x75],
  binpersid: [0x51],
  put: (i: number) => [0x71, i],
  get: (i: number) => [0x68, i],
  memoize: [0x94],
  newFalse: [0x89],
  newTrue: [0x88],
  none: [0x4e],
  stop: [0x2e],
};

/** Joins opcode byte lists into a pickle. */
export function pickle(...parts: number[][]): Uint8Array {
  return Uint8Array.from(parts.flat());
}

/** One tensor of a hand-written state-dict pickle. */
export interface PickledTensor {
  name: string;
  storage: string; // e.g. "FloatStorage"
  key: string;
  storageNumel: number;
  offset?: number;
  size: number[];
  stride?: number[];
  parameter?: boolean; // wrap in torch._utils._rebuild_parameter
}

function rowMajor(size: number[]): number[] {
  const s = new Array(size.length).fill(1);
  for (let i = size.length - 2; i >= 0; i--) s[i] = s[i + 1] * size[i + 1];
  return s;
}

/** A state-dict pickle as torch.save writes it (protocol 2, OrderedDict, `_metadata` set by BUILD). */
export function stateDictPickle(
  tensors: PickledTensor[],
  opts: { metadata?: boolean } = { metadata: true },
): Uint8Array {
  const ints = (xs: number[]) => [...op.mark, ...xs.flatMap(op.int), ...op.tuple];
  const body: number[][] = [
    op.proto(2),
    op.global("collections", "OrderedDict"),
    op.emptyTuple,
    op.reduce,
    op.mark,
  ];
  for (const t of tensors) {
    const rebuild = [
      ...op.global("torch._utils", "_rebuild_tensor_v2"),
      ...op.mark,
      ...op.mark,
      ...op.str("storage"),
      ...op.global("torch", t.storage),
      ...op.str(t.key),
      ...op.str("cpu"),
      ...op.int(t.storageNumel),
      ...op.tuple,
      ...op.binpersid,
      ...op.int(t.offset ?? 0),
      ...ints(t.size),
      ...ints(t.stride ?? rowMajor(t.size)),
      ...op.newFalse,
      ...op.global("collections", "OrderedDict"),
      ...op.emptyTuple,
      ...op.reduce,
      ...op.tuple,
      ...op.reduce,
    ];
    const value = t.parameter
      ? [
        ...op.global("torch._utils", "_rebuild_parameter"),
        ...op.mark,
        ...rebuild,
        ...op.newTrue,
        ...op.global("collections", "OrderedDict"),
        ...op.emptyTuple,
        ...op.reduce,
        ...op.tuple,
        ...op.reduce,
      ]
      : rebuild;
    body.push(op.str(t.name), value);
  }
  body.push(op.setitems);
  if (opts.metadata) {
    // state_dict._metadata = {"": {"version": 1}} arrives as BUILD with the state {"_metadata": OrderedDict}
    body.push(
      op.emptyDict,
      op.str("_metadata"),
      op.global("collections", "OrderedDict"),
      op.emptyTuple,
      op.reduce,
      op.str(""),
      op.emptyDict,
      op.str("version"),
      op.int(1),
      op.setitem,
      op.setitem,
      op.setitem,
      op.build,
    );
  }
  body.push(op.stop);
  return pickle(...body);
}

/** A torch.save-like zip: `<archive>/data.pkl`, `<archive>/data/<key>` per storage, `<archive>/version`. */
export function makePth(
  pkl: Uint8Array,
  storages: Record<string, Uint8Array>,
  opts: { archive?: string; zip64?: boolean; deflate?: string[]; byteorder?: string } = {},
): Uint8Array {
  const a = opts.archive ?? "archive";
  const files: ZipInput[] = [{
    name: `${a}/data.pkl`,
    data: pkl,
    deflate: opts.deflate?.includes("data.pkl"),
  }];
  if (opts.byteorder) files.push({ name: `${a}/byteorder`, data: enc.encode(opts.byteorder) });
  for (const [k, v] of Object.entries(storages)) {
    files.push({ name: `${a}/data/${k}`, data: v, deflate: opts.deflate?.includes(k) });
  }
  files.push({ name: `${a}/version`, data: enc.encode("3\n") });
  return makeZip(files, { zip64: opts.zip64 });
}

/** A safetensors file from a header (object, or raw text for malformed headers) and the data bytes. */
export function makeSafetensors(
  header: unknown,
  data: Uint8Array,
  opts: { headerLength?: number } = {},
): Uint8Array {
  const h = enc.encode(typeof header === "string" ? header : JSON.stringify(header));
  return concat([le(opts.headerLength ?? h.length, 8), h, data]);
}

/** Float32 values as little-endian bytes. */
export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

let root: string | undefined;

/**
 * A fresh empty folder inside this test module's temp folder, which is made on the first call and removed
 * (with everything in it) when the module unloads, so files written here never outlive the test run, even
 * when a test fails.
 */
export function tempFolder(): string {
  if (!root) {
    const r = Deno.makeTempDirSync({ prefix: "hallo-weights-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(r, { recursive: true }));
    root = r;
  }
  return Deno.makeTempDirSync({ dir: root });
}

/** Writes `bytes` to a new file in a fresh folder (see `tempFolder`); returns its path. */
export function writeTemp(name: string, bytes: Uint8Array): string {
  const dir = tempFolder();
  const path = `${dir}/${name}`;
  Deno.writeFileSync(path, bytes);
  return path;
}

/** Asserts that `fn` throws a one-line CheckpointError whose message matches `pattern`; returns it. */
export function expectCheckpointError(fn: () => unknown, pattern: RegExp): CheckpointError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof CheckpointError)) {
      throw new Error(`expected a CheckpointError, got ${e}`, { cause: e });
    }
    if (!pattern.test(e.message)) throw new Error(`error '${e.message}' does not match ${pattern}`);
    if (/[\n\r]/.test(e.message)) {
      throw new Error(`error message is not one line: ${JSON.stringify(e.message)}`);
    }
    return e;
  }
  throw new Error(`expected an error matching ${pattern}, but nothing was thrown`);
}
