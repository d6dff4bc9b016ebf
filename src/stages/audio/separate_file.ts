/**
 * Spec §3.1 end to end for one file, as hallo's AudioProcessor runs it: load at 44.1 kHz stereo, separate,
 * write `{stem}_(Vocals)_{model}.wav`, then `ffmpeg -ar 16000` to `{stem}_(Vocals)_{model}-16k.wav`.
 * The model is injected (`runModel`), so this runs with any ONNX session or a stand-in.
 */
import { decodeAudio } from "./decode.ts";
import {
  KIM_VOCAL_2_PARAMS,
  type MdxModelRunner,
  type MdxParams,
  type MdxProgress,
  separateVocals,
} from "./mdx.ts";
import { resampleAudioFile, vocalsFileNames, writeVocalsWav } from "./vocals_file.ts";

/** Options of separateVocalsToFiles. */
export interface SeparateFileOptions {
  /** Folder for the outputs (hallo: `./.cache/audio_preprocess`); created if missing. */
  outputDir: string;
  /** Used in file names (hallo: "Kim_Vocal_2"). */
  modelName?: string;
  params?: MdxParams;
  onProgress?: MdxProgress;
}

/** Paths written by separateVocalsToFiles. */
export interface SeparatedFiles {
  /** 44.1 kHz stereo 16-bit vocals. */
  vocals: string;
  /** The same resampled by ffmpeg to 16 kHz (stereo kept): the wav2vec2 input file. */
  vocals16k: string;
}

/** Separates the vocals of `audioPath` and writes both upstream files. */
export async function separateVocalsToFiles(
  audioPath: string,
  runModel: MdxModelRunner,
  opts: SeparateFileOptions,
): Promise<SeparatedFiles> {
  const names = vocalsFileNames(audioPath, opts.modelName ?? "Kim_Vocal_2", opts.outputDir);
  const mix = await decodeAudio(audioPath, { sampleRate: 44100, channels: 2 });
  const { vocals } = await separateVocals(
    mix.channels,
    runModel,
    opts.params ?? KIM_VOCAL_2_PARAMS,
    opts.onProgress,
  );
  await Deno.mkdir(opts.outputDir, { recursive: true });
  await writeVocalsWav(
    names.vocals,
    vocals,
    44100,
    (opts.params ?? KIM_VOCAL_2_PARAMS).normalizationThreshold,
  );
  await resampleAudioFile(names.vocals, names.vocals16k, 16000);
  return names;
}
