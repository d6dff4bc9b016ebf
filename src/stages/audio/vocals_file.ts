/**
 * The files upstream writes around separation: the vocals WAV (`CommonSeparator.write_audio`: peak-normalise,
 * int16 = float·32767 truncated, stereo interleaved) and its 16 kHz copy made by ffmpeg (`util.resample_audio`).
 */
import { basename, join } from "node:path";
import { runFfmpeg } from "../../util/ffmpeg.ts";
import { normalizePeak, SeparationError } from "./mdx.ts";
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

/**
 * `write_audio`'s conversion: normalise the (copied) source to ≤ maxPeak, refuse a near-silent stem (peak < 1e-6;
 * upstream then writes nothing and the pipeline fails later), convert with `(x·32767).astype(int16)` (float32
 * product, truncation toward zero) and interleave. Channels are planar, as `separateVocals` returns them.
 */
export function vocalsToInt16(channels: Float32Array[], maxPeak = 0.9): Int16Array {
  const src = channels.map((c) => c.slice());
  normalizePeak(src, maxPeak);
  let peak = 0;
  for (const ch of src) for (let i = 0; i < ch.length; i++) peak = Math.max(peak, Math.abs(ch[i]));
  if (peak < 1e-6) {
    throw new SeparationError(`the separated vocals are silent (peak ${peak}): nothing to write`);
  }
  const cc = src.length, n = src[0].length;
  const out = new Int16Array(cc * n);
  for (let c = 0; c < cc; c++) {
    const ch = src[c];
    for (let i = 0; i < n; i++) {
      const v = Math.trunc(Math.fround(ch[i] * 32767));
      out[i * cc + c] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
  }
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
