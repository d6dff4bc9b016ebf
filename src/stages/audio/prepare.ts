/**
 * The audio stage end to end, as hallo's `AudioProcessor.preprocess` + `inference.py: process_audio_emb` run it
 * (spec §3): optional MDX vocal separation at 44.1 kHz stereo → vocals WAV (int16) → `ffmpeg -ar 16000` →
 * librosa-like mono load → wav2vec2 input (whole-clip normalisation, zero padding to whole clips) → wav2vec2
 * hidden states 1..n stacked (L, layers, dim) → (L, 5, layers, dim) windows with edge replication.
 * Without separation the input is decoded straight to 16 kHz mono.
 *
 * Memory: decoding streams (ffmpeg stdout or the WAV read in pieces); the separator runs one model chunk at a
 * time with rolling overlap-add buffers and keeps the 44.1 kHz waveforms in temporary files beside its output
 * (separate_file.ts), so its memory does not grow with the length. wav2vec2 sees the whole 16 kHz clip at once,
 * as upstream: its transformer attends across the entire sequence.
 */
import { join, resolve } from "node:path";
import type { Device } from "../../runtime/device.ts";
import type { F32Tensor } from "../../tensor.ts";
import { downloadCommand, requireWeights, resolveWeightsDir } from "../../weights/locate.ts";
import { loadWav2Vec, wav2vecFeatures } from "../networks/wav2vec.ts";
import { AudioDecodeError, decodeAudio } from "./decode.ts";
import { type MdxParams, SeparationError, SilentAudioError } from "./mdx.ts";
import { type SeparatedFiles, separateVocalsToFiles } from "./separate_file.ts";
import { loadMdxSeparator, type MdxOnnxModel } from "./separator_onnx.ts";
import { prepareWav2vecInput, Wav2vecInputError } from "./wav2vec_input.ts";
import { gatherWindows } from "./windows.ts";

export { SEPARATOR_SAMPLE_RATE } from "./separate_file.ts";
/** hallo's `data.driving_audio.sample_rate` (asserted by inference.py) and wav2vec2's rate. */
export const WAV2VEC_SAMPLE_RATE = 16000;
/** Where the separator model lives under `pretrained_models/`. */
export const SEPARATOR_MODEL: string = join("audio_separator", "Kim_Vocal_2.onnx");
/** Where the wav2vec2 folder lives under `pretrained_models/`. */
export const WAV2VEC_DIR = join("wav2vec", "wav2vec2-base-960h");

/** Options of prepareAudio (hallo's defaults). */
export interface PrepareAudioOptions {
  /** The `pretrained_models/` folder (default: `$HALLO_WEIGHTS`, then the project's weights/pretrained_models). */
  weightsDir?: string;
  /** Separate the vocals first (default true). When the separator model is missing, skipped with a warning. */
  separate?: boolean;
  /** The separator .onnx (default `<weightsDir>/audio_separator/Kim_Vocal_2.onnx`); when given it must exist. */
  separatorModel?: string;
  /** Separator options over the model data (segmentSize, overlap, ...); for experiments and tests. */
  separatorOverrides?: Partial<MdxParams>;
  /** Frames per generated clip (`n_sample_frames`, 16): the frame count is padded to a multiple of it. */
  clipLength?: number;
  /** Video frame rate the audio features are interpolated to (25). */
  fps?: number;
  /** Where the vocals files go (default `./.cache/audio_preprocess`, as hallo). */
  cacheDir?: string;
  device?: Device;
  /** Intra-op threads of both sessions (default: ORT's choice). */
  threads?: number;
  /** Progress of the long steps (separation chunks). */
  onProgress?: (step: "separate", done: number, total: number) => void;
}

/** What the clip loop reads of the driving audio. */
export interface AudioWindows {
  /** (L, 5, layers, dim) per-frame windows of wav2vec2 features, L padded to a multiple of the clip length. */
  windows: F32Tensor;
  /** Frames of the output video (upstream's `audio_length`). */
  audioLength: number;
}

/** The audio conditioning and what it took to make it. */
export interface PreparedAudio extends AudioWindows {
  /** wav2vec2 hidden states 1..n: (L, layers, dim), L = seqLen. */
  embedding: F32Tensor;
  /** (L, 5, layers, dim): frames i−2..i+2 of `embedding`, clamped. */
  windows: F32Tensor;
  /** Frames fed to wav2vec2: audioLength rounded up to a whole number of clips. */
  seqLen: number;
  /** Frames of the output video: ceil(samples / 16000 · fps). */
  audioLength: number;
  /** 16 kHz mono samples of the (separated) audio, before padding. */
  numSamples: number;
  /** The 44.1 kHz int16 stereo vocals written by the separator (absent without separation). */
  vocalsPath?: string;
  /** Their 16 kHz copy, the file wav2vec2's input is loaded from (absent without separation). */
  vocals16kPath?: string;
  /** Whether separation ran. */
  separated: boolean;
  /** Steps skipped or worked around, one line each. */
  warnings: string[];
  /** Seconds per step (`total` included). */
  timings: Record<string, number>;
}

/** wav2vec2's preprocessor_config.json, the two fields that matter. */
interface PreprocessorConfig {
  doNormalize: boolean;
  samplingRate: number;
}

function readPreprocessor(dir: string): PreprocessorConfig {
  const file = join(dir, "preprocessor_config.json");
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(Deno.readTextFileSync(file));
  } catch (e) {
    throw new Wav2vecInputError(`${file}: cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  const doNormalize = json?.do_normalize ?? true;
  const samplingRate = json?.sampling_rate ?? WAV2VEC_SAMPLE_RATE;
  if (typeof doNormalize !== "boolean" || typeof samplingRate !== "number") {
    throw new Wav2vecInputError(`${file}: do_normalize must be a boolean and sampling_rate a number`);
  }
  if (samplingRate !== WAV2VEC_SAMPLE_RATE) {
    // transformers refuses audio at another rate than the extractor's, and hallo always feeds 16 kHz.
    throw new Wav2vecInputError(`${file}: sampling_rate ${samplingRate}; hallo feeds 16000 Hz audio`);
  }
  return { doNormalize, samplingRate };
}

function checkCount(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** The separation part: writes the vocals and their 16 kHz copy; undefined when separation is skipped. */
async function separateToFiles(
  path: string,
  sep: MdxOnnxModel,
  cacheDir: string,
  o: PrepareAudioOptions,
  warnings: string[],
  timings: Record<string, number>,
): Promise<SeparatedFiles | undefined> {
  try {
    const files = await separateVocalsToFiles(path, sep.runModel, {
      outputDir: cacheDir,
      modelName: sep.modelName,
      params: sep.params,
      onProgress: (d, t) => o.onProgress?.("separate", d, t),
      // Upstream writes no file here and its pipeline fails later; silence is what the model heard as vocals.
      silentVocals: "zeros",
      timings,
    });
    if (files.silent) warnings.push(`${path}: the separated vocals are silent; using silence as the vocals`);
    return files;
  } catch (e) {
    if (!(e instanceof SilentAudioError)) throw e;
    // audio-separator fails on an all-zero mix; its vocals would be zeros anyway, i.e. the input itself.
    warnings.push(`${path}: the audio is silent; vocal separation skipped (upstream fails here)`);
    return undefined;
  }
}

/**
 * Turns a driving audio (any file ffmpeg reads, or the audio track of a video) into Hallo's audio conditioning.
 * Throws AudioDecodeError (not audio, empty, no audio track), MissingWeightsError (no wav2vec2), SeparationError,
 * Wav2VecError, FfmpegError: each one line naming the file and the problem.
 *
 * @example
 * ```ts ignore
 * const audio = await prepareAudio("speech.wav", { weightsDir: "weights/pretrained_models" });
 * console.log(audio.audioLength, audio.windows.shape); // frames at 25 fps, (L, 5, layers, dim)
 * ```
 */
export async function prepareAudio(path: string, options: PrepareAudioOptions = {}): Promise<PreparedAudio> {
  const t0 = performance.now();
  const clipLength = checkCount("clipLength", options.clipLength ?? 16);
  const fps = checkCount("fps", options.fps ?? 25);
  const weightsDir = resolveWeightsDir(options.weightsDir);
  const cacheDir = resolve(options.cacheDir ?? join(".cache", "audio_preprocess"));
  const warnings: string[] = [];
  const timings: Record<string, number> = {};
  const time = async <T>(step: string, f: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    try {
      return await f();
    } finally {
      timings[step] = (timings[step] ?? 0) + (performance.now() - s) / 1000;
    }
  };

  // Fail on a missing input or missing wav2vec2 before the (long) separation runs.
  try {
    if (!Deno.statSync(path).isFile) throw new AudioDecodeError(`${path}: not a regular file`);
  } catch (e) {
    if (e instanceof AudioDecodeError) throw e;
    throw new AudioDecodeError(`${path}: no such file`);
  }
  await requireWeights(weightsDir, "audio");
  const wav2vecDir = join(weightsDir, WAV2VEC_DIR);
  const pre = readPreprocessor(wav2vecDir);

  let files: SeparatedFiles | undefined;
  if (options.separate ?? true) {
    const modelPath = options.separatorModel ?? join(weightsDir, SEPARATOR_MODEL);
    let present = true;
    try {
      Deno.statSync(modelPath);
    } catch {
      present = false;
    }
    if (!present && options.separatorModel) {
      throw new SeparationError(`${modelPath}: separator model not found`);
    }
    if (!present) {
      warnings.push(
        `vocal separation skipped: ${modelPath} not found (fetch it with: ${
          downloadCommand(["Kim_Vocal_2", "mdx_model_data"], weightsDir)
        }); the audio is used as is`,
      );
    } else {
      const sep = await time("separator_load", () =>
        loadMdxSeparator(modelPath, {
          device: options.device,
          threads: options.threads,
          overrides: options.separatorOverrides,
        }));
      try {
        files = await separateToFiles(path, sep, cacheDir, options, warnings, timings);
      } finally {
        await sep.release();
      }
    }
  }

  // librosa.load(sr=16000): mean of the channels; the 16 kHz vocals need no resampling.
  const mono = await time(files ? "load_16k" : "decode_16k", async () => {
    const a = await decodeAudio(files?.vocals16k ?? path, { sampleRate: WAV2VEC_SAMPLE_RATE, channels: 1 });
    return a.channels[0];
  });
  const prep = await time("wav2vec_input", () => {
    const p = prepareWav2vecInput(mono, { sampleRate: WAV2VEC_SAMPLE_RATE, fps, clipLength });
    if (!pre.doNormalize) p.inputValues.set(mono); // the raw waveform, followed by the same zeros
    return Promise.resolve(p);
  });
  const model = await time(
    "wav2vec_load",
    () => loadWav2Vec(wav2vecDir, { device: options.device, threads: options.threads }),
  );
  let embedding: F32Tensor;
  try {
    embedding = await time("wav2vec_run", () => wav2vecFeatures(model, prep.inputValues, prep.seqLen));
  } finally {
    await model.release();
  }
  const windows = await time("windows", () => Promise.resolve(gatherWindows(embedding)));
  timings.total = (performance.now() - t0) / 1000;
  return {
    embedding,
    windows,
    seqLen: prep.seqLen,
    audioLength: prep.audioLength,
    numSamples: mono.length,
    vocalsPath: files?.vocals,
    vocals16kPath: files?.vocals16k,
    separated: files !== undefined,
    warnings,
    timings,
  };
}
