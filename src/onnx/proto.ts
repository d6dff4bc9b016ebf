/**
 * A minimal protobuf writer for the ONNX ModelProto subset hallo-lab emits.
 * Field numbers follow onnx/onnx.proto (IR version 10). Hand-written because the
 * schema subset is small and encoding a 3000-node graph takes milliseconds.
 */

/** ONNX TensorProto.DataType values used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

const textEncoder = new TextEncoder();

/** Growable byte sink with protobuf primitives. */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    this.reserve(10);
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
  }

  /** Fast path for non-negative safe integers, the common case. */
  uvarint(v: number): void {
    if (v < 0 || !Number.isSafeInteger(v)) return this.varint(v);
    this.reserve(10);
    while (v >= 0x80) {
      this.buf[this.len++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.len++] = v;
  }

  tag(field: number, wire: number): void {
    this.uvarint(field * 8 + wire);
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.uvarint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, textEncoder.encode(s));
  }

  int(field: number, v: number | bigint): void {
    this.tag(field, 0);
    if (typeof v === "number" && v >= 0) this.uvarint(v);
    else this.varint(v);
  }

  float(field: number, v: number): void {
    this.tag(field, 5);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
  }

  message(field: number, write: (w: Writer) => void): void {
    const inner = new Writer();
    write(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** One dimension of a value's shape: a fixed size or a symbolic name. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: DataTypeCode;
  /** `undefined` leaves the shape unspecified (rank unknown). */
  dims?: readonly Dim[];
}

export type AttrValue =
  | { kind: "int"; v: number }
  | { kind: "float"; v: number }
  | { kind: "string"; v: string }
  | { kind: "ints"; v: readonly number[] }
  | { kind: "floats"; v: readonly number[] }
  | { kind: "tensor"; v: TensorInfo };

export interface NodeInfo {
  opType: string;
  domain?: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs?: Record<string, AttrValue>;
}

/** An initializer: inline raw bytes, or external data at (location, offset, length). */
export interface TensorInfo {
  name: string;
  elemType: DataTypeCode;
  dims: readonly number[];
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export interface ModelInfo {
  graphName: string;
  nodes: readonly NodeInfo[];
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
  initializers: readonly TensorInfo[];
  opsets: Readonly<Record<string, number>>;
  producer: string;
  docString?: string;
  metadata?: Readonly<Record<string, string>>;
}

function writeTensor(w: Writer, t: TensorInfo): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.elemType);
  w.string(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  if (t.external) {
    const entries: [string, string][] = [
      ["location", t.external.location],
      ["offset", String(t.external.offset)],
      ["length", String(t.external.length)],
    ];
    for (const [k, v] of entries) {
      w.message(13, (e) => {
        e.string(1, k);
        e.string(2, v);
      });
    }
    w.int(14, 1);
  }
}

function writeValueInfo(w: Writer, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tt) => {
      tt.int(1, v.elemType);
      if (v.dims) {
        const dims = v.dims;
        tt.message(2, (shape) => {
          for (const d of dims) {
            shape.message(1, (dim) => typeof d === "number" ? dim.int(1, d) : dim.string(2, d));
          }
        });
      }
    }));
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function writeAttr(w: Writer, name: string, a: AttrValue): void {
  w.string(1, name);
  switch (a.kind) {
    case "float":
      w.float(2, a.v);
      break;
    case "int":
      w.int(3, a.v);
      break;
    case "string":
      w.string(4, a.v);
      break;
    case "tensor":
      w.message(5, (t) => writeTensor(t, a.v));
      break;
    case "floats":
      for (const f of a.v) w.float(7, f);
      break;
    case "ints":
      for (const i of a.v) w.int(8, i);
      break;
  }
  w.int(20, ATTR_TYPE[a.kind]);
}

function writeNode(w: Writer, n: NodeInfo): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, a] of Object.entries(n.attrs ?? {})) w.message(5, (x) => writeAttr(x, k, a));
  if (n.domain) w.string(7, n.domain);
}

/** Serialises a model to ONNX protobuf bytes. */
export function encodeModel(m: ModelInfo): Uint8Array {
  const w = new Writer();
  w.int(1, 10); // ir_version
  w.string(2, m.producer);
  for (const [domain, version] of Object.entries(m.opsets)) {
    w.message(8, (o) => {
      if (domain) o.string(1, domain);
      o.int(2, version);
    });
  }
  if (m.docString) w.string(6, m.docString);
  w.message(7, (g) => {
    for (const n of m.nodes) g.message(1, (x) => writeNode(x, n));
    g.string(2, m.graphName);
    for (const t of m.initializers) g.message(5, (x) => writeTensor(x, t));
    for (const v of m.inputs) g.message(11, (x) => writeValueInfo(x, v));
    for (const v of m.outputs) g.message(12, (x) => writeValueInfo(x, v));
  });
  for (const [k, v] of Object.entries(m.metadata ?? {})) {
    w.message(14, (e) => {
      e.string(1, k);
      e.string(2, v);
    });
  }
  return w.finish();
}
