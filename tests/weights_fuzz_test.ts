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

const TINY = "/work/shared/reference/tiny_models/hallo";
const MUTATIONS = 2000;

/** mulberry32: small, seeded, good enough to spread mutations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

function fuzz(path: string, groups: RegionGroup[], seed: number): void {
  const bytes = Deno.readFileSync(path);
  const rand = prng(seed);
  const errors = new Map<string, number>();
  let parsed = 0;
  let slowest = 0;
  const t0 = performance.now();
  for (let i = 0; i < MUTATIONS; i++) {
    const { segs, what } = mutate(bytes, groups, rand);
    const t = performance.now();
    try {
      parseCheckpoint(new PatchedSource(path, segs));
      parsed++;
    } catch (e) {
      if (!(e instanceof CheckpointError)) {
        throw new Error(`mutation ${i} (seed ${seed}, ${what}) escaped as ${(e as Error)?.name}: ${e}`, {
          cause: e,
        });
      }
      assert.doesNotMatch(e.message, /[\n\r]/);
      const kind = e.problem.replace(/'[^']*'|\d+/g, "#").slice(0, 60);
      errors.set(kind, (errors.get(kind) ?? 0) + 1);
    }
    slowest = Math.max(slowest, performance.now() - t);
  }
  const total = performance.now() - t0;
  console.log(
    `${path.split("/").pop()}: ${MUTATIONS} mutations in ${(total / 1000).toFixed(1)} s (slowest ${
      slowest.toFixed(0)
    } ms), ` +
      `${parsed} parsed, ${MUTATIONS - parsed} CheckpointErrors of ${errors.size} kinds`,
  );
  // no hang: every parse is bounded (generous limits: the machine is shared)
  assert.ok(slowest < 2000, `slowest parse ${slowest} ms`);
  assert.ok(MUTATIONS - parsed > MUTATIONS / 4, "most mutations of interpreted bytes should be caught");
}

Deno.test("fuzz: mutated net.safetensors gives only CheckpointErrors or a clean parse", () => {
  const path = `${TINY}/net.safetensors`;
  const f = Deno.openSync(path);
  const len = new Uint8Array(8);
  f.readSync(len);
  f.close();
  const headerEnd = 8 + Number(new DataView(len.buffer).getBigUint64(0, true));
  const size = Deno.statSync(path).size;
  // the length field, the whole header, its closing bytes, and the data end (truncations)
  fuzz(
    path,
    [[[0, 8]], [[8, headerEnd]], [[8, 1024]], [[headerEnd - 64, headerEnd]], [[size - 64, size]]],
    0x5afe,
  );
});

Deno.test("fuzz: mutated net.pth gives only CheckpointErrors or a clean parse", () => {
  const path = `${TINY}/net.pth`;
  const bytes = Deno.readFileSync(path);
  const entries = [...readZipDirectory(new MemorySource(path, bytes)).values()];
  const pkl = entries.find((e) => e.name.endsWith("/data.pkl"))!;
  const cdStart = Math.max(...entries.map((e) => e.dataOffset + e.compressedSize));
  fuzz(path, [
    [[0, 64]], // first local header
    [[pkl.dataOffset, pkl.dataOffset + 2048]], // pickle start: protocol, OrderedDict, first tensors
    [[pkl.dataOffset, pkl.dataOffset + pkl.size]], // anywhere in data.pkl
    [[pkl.dataOffset + pkl.size - 2048, pkl.dataOffset + pkl.size]], // _metadata, BUILD, STOP
    [[cdStart, bytes.length]], // central directory and end records
    [[bytes.length - 200, bytes.length]], // end of central directory
    entries.map((e) => [e.headerOffset, e.dataOffset]), // some local header
  ], 0xc0ffee);
});
