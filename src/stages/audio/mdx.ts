/**
 * MDX-Net vocal separation as audio-separator v0.17.2 runs it (spec §3.1; `MDXSeparator.separate/demix/run_model`,
 * `spec_utils.normalize`, `STFT`). The ONNX model is injected as `runModel`, so the same code serves the real
 * Kim_Vocal_2 session, a tiny test model, or the identity.
 *
 * Float32 steps are kept where upstream's numpy arrays are float32 (windowed accumulation, division by the summed
 * window, compensate, peak normalisation), so only the STFT's own rounding differs from upstream.
 */
import { TorchStft } from "./stft.ts";

/** Bad input to the separator (wrong channel count, silent mix, bad parameters). */
export class SeparationError extends Error {
  override name = "SeparationError";
}

/** The mix is all zeros: upstream refuses it ("empty or not valid"); callers may skip separation instead. */
export class SilentAudioError extends SeparationError {
  override name = "SilentAudioError";
}

/** Everything that shapes an MDX run: model data (compensate, dim_f, dim_t, n_fft) plus separator options. */
export interface MdxParams {
  /** Gain applied to the demixed source (`compensate`). */
  compensate: number;
  /** Frequency bins the model sees (`mdx_dim_f_set`). */
  dimF: number;
  /** Time frames the model sees (`2 ** mdx_dim_t_set`). */
  dimT: number;
  /** FFT size (`mdx_n_fft_scale_set`). */
  nFft: number;
  /** STFT hop (separator `hop_length`, default 1024). */
  hopLength: number;
  /** Frames per chunk (separator `segment_size`, default 256). */
  segmentSize: number;
  /** Chunk overlap (default 0.25). */
  overlap: number;
  /** Peak the mix and the output are scaled down to (default 0.9). */
  normalizationThreshold: number;
  /** Run the model on ±spectrum and average (default false). */
  enableDenoise: boolean;
  /** The stem the model predicts ("Vocals" for Kim_Vocal_2); otherwise vocals = mix − prediction. */
  primaryStem: string;
}

/** Kim_Vocal_2 (UVR model data, MD5 970b3f9492014d18fefeedfe4773cb42) with audio-separator's defaults. */
export const KIM_VOCAL_2_PARAMS: Readonly<MdxParams> = Object.freeze({
  compensate: 1.009,
  dimF: 3072,
  dimT: 256,
  nFft: 7680,
  hopLength: 1024,
  segmentSize: 256,
  overlap: 0.25,
  normalizationThreshold: 0.9,
  enableDenoise: false,
  primaryStem: "Vocals",
});

/**
 * The model: takes a float32 spectrogram of shape (1, 4, dimF, segmentSize) — channels [L.re, L.im, R.re, R.im],
 * bins 0-2 zeroed — and returns the predicted spectrogram of the same shape.
 */
export type MdxModelRunner = (
  spec: Float32Array,
  shape: readonly number[],
) => Promise<Float32Array> | Float32Array;

/** Sizes derived from the parameters, named as in `MDXSeparator.initialize_model_settings` and `demix`. */
export interface MdxGeometry {
  trim: number;
  chunkSize: number;
  genSize: number;
  /** Zeros appended after the mix. */
  pad: number;
  /** Length of the padded mixture. */
  mixtureLength: number;
  step: number;
  chunkStarts: number[];
}

/** The chunking audio-separator uses for `numSamples` samples. */
export function mdxGeometry(numSamples: number, p: MdxParams): MdxGeometry {
  const trim = Math.floor(p.nFft / 2);
  const chunkSize = p.hopLength * (p.segmentSize - 1);
  const genSize = chunkSize - 2 * trim;
  if (genSize <= 0) {
    throw new SeparationError(`segment_size ${p.segmentSize} is too small for n_fft ${p.nFft}`);
  }
  const pad = genSize + trim - (numSamples % genSize);
  const mixtureLength = trim + numSamples + pad;
  const step = Math.trunc((1 - p.overlap) * chunkSize);
  if (step < 1) throw new SeparationError(`overlap ${p.overlap} leaves no step`);
  const chunkStarts: number[] = [];
  for (let i = 0; i < mixtureLength; i += step) chunkStarts.push(i);
  return { trim, chunkSize, genSize, pad, mixtureLength, step, chunkStarts };
}

/** np.hanning(m): the symmetric Hann window, as numpy computes it. */
export function numpyHanning(m: number): Float64Array {
  const w = new Float64Array(m);
  if (m === 1) {
    w[0] = 1;
    return w;
  }
  for (let k = 0; k < m; k++) w[k] = 0.5 + 0.5 * Math.cos((Math.PI * (1 - m + 2 * k)) / (m - 1));
  return w;
}

/**
 * The factor `spec_utils.normalize` applies for a given peak: maxPeak/peak as a float64 ratio rounded to the
 * float32 it is applied as (numpy 1.x), or 1 when the peak is within maxPeak.
 */
export function peakScale(peak: number, maxPeak: number): number {
  return peak > maxPeak ? Math.fround(maxPeak / peak) : 1;
}

/** max |x| over the channels (float32 values, so the result is a float32 value). */
export function peakOf(channels: readonly Float32Array[]): number {
  let peak = 0;
  for (const ch of channels) {
    for (let i = 0; i < ch.length; i++) {
      const a = Math.abs(ch[i]);
      if (a > peak) peak = a;
    }
  }
  return peak;
}

/**
 * The peak after `normalize` scaled by `scale`: rounding to float32 is monotonic and symmetric, so
 * max|fround(x·s)| = fround(max|x|·s) and the normalised data need not be scanned again.
 */
export function scaledPeak(peak: number, scale: number): number {
  return scale === 1 ? peak : Math.fround(peak * scale);
}

/**
 * `spec_utils.normalize` in place on float32 channels: if the peak exceeds `maxPeak`, scale by maxPeak/peak.
 * numpy 1.x semantics (what audio-separator 0.17 ran on): the ratio is a float64 scalar, applied as float32.
 * Returns the factor used (1 when unchanged).
 */
export function normalizePeak(channels: Float32Array[], maxPeak: number): number {
  const scale = peakScale(peakOf(channels), maxPeak);
  if (scale !== 1) { for (const ch of channels) for (let i = 0; i < ch.length; i++) ch[i] = ch[i] * scale; }
  return scale;
}

function checkStereo(mix: Float32Array[]): number {
  if (mix.length !== 2) throw new SeparationError(`the separator needs 2 channels, got ${mix.length}`);
  if (mix[0].length !== mix[1].length) throw new SeparationError(`channel lengths differ`);
  if (mix[0].length === 0) throw new SeparationError(`the mix has no samples`);
  return mix[0].length;
}

/** Progress of a demix: chunks done out of total. */
export type MdxProgress = (done: number, total: number) => void;

/**
 * Where demixStream reads the (normalised) mix: fills `dst[c]` (its whole length) with samples
 * `offset .. offset + dst[c].length` of channel c. Called once per chunk, in chunk order.
 */
export type MixReader = (offset: number, dst: Float32Array[]) => Promise<void> | void;

/**
 * Where demixStream delivers the source: samples `offset .. offset + block[c].length` of channel c, finished
 * (trimmed, × compensate), in order and without gaps. The arrays are reused once the call returns.
 */
export type SourceWriter = (offset: number, block: Float32Array[]) => Promise<void> | void;

/**
 * `MDXSeparator.demix` (not match-mix) over a mix of `numSamples` stereo samples read chunk by chunk: pads,
 * cuts windowed chunks, runs STFT → model → iSTFT on each, overlap-adds divided by the summed windows, trims and
 * multiplies by `compensate`. Memory is one chunk whatever the length: the accumulators roll over mixture
 * positions [base, base + chunkSize), and positions before the next chunk's start receive nothing more, so they
 * are finished and handed to `write` as the window moves on.
 */
export async function demixStream(
  numSamples: number,
  read: MixReader,
  write: SourceWriter,
  runModel: MdxModelRunner,
  p: MdxParams,
  onProgress?: MdxProgress,
): Promise<void> {
  const n = numSamples;
  if (!Number.isSafeInteger(n) || n < 1) throw new SeparationError(`the mix has no samples`);
  const g = mdxGeometry(n, p);
  const stft = new TorchStft(p.nFft, p.hopLength);
  const frames = stft.frameCount(g.chunkSize);
  const dimF = Math.min(p.dimF, p.nFft / 2 + 1);
  const shape = [1, 4, dimF, frames];
  const plane = dimF * frames;
  const compensate = Math.fround(p.compensate);
  const acc = [new Float32Array(g.chunkSize), new Float32Array(g.chunkSize)];
  const div = new Float32Array(g.chunkSize);
  const done = [new Float32Array(g.chunkSize), new Float32Array(g.chunkSize)];
  let base = 0;
  const finish = async (count: number) => {
    // accumulator index k is output sample base + k - trim; only 0 <= o < n is kept
    const k0 = Math.max(0, g.trim - base), k1 = Math.min(count, n + g.trim - base);
    if (k1 <= k0) return;
    for (let c = 0; c < 2; c++) {
      const a = acc[c], d = done[c];
      for (let k = k0; k < k1; k++) d[k - k0] = Math.fround(a[k] / div[k]) * compensate;
    }
    await write(base + k0 - g.trim, done.map((d) => d.subarray(0, k1 - k0)));
  };
  const fullWindow = p.overlap !== 0 ? numpyHanning(g.chunkSize) : undefined;
  const parts = [new Float32Array(g.chunkSize), new Float32Array(g.chunkSize)];
  const spec = new Float32Array(4 * plane); // fully rewritten by each chunk's STFT
  for (let ci = 0; ci < g.chunkStarts.length; ci++) {
    const start = g.chunkStarts[ci];
    const end = Math.min(start + g.chunkSize, g.mixtureLength);
    const actual = end - start;
    const shift = start - base;
    if (shift > 0) {
      await finish(shift);
      for (const a of [...acc, div]) {
        a.copyWithin(0, shift);
        a.fill(0, g.chunkSize - shift);
      }
      base = start;
    }
    // chunk index k is mix sample start + k - trim: zeros before the mix (the trim padding) and after it
    const k0 = Math.max(0, g.trim - start), k1 = Math.max(k0, Math.min(actual, n + g.trim - start));
    for (const part of parts) {
      part.fill(0, 0, k0);
      part.fill(0, k1);
    }
    if (k1 > k0) await read(start + k0 - g.trim, parts.map((part) => part.subarray(k0, k1)));
    for (let c = 0; c < 2; c++) {
      stft.forward(parts[c], dimF, {
        bins: dimF,
        frames,
        re: spec.subarray(2 * c * plane, (2 * c + 1) * plane),
        im: spec.subarray((2 * c + 1) * plane, (2 * c + 2) * plane),
      });
    }
    for (let c = 0; c < 4; c++) spec.fill(0, c * plane, c * plane + Math.min(3, dimF) * frames); // bins 0-2
    let pred: Float32Array;
    if (p.enableDenoise) {
      const neg = await runModel(spec.map((v) => -v), shape);
      checkOutput(neg, spec.length);
      const pos = await runModel(spec, shape);
      checkOutput(pos, spec.length);
      pred = new Float32Array(spec.length);
      for (let i = 0; i < pred.length; i++) pred[i] = Math.fround(neg[i] * -0.5) + Math.fround(pos[i] * 0.5);
    } else {
      pred = await runModel(spec, shape);
      checkOutput(pred, spec.length);
    }
    const window = actual === g.chunkSize && fullWindow
      ? fullWindow
      : p.overlap !== 0
      ? numpyHanning(actual)
      : undefined;
    for (let c = 0; c < 2; c++) {
      const wave = stft.inverse({
        bins: dimF,
        frames,
        re: pred.subarray(2 * c * plane, (2 * c + 1) * plane),
        im: pred.subarray((2 * c + 1) * plane, (2 * c + 2) * plane),
      });
      const a = acc[c];
      for (let k = 0; k < actual; k++) a[k] += window ? Math.fround(wave[k] * window[k]) : wave[k];
    }
    for (let k = 0; k < actual; k++) div[k] += window ? window[k] : 1;
    onProgress?.(ci + 1, g.chunkStarts.length);
  }
  await finish(g.mixtureLength - base);
}

/**
 * `MDXSeparator.demix(mix)` on whole arrays: `mix` is the normalised stereo mix (2 × N); returns the source
 * (2 × N). demixStream reading from and writing to memory.
 */
export async function demix(
  mix: Float32Array[],
  runModel: MdxModelRunner,
  p: MdxParams,
  onProgress?: MdxProgress,
): Promise<Float32Array[]> {
  const n = checkStereo(mix);
  const out = [new Float32Array(n), new Float32Array(n)];
  await demixStream(
    n,
    (offset, dst) => dst.forEach((d, c) => d.set(mix[c].subarray(offset, offset + d.length))),
    (offset, block) => block.forEach((b, c) => out[c].set(b, offset)),
    runModel,
    p,
    onProgress,
  );
  return out;
}

function checkOutput(pred: Float32Array, expected: number): void {
  if (!(pred instanceof Float32Array) || pred.length !== expected) {
    throw new SeparationError(
      `the MDX model returned ${pred?.length} values, expected ${expected} (1×4×dim_f×dim_t)`,
    );
  }
}

/** What `separateVocals` gives: the vocals as upstream hands them to `write_audio`, plus intermediates. */
export interface SeparationResult {
  /** Vocals, 2 × N float32, peak-normalised to ≤ normalizationThreshold. */
  vocals: Float32Array[];
  /** The mix after its peak normalisation (the demix input). */
  mixNormalized: Float32Array[];
  /** demix output (with compensate), before the final normalisation. */
  demixed: Float32Array[];
}

/**
 * Separates vocals from a 44.1 kHz stereo mix (planar, as `prepare_mix` loads it; a mono file should be
 * duplicated to two channels first). Follows `MDXSeparator.separate`: all-zero input is an error (upstream:
 * "empty or not valid"); the mix is peak-normalised; demixed; the primary source peak-normalised. For a model
 * whose primary stem is not vocals, vocals = normalised mix − normalised primary (upstream's secondary stem).
 * The input arrays are not modified.
 */
export async function separateVocals(
  pcmStereo44k: Float32Array[],
  runModel: MdxModelRunner,
  params: MdxParams = KIM_VOCAL_2_PARAMS,
  onProgress?: MdxProgress,
): Promise<SeparationResult> {
  const n = checkStereo(pcmStereo44k);
  if (!pcmStereo44k.some((ch) => ch.some((v) => v !== 0))) {
    throw new SilentAudioError(`the audio is silent (all samples are zero): nothing to separate`);
  }
  const mix = pcmStereo44k.map((ch) => ch.slice());
  normalizePeak(mix, params.normalizationThreshold);
  const demixed = await demix(mix, runModel, params, onProgress);
  const scale = peakScale(peakOf(demixed), params.normalizationThreshold);
  const secondary = !isVocalsPrimary(params);
  const vocals = demixed.map((ch, c) => {
    const v = new Float32Array(n);
    vocalsBlock(ch, scale, secondary ? mix[c] : undefined, v);
    return v;
  });
  return { vocals, mixNormalized: mix, demixed };
}

/** Whether the model predicts the vocals (else vocals are upstream's secondary stem, mix − prediction). */
export function isVocalsPrimary(p: MdxParams): boolean {
  return p.primaryStem.toLowerCase() === "vocals";
}

/**
 * The vocals stem from a stretch of demix output, as `separate` makes it: the source times `primaryScale` (its
 * peak normalisation, as float32), or, given the normalised `mix` of the same stretch, mix − that (the secondary
 * stem). `dst` may be `source` itself.
 */
export function vocalsBlock(
  source: Float32Array,
  primaryScale: number,
  mix: Float32Array | undefined,
  dst: Float32Array,
): void {
  for (let i = 0; i < source.length; i++) {
    const p = primaryScale === 1 ? source[i] : Math.fround(source[i] * primaryScale);
    dst[i] = mix ? mix[i] - p : p;
  }
}
