import assert from "node:assert/strict";
import { openCheckpoint, parseCheckpoint } from "../src/weights/checkpoint.ts";
import { readTensorBytes, readTensorF32 } from "../src/weights/convert.ts";
import { MemorySource } from "../src/weights/source.ts";
import {
  expectCheckpointError,
  f32Bytes,
  makePth,
  makeZip,
  type PickledTensor,
  stateDictPickle,
  tempFolder,
  writeTemp,
} from "./helpers/weights_fixtures.ts";
import { tinyModel } from "./helpers/shared.ts";

function pth(tensors: PickledTensor[], storages: Record<string, Uint8Array>, opts = {}): string {
  return writeTemp("model.pth", makePth(stateDictPickle(tensors), storages, opts));
}

Deno.test("pth: tiny net.pth has the 1,688 tensors of net.safetensors with the same shapes and bytes", () => {
  const a = openCheckpoint(tinyModel("hallo", "net.pth"));
  const b = openCheckpoint(tinyModel("hallo", "net.safetensors"));
  assert.equal(a.format, "pth");
  assert.equal(a.tensors.size, 1688);
  assert.deepEqual([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
  for (const [name, ra] of a.tensors) {
    const rb = b.tensors.get(name)!;
    assert.deepEqual(ra.shape, rb.shape, name);
    assert.equal(ra.dtype, rb.dtype, name);
    assert.deepEqual(readTensorBytes(ra), readTensorBytes(rb), name);
  }
});

Deno.test("pth: zero-copy refs point at the storage bytes, with storage offsets applied", () => {
  const storage = f32Bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const path = pth([
    { name: "w", storage: "FloatStorage", key: "0", storageNumel: 10, size: [2, 3] },
    { name: "tail", storage: "FloatStorage", key: "0", storageNumel: 10, offset: 6, size: [4] },
    { name: "p", storage: "FloatStorage", key: "1", storageNumel: 2, size: [2], parameter: true },
    { name: "scalar", storage: "FloatStorage", key: "1", storageNumel: 2, offset: 1, size: [] },
    { name: "col", storage: "FloatStorage", key: "0", storageNumel: 10, size: [3, 1], stride: [1, 7] },
  ], { "0": storage, "1": f32Bytes([-1, 0.5]) });
  const c = openCheckpoint(path);
  assert.deepEqual([...c.tensors.keys()], ["w", "tail", "p", "scalar", "col"]);
  assert.deepEqual([...readTensorF32(c.tensors.get("w")!)], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...readTensorF32(c.tensors.get("tail")!)], [6, 7, 8, 9]);
  assert.deepEqual([...readTensorF32(c.tensors.get("p")!)], [-1, 0.5]);
  assert.deepEqual([...readTensorF32(c.tensors.get("scalar")!)], [0.5]);
  assert.deepEqual([...readTensorF32(c.tensors.get("col")!)], [0, 1, 2]);
  const tail = c.tensors.get("tail")!;
  assert.equal(tail.offset, c.tensors.get("w")!.offset + 24);
  assert.equal(tail.length, 16);
  // data are referenced in place: the bytes at the offset in the file are the storage bytes
  const file = Deno.readFileSync(path);
  assert.deepEqual(file.subarray(tail.offset, tail.offset + 16), storage.subarray(24, 40));
  assert.equal(tail.offset % 4, 0);
});

Deno.test("pth: F16, BF16 and F64 storages convert to float32", () => {
  const half = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001, 0x7c00]).buffer);
  const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040, 0x4049]).buffer);
  const f64 = new Uint8Array(Float64Array.from([1.5, -2.25, 1e-3]).buffer);
  const c = openCheckpoint(pth([
    { name: "h", storage: "HalfStorage", key: "0", storageNumel: 5, size: [5] },
    { name: "b", storage: "BFloat16Storage", key: "1", storageNumel: 3, size: [3] },
    { name: "d", storage: "DoubleStorage", key: "2", storageNumel: 3, size: [3] },
    { name: "i", storage: "LongStorage", key: "3", storageNumel: 1, size: [1] },
  ], { "0": half, "1": bf16, "2": f64, "3": new Uint8Array(8) }));
  assert.deepEqual([...readTensorF32(c.tensors.get("h")!)], [1, -2, 0.333251953125, 2 ** -24, Infinity]);
  assert.deepEqual([...readTensorF32(c.tensors.get("b")!)], [1, -3, 3.140625]);
  assert.deepEqual([...readTensorF32(c.tensors.get("d")!)], [1.5, -2.25, Math.fround(1e-3)]);
  assert.equal(c.tensors.get("i")!.dtype, "I64");
  expectCheckpointError(() => readTensorF32(c.tensors.get("i")!), /'i' is I64, not a float type/);
});

Deno.test("pth: ZIP64 archives (as torch writes checkpoints over 4 GB) are read", () => {
  const c = openCheckpoint(pth(
    [{ name: "w", storage: "FloatStorage", key: "0", storageNumel: 3, size: [3] }],
    { "0": f32Bytes([1, 2, 3]) },
    { zip64: true, archive: "net" },
  ));
  assert.deepEqual([...readTensorF32(c.tensors.get("w")!)], [1, 2, 3]);
});

Deno.test("pth: non-contiguous views, missing or short storages and overruns are refused", () => {
  const s = { "0": f32Bytes([1, 2, 3, 4, 5, 6]) };
  const t = { name: "w", storage: "FloatStorage", key: "0", storageNumel: 6 };
  expectCheckpointError(
    () => openCheckpoint(pth([{ ...t, size: [2, 3], stride: [1, 2] }], s)),
    /'w' is a non-contiguous view/,
  );
  expectCheckpointError(
    () => openCheckpoint(pth([{ ...t, size: [4], offset: 3 }], s)),
    /'w'.*overruns its storage/,
  );
  expectCheckpointError(
    () => openCheckpoint(pth([{ ...t, key: "9", size: [2] }], s)),
    /storage entry 'archive\/data\/9' is missing/,
  );
  expectCheckpointError(
    () => openCheckpoint(pth([{ ...t, storageNumel: 8, size: [8] }], s)),
    /'archive\/data\/0' has 24 bytes, expected 32/,
  );
  expectCheckpointError(
    () => openCheckpoint(pth([{ ...t, storage: "ComplexFloatStorage", size: [3] }], s)),
    /global 'torch.ComplexFloatStorage' is not allowed/,
  );
});

Deno.test("pth: a compressed entry holding tensor data is a clear error naming it", () => {
  const tensors = [{ name: "w", storage: "FloatStorage", key: "0", storageNumel: 64, size: [64] }];
  const e = expectCheckpointError(
    () => openCheckpoint(pth(tensors, { "0": new Uint8Array(256) }, { deflate: ["0"] })),
    /zip entry 'archive\/data\/0' is compressed \(method 8\)/,
  );
  assert.match(e.message, /model\.pth: /);
  expectCheckpointError(
    () => openCheckpoint(pth(tensors, { "0": new Uint8Array(256) }, { deflate: ["data.pkl"] })),
    /'archive\/data.pkl' is compressed/,
  );
});

Deno.test("pth: truncated and damaged zips are clean errors", () => {
  const whole = makePth(
    stateDictPickle([{ name: "w", storage: "FloatStorage", key: "0", storageNumel: 4, size: [4] }]),
    { "0": f32Bytes([1, 2, 3, 4]) },
  );
  const parse = (b: Uint8Array) => parseCheckpoint(new MemorySource("/tmp/cut.pth", b));
  assert.equal(parse(whole).tensors.size, 1);
  for (const cut of [whole.length - 1, whole.length - 22, whole.length - 40, 200, 31, 4]) {
    expectCheckpointError(() => parse(whole.subarray(0, cut)), /^\/tmp\/cut\.pth: .*(zip|truncated|outside)/);
  }
  // also from disk, through openCheckpoint
  expectCheckpointError(
    () => openCheckpoint(writeTemp("cut.pth", whole.subarray(0, 300))),
    /cut\.pth: truncated or damaged zip/,
  );
  expectCheckpointError(
    () => parse(makeZip([{ name: "x/y.txt", data: new Uint8Array(3) }])),
    /no <archive>\/data\.pkl/,
  );
  expectCheckpointError(
    () => parse(makePth(stateDictPickle([]), {}, { byteorder: "big" })),
    /big-endian checkpoints are not supported/,
  );
  assert.equal(parse(makePth(stateDictPickle([]), {}, { byteorder: "little" })).tensors.size, 0);
});

Deno.test("checkpoint: unknown formats and missing files name the file", () => {
  expectCheckpointError(() => openCheckpoint("/nonexistent/x.pth"), /^\/nonexistent\/x\.pth: no such file$/);
  expectCheckpointError(
    () => openCheckpoint(writeTemp("notes.bin", new TextEncoder().encode("hello world"))),
    /notes\.bin: neither/,
  );
  expectCheckpointError(
    () => openCheckpoint(writeTemp("old.pth", Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc]))),
    /legacy \(pre-1\.6/,
  );
  expectCheckpointError(() => openCheckpoint(tempFolder()), /not a regular file/);
});
