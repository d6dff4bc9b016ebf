/**
 * Mutation fuzzing of the two tiny reference checkpoints: byte flips, interesting integers, truncations,
 * insertions and deletions, focused on the parts the readers interpret (safetensors header; zip end records,
 * central directory, local headers and data.pkl). Every parse must succeed or throw a CheckpointError.
 */
import assert from "node:assert/strict";
import { parseCheckpoint } from "../src/weights/checkpoint.ts";
import { CheckpointError } from "../src/weights/errors.ts";
import { type ByteSource, checkRange, MemorySource } from "../src/weights/source.ts";
import { readZipDirectory } from "../src/weights/zip.ts";
import { prng } from "./helpers/prng.ts";
import { tinyModel } from "./helpers/shared.ts";

/** Mutations per checkpoint: net.safetensors gets all in place; net.pth splits them between in-place
 * mutations anywhere it is interpreted and data.pkl insertions/deletions with the zip re-pointed. */
const MUTATIONS = 2000;
const SHIFT_MUTATIONS = 500;

/** A file as a list of byte segments, so a mutation of an 18 MB file costs no copy. */
class PatchedSource implements ByteSource {
  readonly size: number;
  constructor(readonly path: string, private readonly segs: Uint8Array[]) {
    this.size = segs.reduce((n, s) => n + s.length, 0);
  }
  read(offset: number, length: number): Uint8Array {
    checkRange(this.path, this.size, offset, length, "read");
    const out = new Uint8Array(length);
    let base = 0;
    for (const s of this.segs) {
      const lo = Math.max(offset, base);
      const hi = Math.min(offset + length, base + s.length);
      if (lo < hi) {
        if (lo === offset && hi === offset + length) return s.subarray(lo - base, hi - base);
        out.set(s.subarray(lo - base, hi - base), lo - offset);
      }
      base += s.length;
    }
    return out;
  }
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 0x10000, 64, 46, 22];

type Region = [number, number];
/** Mutations pick a group uniformly, then a region of it (e.g. "some local header"). */
type RegionGroup = Region[];

/** One random mutation of `bytes` inside one of `groups`. */
function mutate(
  bytes: Uint8Array,
  groups: RegionGroup[],
  rand: () => number,
): { segs: Uint8Array[]; what: string } {
  const int = (n: number) => Math.floor(rand() * n);
  const group = groups[int(groups.length)];
  const [lo, hi] = group[int(group.length)];
  const at = lo + int(Math.max(1, hi - lo));
  const head = bytes.subarray(0, at);
  switch (int(6)) {
    case 0: { // flip 1-4 bytes
      const k = 1 + int(4);
      const patch = bytes.slice(at, at + k).map((b) => b ^ (1 << int(8)) ^ (rand() < 0.3 ? int(256) : 0));
      return { segs: [head, patch, bytes.subarray(at + patch.length)], what: `flip ${k} at ${at}` };
    }
    case 1: { // an interesting 1/2/4/8-byte integer (sizes, offsets, counts)
      const w = [1, 2, 4, 8][int(4)];
      const v = INTERESTING[int(INTERESTING.length)];
      const patch = new Uint8Array(w);
      for (let i = 0; i < w; i++) patch[i] = i < 4 ? (v >>> (8 * i)) & 0xff : rand() < 0.5 ? 0 : 0xff;
      return { segs: [head, patch, bytes.subarray(at + w)], what: `int ${v} (${w} bytes) at ${at}` };
    }
    case 2: // truncate
      return { segs: [head], what: `truncate at ${at}` };
    case 3: { // insert random bytes
      const patch = Uint8Array.from({ length: 1 + int(16) }, () => int(256));
      return { segs: [head, patch, bytes.subarray(at)], what: `insert ${patch.length} at ${at}` };
    }
    case 4: { // delete a range
      const k = 1 + int(64);
      return { segs: [head, bytes.subarray(at + k)], what: `delete ${k} at ${at}` };
    }
    default: { // a pickle opcode or JSON punctuation dropped in
      const pool = [
        0x63,
        0x52,
        0x93,
        0x28,
        0x74,
        0x2e,
        0x71,
        0x68,
        0x62,
        0x51,
        0x7b,
        0x7d,
        0x22,
        0x5b,
        0x5d,
        0x2c,
        0x3a,
      ];
      const patch = Uint8Array.of(pool[int(pool.length)]);
      return {
        segs: [head, patch, bytes.subarray(at + 1)],
        what: `opcode/punct 0x${patch[0].toString(16)} at ${at}`,
      };
    }
  }
}

/** One fuzz case: a mutated file as segments, and a description for reproducing a failure. */
interface Case {
  segs: Uint8Array[];
  what: string;
}

/** Parses `count` cases from `make`; each must parse or throw a one-line CheckpointError, quickly. */
function fuzz(label: string, path: string, count: number, make: () => Case): void {
  const errors = new Map<string, number>();
  let parsed = 0;
  let slowest = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const { segs, what } = make();
    const t = performance.now();
    try {
      parseCheckpoint(new PatchedSource(path, segs));
      parsed++;
    } catch (e) {
      if (!(e instanceof CheckpointError)) {
        throw new Error(`${label}: case ${i} (${what}) escaped as ${(e as Error)?.name}: ${e}`, { cause: e });
      }
      assert.doesNotMatch(e.message, /[\n\r]/);
      const kind = e.problem.replace(/'[^']*'|\d+/g, "#").slice(0, 60);
      errors.set(kind, (errors.get(kind) ?? 0) + 1);
    }
    slowest = Math.max(slowest, performance.now() - t);
  }
  const total = performance.now() - t0;
  console.log(
    `${label}: ${count} mutations in ${(total / 1000).toFixed(1)} s (slowest ${slowest.toFixed(0)} ms), ` +
      `${parsed} parsed, ${count - parsed} CheckpointErrors of ${errors.size} kinds`,
  );
  // no hang: every parse is bounded (generous limit: the machine is shared)
  assert.ok(slowest < 2000, `slowest parse ${slowest} ms`);
  assert.ok(count - parsed > count / 4, "most mutations of interpreted bytes should be caught");
}

Deno.test("fuzz: mutated net.safetensors gives only CheckpointErrors or a clean parse", () => {
  const path = tinyModel("hallo", "net.safetensors");
  const bytes = Deno.readFileSync(path);
  const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const size = bytes.length;
  // the length field, the whole header, its start and closing bytes, and the data end (truncations)
  const groups: RegionGroup[] = [[[0, 8]], [[8, headerEnd]], [[8, 1024]], [[headerEnd - 64, headerEnd]], [[
    size - 64,
    size,
  ]]];
  const rand = prng(0x5afe);
  fuzz("net.safetensors", path, MUTATIONS, () => mutate(bytes, groups, rand));
});

/** The tiny net.pth and where its parts lie. */
function tinyPth() {
  const path = tinyModel("hallo", "net.pth");
  const bytes = Deno.readFileSync(path);
  const entries = [...readZipDirectory(new MemorySource(path, bytes)).values()];
  const pkl = entries.find((e) => e.name.endsWith("/data.pkl"))!;
  const dv = new DataView(bytes.buffer);
  const eocd = bytes.length - 22; // torch writes no comment; this file needs no ZIP64
  assert.equal(dv.getUint32(eocd, true), 0x06054b50);
  const cdStart = dv.getUint32(eocd + 16, true);
  return { path, bytes, entries, pkl, cdStart, eocd };
}

Deno.test("fuzz: mutated net.pth gives only CheckpointErrors or a clean parse", () => {
  const { path, bytes, entries, pkl, cdStart } = tinyPth();
  const pklEnd = pkl.dataOffset + pkl.size;
  const groups: RegionGroup[] = [
    [[0, 64]], // first local header
    [[pkl.dataOffset, pkl.dataOffset + 2048]], // pickle start: protocol, OrderedDict, first tensors
    [[pkl.dataOffset, pklEnd]], // anywhere in data.pkl
    [[pklEnd - 2048, pklEnd]], // _metadata, BUILD, STOP
    [[cdStart, bytes.length]], // central directory and end records
    [[bytes.length - 200, bytes.length]], // end of central directory
    entries.map((e) => [e.headerOffset, e.dataOffset]), // some local header
  ];
  const rand = prng(0xc0ffee);
  fuzz("net.pth", path, MUTATIONS - SHIFT_MUTATIONS, () => mutate(bytes, groups, rand));
});

Deno.test("fuzz: net.pth with data.pkl grown, shrunk or cut (zip kept consistent) gives only CheckpointErrors", () => {
  // Insertions and deletions in data.pkl would only break the zip offsets; re-pointing the central directory
  // lets them reach the unpickler, shifting every opcode after the mutation.
  const { path, bytes, pkl, cdStart, eocd } = tinyPth();
  const pklBytes = bytes.subarray(pkl.dataOffset, pkl.dataOffset + pkl.size);
  const before = bytes.subarray(0, pkl.dataOffset); // local header of data.pkl (sizes live in the directory)
  const after = bytes.subarray(pkl.dataOffset + pkl.size, cdStart);
  const groups: RegionGroup[] = [[[0, pklBytes.length]], [[0, 2048]], [[
    pklBytes.length - 2048,
    pklBytes.length,
  ]]];
  const rand = prng(0xdecaf);
  fuzz("net.pth data.pkl", path, SHIFT_MUTATIONS, () => {
    const m = mutate(pklBytes, groups, rand);
    const len = m.segs.reduce((n, s) => n + s.length, 0);
    const delta = len - pkl.size;
    const cd = bytes.slice(cdStart, eocd + 22);
    const v = new DataView(cd.buffer);
    for (let p = 0; p < eocd - cdStart;) {
      const local = v.getUint32(p + 42, true);
      if (local === pkl.headerOffset) {
        v.setUint32(p + 20, len, true);
        v.setUint32(p + 24, len, true);
      } else if (local > pkl.headerOffset) v.setUint32(p + 42, local + delta, true);
      p += 46 + v.getUint16(p + 28, true) + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
    }
    v.setUint32(eocd - cdStart + 16, cdStart + delta, true);
    return { segs: [before, ...m.segs, after, cd], what: `data.pkl ${m.what}` };
  });
});
