/**
 * Spec §3.1 end to end for one file, as hallo's AudioProcessor runs it: load at 44.1 kHz stereo, separate,
 * write `{stem}_(Vocals)_{model}.wav`, then `ffmpeg -ar 16000` to `{stem}_(Vocals)_{model}-16k.wav`.
 * The model is injected (`runModel`), so this runs with any ONNX session or a stand-in.
 *
 * Memory stays bounded whatever the length: upstream normalises the mix and the output by their global peaks,
 * so instead of holding the waveforms the work runs in three passes over two temporary float32 files
 * (8 bytes per frame each, deleted at the end, also on failure):
 * 1. decode in pieces into the mix file, tracking its peak and length;
 * 2. demix chunk by chunk (demixStream), reading the mix normalised on the fly and appending finished output
 *    to the source file, tracking its peak;
 * 3. read the source back in blocks, normalise as upstream, convert to int16 and write the WAV block by block.
 * The numbers are those of `separateVocals` + `writeVocalsWav` on whole arrays, bit for bit.
 */
import { decodeAudioChunks, type DecodeOptions } from "./decode.ts";
import {
  demixStream,
  isVocalsPrimary,
  KIM_VOCAL_2_PARAMS,
  type MdxModelRunner,
  type MdxParams,
  type MdxProgress,
  peakOf,
  peakScale,
  scaledPeak,
  SilentAudioError,
  vocalsBlock,
} from "./mdx.ts";
import { StereoSpool } from "./stereo_spool.ts";
import { resampleAudioFile, vocalsFileNames, writeVocalsWavBlocks } from "./vocals_file.ts";

/** Sample rate audio-separator loads and writes (its `sample_rate` default). */
export const SEPARATOR_SAMPLE_RATE = 44100;
/** Frames per block when the secondary stem's peak is scanned. */
const SCAN_FRAMES = 65536;

/** Options of separateVocalsToFiles. */
export interface SeparateFileOptions {
  /** Folder for the outputs (hallo: `./.cache/audio_preprocess`); created if missing. */
  outputDir: string;
  /** Used in file names (hallo: "Kim_Vocal_2"). */
  modelName?: string;
  params?: MdxParams;
  onProgress?: MdxProgress;
  /**
   * Folder for the two temporary float32 files (default `outputDir`: on disk, where a tmpfs /tmp would keep
   * them in memory).
   */
  tmpDir?: string;
  /** Vocals that come out silent: an error (default; upstream writes no file) or written as zeros. */
  silentVocals?: "error" | "zeros";
  /** Seconds per step (decode_44k, separate, write_vocals, resample_16k) are added here as each step ends. */
  timings?: Record<string, number>;
  /** Decoder options (frames per decoded piece, resampler); for tests. */
  decode?: Pick<DecodeOptions, "chunkFrames" | "resampler" | "forceFfmpeg">;
}

/** What separateVocalsToFiles wrote. */
export interface SeparatedFiles {
  /** 44.1 kHz stereo 16-bit vocals. */
  vocals: string;
  /** The same resampled by ffmpeg to 16 kHz (stereo kept): the wav2vec2 input file. */
  vocals16k: string;
  /** Frames of the 44.1 kHz mix, and of the vocals. */
  frames: number;
  /** Whether the vocals came out silent (then written as zeros, with `silentVocals: "zeros"`). */
  silent: boolean;
}

/**
 * Separates the vocals of `audioPath` and writes both upstream files. Throws AudioDecodeError for input that
 * does not decode, SilentAudioError for an all-zero mix (before the model runs), SeparationError for silent
 * vocals (unless `silentVocals: "zeros"`) and model failures.
 */
export async function separateVocalsToFiles(
  audioPath: string,
  runModel: MdxModelRunner,
  opts: SeparateFileOptions,
): Promise<SeparatedFiles> {
  const p = opts.params ?? KIM_VOCAL_2_PARAMS;
  const maxPeak = p.normalizationThreshold;
  const names = vocalsFileNames(audioPath, opts.modelName ?? "Kim_Vocal_2", opts.outputDir);
  const timings = opts.timings ?? {};
  const time = async <T>(step: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      timings[step] = (timings[step] ?? 0) + (performance.now() - t0) / 1000;
    }
  };
  await Deno.mkdir(opts.outputDir, { recursive: true });
  const tmpDir = opts.tmpDir ?? opts.outputDir;
  const spools: StereoSpool[] = [];
  try {
    const mix = await StereoSpool.create(tmpDir, "mix");
    spools.push(mix);
    await time("decode_44k", async () => {
      const o: DecodeOptions = { ...opts.decode, sampleRate: SEPARATOR_SAMPLE_RATE, channels: 2 };
      for await (const piece of decodeAudioChunks(audioPath, o)) await mix.append(piece);
    });
    if (!mix.nonZero) {
      throw new SilentAudioError(
        `${audioPath}: the audio is silent (all samples are zero): nothing to separate`,
      );
    }
    const frames = mix.frames;
    const mixScale = peakScale(mix.peak, maxPeak);

    const source = await StereoSpool.create(tmpDir, "demixed");
    spools.push(source);
    await time("separate", () =>
      demixStream(
        frames,
        (offset, dst) => mix.read(offset, dst, mixScale),
        (_offset, block) => source.append(block),
        runModel,
        p,
        opts.onProgress,
      ));

    const primaryScale = peakScale(source.peak, maxPeak);
    const secondary = !isVocalsPrimary(p);
    let mixBlock: Float32Array[] = [];
    const readVocals = async (offset: number, dst: Float32Array[]) => {
      await source.read(offset, dst);
      if (secondary) {
        if (mixBlock[0]?.length !== dst[0].length) mixBlock = dst.map((d) => new Float32Array(d.length));
        await mix.read(offset, mixBlock, mixScale);
      }
      dst.forEach((d, c) => vocalsBlock(d, primaryScale, secondary ? mixBlock[c] : undefined, d));
    };
    const { silent } = await time("write_vocals", async () => {
      let peak = scaledPeak(source.peak, primaryScale);
      if (secondary) peak = await scanPeak(frames, readVocals); // mix − primary: no shortcut to its peak
      return await writeVocalsWavBlocks(
        names.vocals,
        { frames, peak, read: readVocals },
        SEPARATOR_SAMPLE_RATE,
        maxPeak,
        opts.silentVocals,
      );
    });
    for (const s of spools.splice(0)) await s.remove(); // before ffmpeg: the disk space is no longer needed
    await time("resample_16k", () => resampleAudioFile(names.vocals, names.vocals16k, 16000));
    return { ...names, frames, silent };
  } finally {
    for (const s of spools) await s.remove();
  }
}

/** max |x| over `frames` frames of a block reader. */
async function scanPeak(
  frames: number,
  read: (offset: number, dst: Float32Array[]) => Promise<void>,
): Promise<number> {
  const buf = [new Float32Array(SCAN_FRAMES), new Float32Array(SCAN_FRAMES)];
  let peak = 0;
  for (let off = 0; off < frames; off += SCAN_FRAMES) {
    const block = buf.map((b) => b.subarray(0, Math.min(SCAN_FRAMES, frames - off)));
    await read(off, block);
    peak = Math.max(peak, peakOf(block));
  }
  return peak;
}
