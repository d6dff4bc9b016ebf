/**
 * A temporary file of stereo float32 frames (interleaved, native byte order: written and read by the same
 * process), so that the separator can keep a long 44.1 kHz waveform out of memory: appended in order, read back
 * at any frame offset. It tracks the peak and whether any sample is non-zero as frames go in, because upstream
 * normalises by global peaks that are only known once everything has been seen.
 */
import { SeparationError } from "./mdx.ts";

const CHANNELS = 2;
const FRAME_BYTES = CHANNELS * Float32Array.BYTES_PER_ELEMENT;

/** A stereo float32 spool file; `remove()` closes and deletes it. */
export class StereoSpool {
  /** Frames appended so far. */
  frames = 0;
  /** max |x| over everything appended. */
  peak = 0;
  /** Whether any appended sample is non-zero. */
  nonZero = false;
  private buf = new Float32Array(0);

  private constructor(readonly path: string, private readonly file: Deno.FsFile) {}

  /** Creates an empty spool file in `dir` (name `.{prefix}_*.f32`). */
  static async create(dir: string, prefix: string): Promise<StereoSpool> {
    const path = await Deno.makeTempFile({ dir, prefix: `.${prefix}_`, suffix: ".f32" }).catch((e) => {
      throw new SeparationError(`${dir}: cannot create a temporary file (${(e as Error).message})`);
    });
    try {
      return new StereoSpool(path, await Deno.open(path, { read: true, write: true }));
    } catch (e) {
      await Deno.remove(path).catch(() => {});
      throw e;
    }
  }

  private scratch(values: number): Float32Array {
    if (this.buf.length < values) this.buf = new Float32Array(values);
    return this.buf.subarray(0, values);
  }

  /** Appends planar channels (both the same length). */
  async append(block: readonly Float32Array[]): Promise<void> {
    const [l, r] = block;
    const n = l.length;
    const inter = this.scratch(CHANNELS * n);
    let peak = this.peak, nonZero = this.nonZero;
    for (let i = 0; i < n; i++) {
      const a = l[i], b = r[i];
      inter[2 * i] = a;
      inter[2 * i + 1] = b;
      const m = Math.max(Math.abs(a), Math.abs(b));
      if (m > peak) peak = m;
      if (a !== 0 || b !== 0) nonZero = true;
    }
    await this.file.seek(this.frames * FRAME_BYTES, Deno.SeekMode.Start);
    const bytes = new Uint8Array(inter.buffer, inter.byteOffset, inter.byteLength);
    for (let o = 0; o < bytes.length;) o += await this.file.write(bytes.subarray(o));
    this.frames += n;
    this.peak = peak;
    this.nonZero = nonZero;
  }

  /**
   * Reads frames `offset .. offset + dst[0].length` into planar `dst`, each sample times `scale` as float32
   * (how `spec_utils.normalize` applies its factor); scale 1 reads them unchanged.
   */
  async read(offset: number, dst: readonly Float32Array[], scale = 1): Promise<void> {
    const n = dst[0].length;
    if (offset < 0 || offset + n > this.frames) {
      throw new SeparationError(
        `${this.path}: frames ${offset}..${offset + n} are outside the ${this.frames}`,
      );
    }
    const inter = this.scratch(CHANNELS * n);
    const bytes = new Uint8Array(inter.buffer, inter.byteOffset, inter.byteLength);
    await this.file.seek(offset * FRAME_BYTES, Deno.SeekMode.Start);
    for (let o = 0; o < bytes.length;) {
      const got = await this.file.read(bytes.subarray(o));
      if (got === null) throw new SeparationError(`${this.path}: temporary file ends early`);
      o += got;
    }
    const [l, r] = dst;
    if (scale === 1) {
      for (let i = 0; i < n; i++) {
        l[i] = inter[2 * i];
        r[i] = inter[2 * i + 1];
      }
    } else {
      for (let i = 0; i < n; i++) {
        l[i] = inter[2 * i] * scale;
        r[i] = inter[2 * i + 1] * scale;
      }
    }
  }

  /** Closes and deletes the file (safe to call twice). */
  async remove(): Promise<void> {
    try {
      this.file.close();
    } catch {
      // already closed
    }
    await Deno.remove(this.path).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}
