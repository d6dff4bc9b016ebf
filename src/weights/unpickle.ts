/**
 * A restricted unpickler: it interprets the pickle opcodes a torch state dict uses and nothing else. It never
 * imports or calls anything: GLOBAL/STACK_GLOBAL only resolve names from an allowlist the caller passes, REDUCE
 * only calls those entries' JS stand-ins, and any other global or opcode is an error naming it.
 */
import { CheckpointError } from "./errors.ts";

/** A name a pickle may refer to, with an optional JS stand-in for calling it via REDUCE. */
export interface PickleGlobal {
  readonly module: string;
  readonly name: string;
  /** Builds the value of `global(*args)`; absent when the global may only be passed around (storage types). */
  readonly call?: (args: readonly unknown[]) => unknown;
  /** Whether BUILD may set state on values this global's call returned (OrderedDict `_metadata`). */
  readonly buildable?: boolean;
}

/** What the unpickler needs from its caller. */
export interface UnpickleOptions {
  /** File named in errors. */
  readonly file: string;
  /** Entry (e.g. `net/data.pkl`) named in errors. */
  readonly where: string;
  /** Allowed globals, keyed `module.name`. */
  readonly globals: ReadonlyMap<string, PickleGlobal>;
  /** BINPERSID handler (torch storages). */
  readonly persistentLoad: (pid: unknown) => unknown;
}

/** Pickle dicts become Maps; tuples and lists become arrays. */
export type PickleDict = Map<unknown, unknown>;

const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK",
  0x2e: "STOP",
  0x30: "POP",
  0x31: "POP_MARK",
  0x32: "DUP",
  0x46: "FLOAT",
  0x49: "INT",
  0x4a: "BININT",
  0x4b: "BININT1",
  0x4c: "LONG",
  0x4d: "BININT2",
  0x4e: "NONE",
  0x50: "PERSID",
  0x51: "BINPERSID",
  0x52: "REDUCE",
  0x53: "STRING",
  0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING",
  0x56: "UNICODE",
  0x58: "BINUNICODE",
  0x61: "APPEND",
  0x62: "BUILD",
  0x63: "GLOBAL",
  0x64: "DICT",
  0x7d: "EMPTY_DICT",
  0x65: "APPENDS",
  0x67: "GET",
  0x68: "BINGET",
  0x69: "INST",
  0x6a: "LONG_BINGET",
  0x6c: "LIST",
  0x5d: "EMPTY_LIST",
  0x6f: "OBJ",
  0x70: "PUT",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x73: "SETITEM",
  0x74: "TUPLE",
  0x29: "EMPTY_TUPLE",
  0x75: "SETITEMS",
  0x47: "BINFLOAT",
  0x80: "PROTO",
  0x81: "NEWOBJ",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x8a: "LONG1",
  0x8b: "LONG4",
  0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES",
  0x8c: "SHORT_BINUNICODE",
  0x8d: "BINUNICODE8",
  0x8e: "BINBYTES8",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x92: "NEWOBJ_EX",
  0x93: "STACK_GLOBAL",
  0x94: "MEMOIZE",
  0x95: "FRAME",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
};

/** Longest module or attribute name accepted in GLOBAL (real ones are short; this bounds the newline scan). */
const MAX_GLOBAL_NAME = 256;
/** Widest LONG1/LONG4 integer accepted (a state dict's ints are sizes and strides). */
const MAX_LONG_BYTES = 16;
const HIGHEST_PROTOCOL = 5;

const utf8 = new TextDecoder("utf-8", { fatal: true });

function opName(op: number): string {
  return `${OPCODE_NAMES[op] ?? "unknown opcode"} (0x${op.toString(16).padStart(2, "0")})`;
}

/** Interprets `bytes` as a pickle under the restrictions of `opts`; returns the unpickled value. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): unknown {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  let opPos = 0;
  let op = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  // An array, not a Map: torch numbers memo slots 0, 1, 2... (a sparse hostile index only makes it slower).
  const memo: unknown[] = [];
  let memoCount = 0;
  // Plain Sets, not WeakSets: they die with this call, and WeakSets cost the GC extra work per entry.
  const built = new Set<object>();
  // Tuples and lists are both arrays (tuples are far more common); only lists may be appended to.
  const lists = new Set<unknown[]>();

  const fail = (problem: string): never => {
    throw new CheckpointError(opts.file, `${opts.where}: ${problem} (${opName(op)} at byte ${opPos})`);
  };
  const need = (n: number): number => {
    if (pos + n > bytes.length) fail("truncated pickle");
    const at = pos;
    pos += n;
    return at;
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail("stack underflow");
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = marks.pop();
    if (prev === undefined) fail("no MARK on the stack");
    stack = prev as unknown[];
    return items;
  };
  const text = (n: number): string => {
    const at = need(n);
    // Keys are ASCII: building them in JS avoids a decoder call per string (a large part of the parse time).
    if (n <= 512) {
      let i = at;
      while (i < at + n && bytes[i] < 0x80) i++;
      if (i === at + n) {
        return String.fromCharCode.apply(null, bytes.subarray(at, at + n) as unknown as number[]);
      }
    }
    try {
      return utf8.decode(bytes.subarray(at, at + n));
    } catch {
      return fail("string is not valid UTF-8");
    }
  };
  const line = (): string => {
    const len = bytes.subarray(pos, pos + MAX_GLOBAL_NAME + 1).indexOf(0x0a);
    if (len < 0) fail("unterminated or overlong GLOBAL name");
    const s = text(len);
    pos++;
    return s;
  };
  const resolveGlobal = (module: string, name: string): PickleGlobal => {
    const g = opts.globals.get(`${module}.${name}`);
    if (!g || g.module !== module || !isGlobal(g)) fail(`global '${module}.${name}' is not allowed`);
    return g as PickleGlobal;
  };
  const memoGet = (i: number): unknown => {
    const v = memo[i]; // never undefined once set: pickled values are null at most
    return v === undefined ? fail(`memo entry ${i} is missing`) : v;
  };
  const memoSet = (i: number): void => {
    if (memo[i] === undefined) memoCount++;
    memo[i] = top();
  };
  const dictOnTop = (): PickleDict => {
    const d = top();
    if (!(d instanceof Map)) fail("target is not a dict");
    return d as PickleDict;
  };
  const listOnTop = (): unknown[] => {
    const l = top();
    if (!Array.isArray(l) || !lists.has(l)) fail("target is not a list");
    return l as unknown[];
  };
  const signedLE = (at: number, n: number): number | bigint => {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
    if (n > 0 && bytes[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  while (true) {
    opPos = pos;
    if (pos >= bytes.length) {
      op = 0;
      return fail("truncated pickle: no STOP");
    }
    op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = bytes[need(1)];
        if (v > HIGHEST_PROTOCOL) fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: // FRAME: framing is only a buffering hint
        need(8);
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(dv.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(bytes[need(1)]);
        break;
      case 0x4d: // BININT2
        stack.push(dv.getUint16(need(2), true));
        break;
      case 0x8a: { // LONG1
        const n = bytes[need(1)];
        if (n > MAX_LONG_BYTES) fail(`integer of ${n} bytes is too wide`);
        stack.push(signedLE(need(n), n));
        break;
      }
      case 0x8b: { // LONG4
        const n = dv.getUint32(need(4), true);
        if (n > MAX_LONG_BYTES) fail(`integer of ${n} bytes is too wide`);
        stack.push(signedLE(need(n), n));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        stack.push(dv.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(text(dv.getUint32(need(4), true)));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(bytes[need(1)]));
        break;
      case 0x8d: { // BINUNICODE8
        const n = dv.getBigUint64(need(8), true);
        if (n > BigInt(bytes.length)) fail("truncated pickle");
        stack.push(text(Number(n)));
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: { // EMPTY_LIST
        const l: unknown[] = [];
        lists.add(l);
        stack.push(l);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: { // TUPLE
        const items = popMark(); // before reading `stack`: popMark replaces it
        stack.push(items);
        break;
      }
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x71: // BINPUT
        memoSet(bytes[need(1)]);
        break;
      case 0x72: // LONG_BINPUT
        memoSet(dv.getUint32(need(4), true));
        break;
      case 0x94: // MEMOIZE
        memoSet(memoCount);
        break;
      case 0x68: // BINGET
        stack.push(memoGet(bytes[need(1)]));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(dv.getUint32(need(4), true)));
        break;
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(resolveGlobal(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("module and name must be strings");
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(opts.persistentLoad(pop()));
        break;
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        if (!isGlobal(fn) || !fn.call) fail(`${describe(fn)} cannot be called`);
        if (!Array.isArray(args)) fail("arguments are not a tuple");
        const g = fn as PickleGlobal;
        const value = g.call!(args as unknown[]);
        if (g.buildable && typeof value === "object" && value !== null) built.add(value);
        stack.push(value);
        break;
      }
      case 0x62: { // BUILD: only tolerated on OrderedDicts (torch sets `_metadata` on state dicts)
        pop();
        const obj = top();
        if (typeof obj !== "object" || obj === null || !built.has(obj)) {
          fail(`cannot set state on ${describe(obj)}`);
        }
        break;
      }
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        dictOnTop().set(key, value);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail("odd number of items");
        const d = dictOnTop();
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x61: { // APPEND
        const value = pop();
        listOnTop().push(value);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = listOnTop();
        for (const it of items) l.push(it);
        break;
      }
      default:
        return fail("opcode not allowed");
    }
  }
}

/** Every global made by `pickleGlobal`: pickled data can never forge one, whatever its shape. */
const GLOBALS = new WeakSet<object>();

function isGlobal(v: unknown): v is PickleGlobal {
  return typeof v === "object" && v !== null && GLOBALS.has(v);
}

function describe(v: unknown): string {
  if (isGlobal(v)) return `global '${v.module}.${v.name}'`;
  if (v instanceof Map) return "a dict";
  if (Array.isArray(v)) return "a tuple or list";
  return v === null ? "None" : `a ${typeof v}`;
}

/** Builds an allowlist entry for `UnpickleOptions.globals` (only these count as globals). */
export function pickleGlobal(
  module: string,
  name: string,
  call?: (args: readonly unknown[]) => unknown,
  buildable = false,
): PickleGlobal {
  const g = Object.freeze({ module, name, call, buildable });
  GLOBALS.add(g);
  return g;
}
