/**
 * What `AudioProcessor.preprocess` does to the 16 kHz mono vocals before wav2vec2 (spec §3.2): whole-clip
 * normalisation by transformers' `Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm`, the frame count
 * `seq_len = ceil(N / 16000 · 25)` (float64, as Python computes it), and zero padding of the normalised
 * waveform up to a whole number of clips.
 */
import { numpyMeanF32, numpyVarF32 } from "./numpy_sum.ts";

/** The audio cannot be prepared (too short, wrong rate, bad settings). */
export class Wav2vecInputError extends Error {
  override name = "Wav2vecInputError";
}

/**
 * `(x − mean) / sqrt(var + 1e-7)` as transformers v4.39.2 computes it with numpy 1.x on float32 input:
 * float32 mean and variance (pairwise sums), `var + 1e-7` and the square root in float64, the divisor and the
 * quotient in float32. Bit-exact with upstream.
 */
export function zeroMeanUnitVarNorm(x: Float32Array): Float32Array {
  if (x.length === 0) throw new Wav2vecInputError("cannot normalise an empty waveform");
  const mean = numpyMeanF32(x);
  const std = Math.fround(Math.sqrt(numpyVarF32(x) + 1e-7));
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.fround(x[i] - mean) / std;
  return out;
}

/** `math.ceil(N / sample_rate * fps)` in float64: 35,200 samples give 56 frames (55.00000000000001), not 55. */
export function audioFrameCount(numSamples: number, sampleRate = 16000, fps = 25): number {
  return Math.ceil((numSamples / sampleRate) * fps);
}

/** Settings of the preparation (hallo's defaults). */
export interface Wav2vecInputOptions {
  sampleRate?: number;
  fps?: number;
  /** Frames per generated clip (n_sample_frames, 16); padding makes seq_len a multiple of it. ≤ 0: no padding. */
  clipLength?: number;
}

/** The wav2vec2 input and the frame bookkeeping that goes with it. */
export interface Wav2vecInput {
  /** Normalised waveform followed by `paddingSamples` zeros. */
  inputValues: Float32Array;
  /** Number of 25 fps frames wav2vec2 is interpolated to (a multiple of clipLength). */
  seqLen: number;
  /** Frames of the output video: `ceil(N/16000·25)` before padding. */
  audioLength: number;
  /** Zeros appended: `(clipLength − audioLength % clipLength) · (sampleRate / fps)`, or 0. */
  paddingSamples: number;
  /** seqLen / clipLength. */
  numClips: number;
}

/**
 * Prepares 16 kHz mono samples (`librosa.load(..., sr=16000)`) for wav2vec2 as hallo does. Upstream crashes on a
 * 1-sample file (numpy squeezes it to a 0-d array); here that, and an empty input, are clear errors.
 */
export function prepareWav2vecInput(mono16k: Float32Array, opts: Wav2vecInputOptions = {}): Wav2vecInput {
  const sampleRate = opts.sampleRate ?? 16000, fps = opts.fps ?? 25, clip = opts.clipLength ?? 16;
  const n = mono16k.length;
  if (n === 0) throw new Wav2vecInputError("the audio has no samples");
  if (n === 1) {
    throw new Wav2vecInputError(
      "the audio has a single sample; at least 2 are needed (upstream crashes here)",
    );
  }
  const normed = zeroMeanUnitVarNorm(mono16k);
  const audioLength = audioFrameCount(n, sampleRate, fps);
  let seqLen = audioLength;
  let paddingSamples = 0;
  if (clip > 0 && seqLen % clip !== 0) {
    paddingSamples = (clip - (seqLen % clip)) * Math.floor(sampleRate / fps);
    seqLen += clip - (seqLen % clip);
  }
  const inputValues = new Float32Array(n + paddingSamples);
  inputValues.set(normed);
  return { inputValues, seqLen, audioLength, paddingSamples, numClips: clip > 0 ? seqLen / clip : 1 };
}
