import assert from "node:assert/strict";
import { openCheckpoint, parseCheckpoint } from "../src/weights/checkpoint.ts";
import { readTensorBytes, readTensorF32 } from "../src/weights/convert.ts";
import { MAX_HEADER_BYTES } from "../src/weights/safetensors.ts";
import { MemorySource } from "../src/weights/source.ts";
import {
  concat,
  expectCheckpointError,
  f32Bytes,
  makeSafetensors,
  writeTemp,
} from "./helpers/weights_fixtures.ts";
import { tinyModel } from "./helpers/shared.ts";

const DATA = concat([f32Bytes([1, 2, 3, 4, 5, 6]), new Uint8Array(new Uint16Array([0x3c00, 0x4000]).buffer)]);
const HEADER = {
  __metadata__: { format: "pt" },
  b: { dtype: "F16", shape: [2], data_offsets: [24, 28] },
  a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
  empty: { dtype: "F32", shape: [0, 4], data_offsets: [24, 24] },
};

function parse(bytes: Uint8Array) {
  return parseCheckpoint(new MemorySource("/tmp/x.safetensors", bytes));
}

function withEntry(name: string, entry: unknown, data = DATA): Uint8Array {
  return makeSafetensors({ ...HEADER, [name]: entry }, data);
}

Deno.test("safetensors: header entries become refs into the file, sorted by offset", () => {
  const path = writeTemp("m.safetensors", makeSafetensors(HEADER, DATA));
  const c = openCheckpoint(path);
  assert.equal(c.format, "safetensors");
  assert.deepEqual(c.metadata, { format: "pt" });
  assert.deepEqual([...c.tensors.keys()], ["a", "empty", "b"]);
  const a = c.tensors.get("a")!;
  const headerLen = new TextEncoder().encode(JSON.stringify(HEADER)).length;
  assert.equal(a.offset, 8 + headerLen);
  assert.equal(a.length, 24);
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual([...readTensorF32(a)], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...readTensorF32(c.tensors.get("b")!)], [1, 2]);
  assert.equal(readTensorF32(c.tensors.get("empty")!).length, 0);
  assert.deepEqual(readTensorBytes(a), DATA.subarray(0, 24));
});

Deno.test("safetensors: tiny reference checkpoints open", () => {
  const c = openCheckpoint(tinyModel("hallo", "net.safetensors"));
  assert.equal(c.tensors.size, 1688);
  const vae = openCheckpoint(tinyModel("sd-vae-ft-mse", "diffusion_pytorch_model.safetensors"));
  assert.ok(vae.tensors.has("encoder.conv_in.weight"));
});

Deno.test("safetensors: header length larger than the file or over the limit", () => {
  expectCheckpointError(
    () => parse(makeSafetensors(HEADER, DATA, { headerLength: 10_000 })),
    /^\/tmp\/x\.safetensors: safetensors header length 10000 is larger than the file \(\d+ bytes\)$/,
  );
  expectCheckpointError(
    () => parse(makeSafetensors(HEADER, DATA, { headerLength: MAX_HEADER_BYTES + 1 })),
    /exceeds the 100000000 byte limit/,
  );
  // 2^64 - 1 as a u64: must not be mistaken for a small number
  const huge = makeSafetensors(HEADER, DATA);
  huge.fill(0xff, 0, 8);
  expectCheckpointError(() => parse(huge), /header length 18446744073709551615 exceeds/);
  expectCheckpointError(() => parse(new Uint8Array(5)), /too short/);
});

Deno.test("safetensors: offsets past the end, reversed, or not matching the shape", () => {
  expectCheckpointError(
    () => parse(withEntry("c", { dtype: "F32", shape: [1], data_offsets: [28, 32] })),
    /tensor 'c': data_offsets end 32 is past the end of the data \(28 bytes\)/,
  );
  expectCheckpointError(
    () => parse(withEntry("c", { dtype: "F32", shape: [0], data_offsets: [8, 4] })),
    /reversed/,
  );
  expectCheckpointError(
    () => parse(withEntry("c", { dtype: "F32", shape: [3], data_offsets: [0, 8] })),
    /tensor 'c': shape \[3\] of F32 needs 12 bytes but data_offsets span 8/,
  );
  expectCheckpointError(
    () => parse(withEntry("c", { dtype: "F32", shape: [-1], data_offsets: [0, 4] })),
    /bad shape/,
  );
  expectCheckpointError(
    () => parse(withEntry("c", { dtype: "F32", shape: [1], data_offsets: [0.5, 4] })),
    /bad data_offsets/,
  );
  expectCheckpointError(
    () => parse(withEntry("c", { dtype: "F32", shape: [2 ** 40, 2 ** 20], data_offsets: [0, 4] })),
    /needs .* bytes but/,
  );
});

Deno.test("safetensors: overlapping tensors are refused", () => {
  expectCheckpointError(
    () => parse(withEntry("c", { dtype: "F32", shape: [2], data_offsets: [20, 28] })),
    /tensors '(a|c)' and '(c|b)' overlap/,
  );
  expectCheckpointError(
    () => parse(withEntry("c", { dtype: "F32", shape: [1], data_offsets: [4, 8] })),
    /tensors 'a' and 'c' overlap/,
  );
});

Deno.test("safetensors: bad JSON, bad UTF-8 and non-object headers", () => {
  expectCheckpointError(
    () => parse(makeSafetensors('{"a": {"dtype": "F32",', DATA)),
    /header is not valid JSON/,
  );
  expectCheckpointError(() => parse(makeSafetensors("[1, 2]", DATA)), /does not start with '\{'/);
  expectCheckpointError(() => parse(makeSafetensors('{"a": 1}', DATA)), /tensor 'a': entry is not an object/);
  expectCheckpointError(
    () => parse(makeSafetensors('{"__metadata__": {"k": 1}}', DATA)),
    /__metadata__ value of 'k'/,
  );
  const badUtf8 = concat([
    new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0]),
    new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
  ]);
  expectCheckpointError(() => parse(badUtf8), /not valid UTF-8/);
  // a header full of newlines and control characters still gives a one-line message
  expectCheckpointError(
    () => parse(makeSafetensors('{"a\\n\\u0007b": 5}', DATA)),
    /tensor 'a\\nb|tensor 'a\\n\\u0007b'/,
  );
});

Deno.test("safetensors: unknown and unsupported dtype names are refused", () => {
  for (const dtype of ["F33", "float32", "f32", "F8_E4M3", "C64", "", 4, null]) {
    expectCheckpointError(
      () => parse(withEntry("c", { dtype, shape: [0], data_offsets: [28, 28] })),
      /tensor 'c': unknown or unsupported dtype/,
    );
  }
  // inherited object properties are not dtypes
  expectCheckpointError(
    () => parse(withEntry("c", { dtype: "toString", shape: [0], data_offsets: [28, 28] })),
    /unsupported dtype "toString"/,
  );
});
