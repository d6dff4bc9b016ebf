/**
 * The files upstream writes around separation: the vocals WAV (`CommonSeparator.write_audio`: peak-normalise,
 * int16 = float·32767 truncated, stereo interleaved) and its 16 kHz copy made by ffmpeg (`util.resample_audio`).
 */
import { basename, join } from "node:path";
import { runFfmpeg } from "../../util/ffmpeg.ts";
import { peakOf, peakScale, scaledPeak, SeparationError } from "./mdx.ts";
import { encodeWavPcm16 } from "./wav.ts";

/** Python's `os.path.splitext(name)[0]`: drops the last extension; leading dots do not start one. */
export function splitextStem(name: string): string {
  const lead = name.length - name.replace(/^\.+/, "").length;
  const dot = name.lastIndexOf(".");
  return dot > lead ? name.slice(0, dot) : name;
}

/** File names upstream gives the separated vocals and their 16 kHz copy, in `outputDir`. */
export function vocalsFileNames(
  audioPath: string,
  modelName: string,
  outputDir: string,
): { vocals: string; vocals16k: string } {
  const stem = `${splitextStem(basename(audioPath))}_(Vocals)_${modelName}`;
  return { vocals: join(outputDir, `${stem}.wav`), vocals16k: join(outputDir, `${stem}-16k.wav`) };
}

/** Below this peak upstream's `write_audio` refuses a stem (it logs a warning and writes nothing). */
const SILENT_PEAK = 1e-6;

function silentVocals(peak: number): SeparationError {
  return new SeparationError(`the separated vocals are silent (peak ${peak}): nothing to write`);
}

/**
 * `(x·scale·32767).astype(int16)` of planar channels, interleaved into `out` (channels × frames): the scale is
 * write_audio's normalisation (applied as float32; 1 = none), then the float32 product ·32767 truncated toward
 * zero.
 */
export function pcm16Interleave(channels: readonly Float32Array[], scale: number, out: Int16Array): void {
  const cc = channels.length;
  for (let c = 0; c < cc; c++) {
    const ch = channels[c];
    for (let i = 0, j = c; i < ch.length; i++, j += cc) {
      const x = scale === 1 ? ch[i] : Math.fround(ch[i] * scale);
      const v = Math.trunc(Math.fround(x * 32767));
      out[j] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
  }
}

/**
 * `write_audio`'s conversion: normalise the source to ≤ maxPeak, refuse a near-silent stem (peak < 1e-6;
 * upstream then writes nothing and the pipeline fails later), convert with `(x·32767).astype(int16)` (float32
 * product, truncation toward zero) and interleave. Channels are planar, as `separateVocals` returns them, and
 * are not modified.
 */
export function vocalsToInt16(channels: Float32Array[], maxPeak = 0.9): Int16Array {
  const peak = peakOf(channels);
  const scale = peakScale(peak, maxPeak);
  const after = scaledPeak(peak, scale);
  if (after < SILENT_PEAK) throw silentVocals(after);
  const out = new Int16Array(channels.length * channels[0].length);
  pcm16Interleave(channels, scale, out);
  return out;
}

/** Writes the vocals as upstream does: 16-bit PCM WAV, interleaved, at `sampleRate` (44.1 kHz upstream). */
export async function writeVocalsWav(
  path: string,
  channels: Float32Array[],
  sampleRate = 44100,
  maxPeak = 0.9,
): Promise<void> {
  const pcm = vocalsToInt16(channels, maxPeak);
  await Deno.writeFile(path, encodeWavPcm16(pcm, channels.length, sampleRate));
}

/** Frames per block when a WAV is written piece by piece. */
const BLOCK_FRAMES = 65536;
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Writes a 16-bit PCM WAV of `frames` frames without holding it: the canonical header with the final sizes
 * (known up front), then the interleaved samples `fill(offset, out)` produces for frames offset ..
 * offset + out.length/channelCount, block by block. A failed write deletes the partial file.
 */
export async function writePcm16WavBlocks(
  path: string,
  channelCount: number,
  sampleRate: number,
  frames: number,
  fill: (offset: number, out: Int16Array) => Promise<void> | void,
): Promise<void> {
  const dataBytes = frames * channelCount * 2;
  if (dataBytes + 36 > 0xffffffff) {
    throw new SeparationError(`${path}: ${frames} frames are too many for a WAV file (4 GiB)`);
  }
  const header = encodeWavPcm16(new Int16Array(0), channelCount, sampleRate);
  const hv = new DataView(header.buffer);
  hv.setUint32(4, 36 + dataBytes, true);
  hv.setUint32(40, dataBytes, true);
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const writeAll = async (b: Uint8Array) => {
      for (let o = 0; o < b.length;) o += await f.write(b.subarray(o));
    };
    await writeAll(header);
    const pcm = new Int16Array(Math.min(frames, BLOCK_FRAMES) * channelCount);
    const bytes = new Uint8Array(pcm.buffer);
    const view = new DataView(pcm.buffer);
    for (let off = 0; off < frames; off += BLOCK_FRAMES) {
      const n = Math.min(BLOCK_FRAMES, frames - off) * channelCount;
      await fill(off, pcm.subarray(0, n));
      // WAV is little-endian; only a big-endian host needs the bytes swapped
      if (!LITTLE_ENDIAN) { for (let i = 0; i < n; i++) view.setInt16(2 * i, pcm[i], true); }
      await writeAll(bytes.subarray(0, 2 * n));
    }
    f.close();
  } catch (e) {
    try {
      f.close();
    } catch {
      // already closed
    }
    await Deno.remove(path).catch(() => {});
    throw e;
  }
}

/** Vocals to be written piece by piece: their length and peak, and a reader of planar blocks. */
export interface VocalsSource {
  /** Frames (the vocals are stereo). */
  frames: number;
  /** max |x| over the vocals as `separate` hands them to write_audio. */
  peak: number;
  /** Fills `dst[c]` with samples offset .. offset + dst[c].length of channel c. */
  read(offset: number, dst: Float32Array[]): Promise<void>;
}

/**
 * writeVocalsWav for vocals that are not held whole: same normalisation (its factor comes from the known
 * peak), conversion and bytes. Silent vocals throw SeparationError, or with `silent: "zeros"` are written as
 * zeros (what prepareAudio falls back to); returns whether they were silent.
 */
export async function writeVocalsWavBlocks(
  path: string,
  src: VocalsSource,
  sampleRate = 44100,
  maxPeak = 0.9,
  silent: "error" | "zeros" = "error",
): Promise<{ silent: boolean }> {
  const scale = peakScale(src.peak, maxPeak);
  const after = scaledPeak(src.peak, scale);
  const isSilent = after < SILENT_PEAK;
  if (isSilent && silent === "error") throw silentVocals(after);
  const planar = [new Float32Array(BLOCK_FRAMES), new Float32Array(BLOCK_FRAMES)];
  await writePcm16WavBlocks(path, 2, sampleRate, src.frames, async (offset, out) => {
    if (isSilent) return void out.fill(0);
    const block = planar.map((p) => p.subarray(0, out.length / 2));
    await src.read(offset, block);
    pcm16Interleave(block, scale, out);
  });
  return { silent: isSilent };
}

/**
 * `util.resample_audio`: `ffmpeg -y -v error -i input -ar rate output` (channels kept, 16-bit WAV out).
 * Returns `output`.
 */
export async function resampleAudioFile(input: string, output: string, sampleRate: number): Promise<string> {
  await runFfmpeg(["-y", "-v", "error", "-i", input, "-ar", String(sampleRate), output], {
    input,
    captureStdout: false,
  });
  return output;
}
