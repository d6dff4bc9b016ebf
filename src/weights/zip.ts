/**
 * Just enough of the zip format to find where each entry's bytes lie: end of central directory (+ ZIP64),
 * central directory, and each entry's local header. Nothing is decompressed: torch.save stores every entry.
 */
import { CheckpointError } from "./errors.ts";
import type { ByteSource } from "./source.ts";

/** One file of a zip archive. `dataOffset` is where its (stored) bytes start in the archive file. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = stored; anything else is compressed and cannot be referenced in place. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly dataOffset: number;
  /** Where its local header starts. */
  readonly headerOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const EOCD_LEN = 22;
const MAX_COMMENT = 0xffff;
const CENTRAL_LEN = 46;
const LOCAL_LEN = 30;
const ZIP64_EXTRA_ID = 0x0001;

const names = new TextDecoder("utf-8", { fatal: false });

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Reads a u64 and refuses values a JS number cannot hold exactly. */
function u64(dv: DataView, at: number, file: string, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(file, `zip ${what} ${v} is too large`);
  return Number(v);
}

interface Directory {
  entries: number;
  offset: number;
  size: number;
  /** Where the directory must end: the (ZIP64) end record that follows it. */
  limit: number;
}

function findDirectory(src: ByteSource): Directory {
  const file = src.path;
  if (src.size < EOCD_LEN) {
    throw new CheckpointError(file, `truncated zip: ${src.size} bytes, no end of central directory`);
  }
  const tailLen = Math.min(src.size, EOCD_LEN + MAX_COMMENT);
  const tailStart = src.size - tailLen;
  const tail = src.read(tailStart, tailLen);
  const tv = view(tail);
  let at = -1;
  for (let i = tailLen - EOCD_LEN; i >= 0; i--) {
    if (
      tail[i] === 0x50 && tv.getUint32(i, true) === SIG_EOCD &&
      i + EOCD_LEN + tv.getUint16(i + 20, true) <= tailLen
    ) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new CheckpointError(file, "truncated or damaged zip: end of central directory not found");
  const eocdPos = tailStart + at;
  const diskNo = tv.getUint16(at + 4, true);
  const cdDisk = tv.getUint16(at + 6, true);
  let dir: Directory = {
    entries: tv.getUint16(at + 10, true),
    size: tv.getUint32(at + 12, true),
    offset: tv.getUint32(at + 16, true),
    limit: eocdPos,
  };
  if (diskNo !== 0 || cdDisk !== 0 || tv.getUint16(at + 8, true) !== dir.entries) {
    throw new CheckpointError(file, "multi-disk zip archives are not supported");
  }
  // A ZIP64 locator sits right before the classic end record when the archive needed 64-bit fields.
  const locPos = eocdPos - 20;
  if (locPos >= 0 && view(src.read(locPos, 4)).getUint32(0, true) === SIG_ZIP64_LOCATOR) {
    const loc = view(src.read(locPos, 20));
    const recPos = u64(loc, 8, file, "ZIP64 end record offset");
    if (recPos + 56 > locPos) {
      throw new CheckpointError(file, "damaged zip: ZIP64 end record offset out of range");
    }
    const rec = view(src.read(recPos, 56));
    if (rec.getUint32(0, true) !== SIG_ZIP64_EOCD) {
      throw new CheckpointError(file, "damaged zip: ZIP64 end of central directory record not found");
    }
    dir = {
      entries: u64(rec, 32, file, "entry count"),
      size: u64(rec, 40, file, "central directory size"),
      offset: u64(rec, 48, file, "central directory offset"),
      limit: recPos,
    };
  }
  if (dir.offset + dir.size > dir.limit) {
    throw new CheckpointError(
      file,
      `truncated or damaged zip: central directory (bytes ${dir.offset}..${
        dir.offset + dir.size
      }) overruns its end record at ${dir.limit}`,
    );
  }
  if (dir.entries * CENTRAL_LEN > dir.size) {
    throw new CheckpointError(
      file,
      `damaged zip: ${dir.entries} entries cannot fit in a ${dir.size} byte directory`,
    );
  }
  return dir;
}

/** Applies the ZIP64 extended-information extra field to the 32-bit fields that overflowed. */
function zip64Fields(
  extra: Uint8Array,
  fields: { size: number; compressedSize: number; localOffset: number },
  file: string,
  name: string,
): void {
  const ev = view(extra);
  let p = 0;
  while (p + 4 <= extra.length) {
    const id = ev.getUint16(p, true);
    const len = ev.getUint16(p + 2, true);
    if (p + 4 + len > extra.length) break;
    if (id === ZIP64_EXTRA_ID) {
      let q = p + 4;
      const take = (what: string): number => {
        if (q + 8 > p + 4 + len) {
          throw new CheckpointError(file, `zip entry '${name}': ZIP64 field too short`);
        }
        const v = u64(ev, q, file, what);
        q += 8;
        return v;
      };
      if (fields.size === 0xffffffff) fields.size = take("size");
      if (fields.compressedSize === 0xffffffff) fields.compressedSize = take("compressed size");
      if (fields.localOffset === 0xffffffff) fields.localOffset = take("local header offset");
      return;
    }
    p += 4 + len;
  }
}

/** A central directory record before its local header has been checked. */
interface CentralRecord {
  name: string;
  nameBytes: Uint8Array;
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** Local headers closer together than this are fetched with one read (one syscall pair per header is slow). */
const HEADER_BATCH_BYTES = 1 << 14;

/**
 * Reads the central directory of the zip archive in `src` and each entry's local header.
 * Entries are returned by name, in directory order.
 */
export function readZipDirectory(src: ByteSource): Map<string, ZipEntry> {
  const file = src.path;
  const dir = findDirectory(src);
  const records = readCentralRecords(src, dir);
  const offsets = localDataOffsets(src, records);
  const out = new Map<string, ZipEntry>();
  records.forEach((r, i) => {
    if (out.has(r.name)) throw new CheckpointError(file, `zip entry '${r.name}' appears twice`);
    if (offsets[i] + r.compressedSize > dir.offset) {
      throw new CheckpointError(
        file,
        `zip entry '${r.name}' runs past the start of the central directory (truncated?)`,
      );
    }
    const { name, method, compressedSize, size, localOffset: headerOffset } = r;
    out.set(name, { name, method, compressedSize, size, dataOffset: offsets[i], headerOffset });
  });
  return out;
}

function readCentralRecords(src: ByteSource, dir: Directory): CentralRecord[] {
  const file = src.path;
  const cd = src.read(dir.offset, dir.size);
  const cv = view(cd);
  const records: CentralRecord[] = [];
  let p = 0;
  for (let i = 0; i < dir.entries; i++) {
    if (p + CENTRAL_LEN > cd.length || cv.getUint32(p, true) !== SIG_CENTRAL) {
      throw new CheckpointError(
        file,
        `damaged zip: central directory entry ${i} not found at byte ${dir.offset + p}`,
      );
    }
    const flags = cv.getUint16(p + 8, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const end = p + CENTRAL_LEN + nameLen + extraLen + cv.getUint16(p + 32, true);
    if (end > cd.length) {
      throw new CheckpointError(file, `damaged zip: central directory entry ${i} is truncated`);
    }
    const nameBytes = cd.subarray(p + CENTRAL_LEN, p + CENTRAL_LEN + nameLen);
    const r: CentralRecord = {
      name: names.decode(nameBytes),
      nameBytes,
      method: cv.getUint16(p + 10, true),
      compressedSize: cv.getUint32(p + 20, true),
      size: cv.getUint32(p + 24, true),
      localOffset: cv.getUint32(p + 42, true),
    };
    zip64Fields(
      cd.subarray(p + CENTRAL_LEN + nameLen, p + CENTRAL_LEN + nameLen + extraLen),
      r,
      file,
      r.name,
    );
    if (flags & 1) throw new CheckpointError(file, `zip entry '${r.name}' is encrypted`);
    if (r.localOffset + LOCAL_LEN + nameLen > src.size) {
      throw new CheckpointError(
        file,
        `zip entry '${r.name}': local header offset ${r.localOffset} is past the end of the file`,
      );
    }
    records.push(r);
    p = end;
  }
  return records;
}

/** Checks each record's local header (read in batches of nearby headers); returns where each one's data starts. */
function localDataOffsets(src: ByteSource, records: CentralRecord[]): number[] {
  const order = records.map((_, i) => i).sort((a, b) => records[a].localOffset - records[b].localOffset);
  const offsets = new Array<number>(records.length);
  let k = 0;
  while (k < order.length) {
    const start = records[order[k]].localOffset;
    let end = start;
    let j = k;
    for (; j < order.length; j++) {
      const r = records[order[j]];
      const rEnd = r.localOffset + LOCAL_LEN + r.nameBytes.length;
      if (j > k && rEnd - start > HEADER_BATCH_BYTES) break;
      end = Math.max(end, rEnd);
    }
    const chunk = src.read(start, end - start);
    for (; k < j; k++) {
      const r = records[order[k]];
      offsets[order[k]] = localDataOffset(src.path, chunk.subarray(r.localOffset - start), r);
    }
  }
  return offsets;
}

/** Checks an entry's local header (at the start of `lh`) against its directory record; returns where its data starts. */
function localDataOffset(file: string, lh: Uint8Array, r: CentralRecord): number {
  // Byte arithmetic rather than a DataView per header: this runs once per tensor.
  const u16 = (at: number) => lh[at] | (lh[at + 1] << 8);
  const { name, nameBytes } = r;
  if ((u16(0) | (u16(2) << 16)) >>> 0 !== SIG_LOCAL) {
    throw new CheckpointError(file, `zip entry '${name}': local header not found`);
  }
  if (u16(8) !== r.method) {
    throw new CheckpointError(file, `zip entry '${name}': local header and directory disagree on the method`);
  }
  const n = nameBytes.length;
  let same = u16(26) === n;
  for (let i = 0; same && i < n; i++) same = lh[LOCAL_LEN + i] === nameBytes[i];
  if (!same) throw new CheckpointError(file, `zip entry '${name}': local header names a different file`);
  return r.localOffset + LOCAL_LEN + n + u16(28);
}
