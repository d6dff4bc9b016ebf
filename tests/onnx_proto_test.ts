/**
 * The ONNX protobuf writer (src/onnx/proto.ts), decoded back with a tiny test-only protobuf reader written from
 * the wire format spec, plus a few byte sequences known from the spec (varints, negative int64, floats).
 */
import assert from "node:assert/strict";
import { DataType, encodeModel, type ModelInfo } from "../src/onnx/proto.ts";

// ---------------------------------------------------------------- a tiny protobuf reader

type Field = { wire: 0; v: bigint } | { wire: 5; v: Uint8Array } | { wire: 1; v: Uint8Array } | {
  wire: 2;
  v: Uint8Array;
};

/** Decodes one message level into field number -> occurrences (in order). */
function decode(buf: Uint8Array): Map<number, Field[]> {
  const out = new Map<number, Field[]>();
  let i = 0;
  const varint = (): bigint => {
    let x = 0n, shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error("truncated varint");
      const b = buf[i++];
      x |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return x;
      shift += 7n;
      if (shift > 63n) throw new Error("varint longer than 10 bytes");
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >> 3, wire = key & 7;
    let f: Field;
    if (wire === 0) f = { wire, v: varint() };
    else if (wire === 5) f = { wire, v: buf.subarray(i, i += 4) };
    else if (wire === 1) f = { wire, v: buf.subarray(i, i += 8) };
    else if (wire === 2) {
      const n = Number(varint());
      f = { wire, v: buf.subarray(i, i += n) };
    } else throw new Error(`unexpected wire type ${wire}`);
    if (i > buf.length) throw new Error("truncated field");
    if (!out.has(field)) out.set(field, []);
    out.get(field)!.push(f);
  }
  return out;
}

const utf8 = new TextDecoder();
type Msg = Map<number, Field[]>;
const all = (m: Msg, f: number): Field[] => m.get(f) ?? [];
/** int64 fields, sign restored. */
const ints = (m: Msg, f: number) =>
  all(m, f).map((x) => {
    assert.equal(x.wire, 0, `field ${f} is not a varint`);
    return Number(BigInt.asIntN(64, x.v as bigint));
  });
const int = (m: Msg, f: number) => ints(m, f)[0];
const strs = (m: Msg, f: number) => all(m, f).map((x) => utf8.decode(x.v as Uint8Array));
const str = (m: Msg, f: number) => strs(m, f)[0];
const msgs = (m: Msg, f: number) => all(m, f).map((x) => decode(x.v as Uint8Array));
const msg = (m: Msg, f: number) => msgs(m, f)[0];
const floats = (m: Msg, f: number) =>
  all(m, f).map((x) => {
    assert.equal(x.wire, 5, `field ${f} is not fixed32`);
    const b = x.v as Uint8Array;
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
  });

// ---------------------------------------------------------------- the model under test

const raw = new Uint8Array(BigInt64Array.from([-1n, 3n]).buffer);

const MODEL: ModelInfo = {
  graphName: "g",
  producer: "hallo-lab",
  docString: "doc",
  opsets: { "": 21, "com.microsoft": 1 },
  metadata: { external_root: "/w", k: "v" },
  inputs: [
    { name: "x", elemType: DataType.FLOAT, dims: ["batch", 3, 0] },
    { name: "y", elemType: DataType.INT64 },
  ],
  outputs: [{ name: "down_blocks.0.attn1.probs", elemType: DataType.FLOAT16, dims: [2] }],
  initializers: [
    { name: "shape", elemType: DataType.INT64, dims: [2], raw },
    {
      name: "imageproj.proj.weight",
      elemType: DataType.FLOAT,
      dims: [64, 24],
      external: { location: "hallo/net.pth", offset: 7726528, length: 6144 },
    },
    // offsets past 2^32 must survive (multi-GB checkpoints)
    {
      name: "big",
      elemType: DataType.BFLOAT16,
      dims: [3],
      external: { location: "a", offset: 2 ** 33 + 5, length: 6 },
    },
  ],
  nodes: [
    {
      opType: "Slice",
      name: "mid/Slice_0",
      inputs: ["x", "", "shape"],
      outputs: ["mid"],
      attrs: {
        neg: { kind: "int", v: -1 },
        big: { kind: "int", v: 2 ** 40 },
        negbig: { kind: "int", v: -(2 ** 40) },
        f: { kind: "float", v: 0.1 },
        s: { kind: "string", v: "nearest" },
        is: { kind: "ints", v: [-1, 0, 127, 128, 300, 2 ** 31, -(2 ** 33)] },
        fs: { kind: "floats", v: [1.5, -2.25, 1e-6] },
        t: { kind: "tensor", v: { name: "c", elemType: DataType.INT64, dims: [2], raw } },
      },
    },
    {
      opType: "MultiHeadAttention",
      domain: "com.microsoft",
      name: "attn/MHA_1",
      inputs: ["a", "b", "c"],
      outputs: ["o"],
    },
  ],
};

Deno.test("encodeModel decodes back: header, opsets, metadata, value infos", () => {
  const m = decode(encodeModel(MODEL));
  assert.equal(int(m, 1), 10, "ir_version");
  assert.equal(str(m, 2), "hallo-lab");
  assert.equal(str(m, 6), "doc");
  const opsets = msgs(m, 8).map((o) => [str(o, 1) ?? "", int(o, 2)]);
  assert.deepEqual(opsets, [["", 21], ["com.microsoft", 1]]);
  const meta = msgs(m, 14).map((e) => [str(e, 1), str(e, 2)]);
  assert.deepEqual(meta, [["external_root", "/w"], ["k", "v"]]);

  const g = msg(m, 7);
  assert.equal(str(g, 2), "g");
  const vi = (v: Msg) => {
    const tt = msg(msg(v, 2), 1);
    const shape = msg(tt, 2);
    return {
      name: str(v, 1),
      elem: int(tt, 1),
      dims: shape ? msgs(shape, 1).map((d) => d.has(1) ? int(d, 1) : str(d, 2)) : undefined,
    };
  };
  assert.deepEqual(msgs(g, 11).map(vi), [
    { name: "x", elem: DataType.FLOAT, dims: ["batch", 3, 0] },
    { name: "y", elem: DataType.INT64, dims: undefined },
  ]);
  assert.deepEqual(msgs(g, 12).map(vi), [{
    name: "down_blocks.0.attn1.probs",
    elem: DataType.FLOAT16,
    dims: [2],
  }]);
});

Deno.test("encodeModel decodes back: nodes, every attribute kind, negative int64", () => {
  const g = msg(decode(encodeModel(MODEL)), 7);
  const nodes = msgs(g, 1);
  assert.equal(nodes.length, 2);
  const [slice, mha] = nodes;
  assert.deepEqual(strs(slice, 1), ["x", "", "shape"]);
  assert.deepEqual(strs(slice, 2), ["mid"]);
  assert.equal(str(slice, 3), "mid/Slice_0");
  assert.equal(str(slice, 4), "Slice");
  assert.equal(slice.has(7), false, "default domain is omitted");
  assert.equal(str(mha, 7), "com.microsoft");
  assert.equal(str(mha, 4), "MultiHeadAttention");

  const attrs = new Map(msgs(slice, 5).map((a) => [str(a, 1), a]));
  const type = (n: string) => int(attrs.get(n)!, 20);
  assert.equal(int(attrs.get("neg")!, 3), -1);
  assert.equal(int(attrs.get("big")!, 3), 2 ** 40);
  assert.equal(int(attrs.get("negbig")!, 3), -(2 ** 40));
  assert.equal(type("neg"), 2);
  assert.equal(floats(attrs.get("f")!, 2)[0], Math.fround(0.1));
  assert.equal(type("f"), 1);
  assert.equal(str(attrs.get("s")!, 4), "nearest");
  assert.equal(type("s"), 3);
  assert.deepEqual(ints(attrs.get("is")!, 8), [-1, 0, 127, 128, 300, 2 ** 31, -(2 ** 33)]);
  assert.equal(type("is"), 7);
  assert.deepEqual(floats(attrs.get("fs")!, 7), [1.5, -2.25, Math.fround(1e-6)]);
  assert.equal(type("fs"), 6);
  const t = msg(attrs.get("t")!, 5);
  assert.deepEqual(ints(t, 1), [2]);
  assert.equal(int(t, 2), DataType.INT64);
  assert.deepEqual([...new BigInt64Array((all(t, 9)[0].v as Uint8Array).slice().buffer)], [-1n, 3n]);
  assert.equal(type("t"), 4);
});

Deno.test("encodeModel decodes back: raw and external-data initializers", () => {
  const g = msg(decode(encodeModel(MODEL)), 7);
  const inits = msgs(g, 5);
  assert.equal(inits.length, 3);
  const [shape, weight, big] = inits;
  assert.equal(str(shape, 8), "shape");
  assert.deepEqual(ints(shape, 1), [2]);
  assert.equal(int(shape, 2), DataType.INT64);
  assert.deepEqual(all(shape, 9)[0].v, raw);
  assert.equal(shape.has(14), false, "inline tensors are not external");

  assert.equal(str(weight, 8), "imageproj.proj.weight");
  assert.deepEqual(ints(weight, 1), [64, 24]);
  assert.equal(int(weight, 2), DataType.FLOAT);
  assert.equal(weight.has(9), false, "external tensors carry no raw data");
  assert.equal(int(weight, 14), 1, "data_location EXTERNAL");
  const entries = (t: Msg) => Object.fromEntries(msgs(t, 13).map((e) => [str(e, 1), str(e, 2)]));
  assert.deepEqual(entries(weight), { location: "hallo/net.pth", offset: "7726528", length: "6144" });
  assert.deepEqual(entries(big), { location: "a", offset: String(2 ** 33 + 5), length: "6" });
  assert.equal(int(big, 2), DataType.BFLOAT16);
});

/** Index of `needle` in `hay`, or -1. */
function indexOf(hay: Uint8Array, needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

Deno.test("known bytes: model header, varints, negative int64 as 10 bytes, little-endian floats", () => {
  const small: ModelInfo = {
    graphName: "g",
    producer: "p",
    opsets: {},
    inputs: [],
    outputs: [],
    initializers: [],
    nodes: [{
      opType: "A",
      name: "n",
      inputs: [],
      outputs: [],
      attrs: { a: { kind: "int", v: -1 }, b: { kind: "int", v: 300 }, c: { kind: "float", v: 0.1 } },
    }],
  };
  const bytes = encodeModel(small);
  // ir_version 10, producer "p", then graph (field 7, length-delimited)
  assert.deepEqual([...bytes.subarray(0, 5)], [0x08, 0x0a, 0x12, 0x01, 0x70]);
  assert.equal(bytes[5], 0x3a);
  // attribute a: name "a", i = -1 (field 3: 0x18, ten bytes), type INT (field 20: 0xa0 0x01, 2)
  const a = [
    0x0a,
    0x01,
    0x61,
    0x18,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0x01,
    0xa0,
    0x01,
    0x02,
  ];
  assert.ok(indexOf(bytes, [0x2a, a.length, ...a]) > 0, "attribute a = -1");
  // 300 = 0xac 0x02
  assert.ok(indexOf(bytes, [0x0a, 0x01, 0x62, 0x18, 0xac, 0x02, 0xa0, 0x01, 0x02]) > 0, "attribute b = 300");
  // 0.1f = 0x3dcccccd little-endian, field 2 fixed32 (0x15), type FLOAT (1)
  assert.ok(
    indexOf(bytes, [0x0a, 0x01, 0x63, 0x15, 0xcd, 0xcc, 0xcc, 0x3d, 0xa0, 0x01, 0x01]) > 0,
    "attribute c",
  );
  // the reader agrees with itself on the whole thing
  const n = msg(msg(decode(bytes), 7), 1);
  assert.equal(str(n, 4), "A");
});

Deno.test("large models grow the buffer without corruption", () => {
  const nodes = Array.from({ length: 3000 }, (_, i) => ({
    opType: "Add",
    name: `down_blocks.${i % 4}.resnets.${i}/Add_${i}`,
    inputs: [`v${i}`, `w${i}`],
    outputs: [`v${i + 1}`],
    attrs: { axis: { kind: "int" as const, v: 1 - i } },
  }));
  const t0 = performance.now();
  const bytes = encodeModel({ ...MODEL, nodes, initializers: [] });
  const ms = performance.now() - t0;
  const decoded = msgs(msg(decode(bytes), 7), 1);
  assert.equal(decoded.length, 3000);
  for (const i of [0, 1, 1234, 2999]) {
    assert.equal(str(decoded[i], 3), nodes[i].name);
    assert.deepEqual(strs(decoded[i], 1), nodes[i].inputs);
    assert.equal(int(msg(decoded[i], 5), 3), 1 - i);
  }
  console.log(`  3000 nodes encoded in ${ms.toFixed(1)} ms (${bytes.length} bytes)`);
});
