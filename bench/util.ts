/** Shared helpers of the benchmarks: peak RSS, random checkpoints, tables. */
import type { WeightSource } from "../src/onnx/graph.ts";
import { LayoutRecorder } from "../src/tiny/layout.ts";

/** Peak resident set size of this process in MiB (VmHWM). */
export function peakRssMiB(): number {
  const s = Deno.readTextFileSync("/proc/self/status");
  const m = /VmHWM:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) / 1024 : NaN;
}

export interface KeySpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/**
 * Every key `build` binds with the shape it expects, sorted by key: the layout of a random checkpoint for it.
 * `absent` picks keys to report missing, steering builders that probe for alternative spellings.
 */
export function recordedKeys(
  build: (w: WeightSource) => unknown,
  absent?: (key: string) => boolean,
): KeySpec[] {
  const rec = new LayoutRecorder(absent);
  build(rec);
  return rec.tensors();
}

/** Parameters in a checkpoint of `keys`. */
export function paramCount(keys: readonly KeySpec[]): number {
  return keys.reduce((a, k) => a + k.shape.reduce((x, y) => x * y, 1), 0);
}

/**
 * The random checkpoint `file` of `keys` (writeRandomSafetensors): reused when it exists (BENCH_KEEP, the
 * work folder of a warm GPU machine), else written under another name and renamed, so a killed run leaves no
 * half checkpoint for the next to reuse. True when it was written.
 */
export async function ensureRandomCheckpoint(file: string, keys: readonly KeySpec[]): Promise<boolean> {
  if (await Deno.stat(file).then(() => true, () => false)) return false;
  await writeRandomSafetensors(`${file}.part`, keys);
  await Deno.rename(`${file}.part`, file);
  return true;
}

/**
 * Writes a float32 safetensors file of uniform random values in [-scale, scale] for `keys`, streaming
 * (full-size checkpoints are gigabytes). Deterministic (xorshift32).
 */
export async function writeRandomSafetensors(
  path: string,
  keys: readonly KeySpec[],
  scale = 0.02,
): Promise<number> {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const k of keys) {
    const n = k.shape.reduce((a, b) => a * b, 1) * 4;
    header[k.name] = { dtype: "F32", shape: k.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const hdr = new TextEncoder().encode(json);
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(hdr.length), true);
    await f.write(len);
    await f.write(hdr);
    const chunk = new Float32Array(1 << 20);
    let state = 0x9e3779b9;
    const fill = (n: number) => {
      for (let i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        chunk[i] = ((state >>> 0) / 4294967296 * 2 - 1) * scale;
      }
    };
    let left = off / 4;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      fill(n);
      const bytes = new Uint8Array(chunk.buffer, 0, n * 4);
      let w = 0;
      while (w < bytes.length) w += await f.write(bytes.subarray(w));
      left -= n;
    }
  } finally {
    f.close();
  }
  return off + 8 + hdr.length;
}

/** Formats rows as an aligned text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => typeof c === "number" ? fmtNum(c) : c))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? "").length)));
  const line = (r: (string | number)[]) => r.map((c, i) => String(c ?? "").padEnd(widths[i])).join("  ");
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join(
    "\n",
  );
}

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return "-";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** Seconds taken by `f`. */
export async function timed<T>(f: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, (performance.now() - t0) / 1000];
}
