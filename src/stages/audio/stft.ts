/**
 * STFT and inverse STFT with torch's semantics as audio-separator's `STFT` class uses them:
 * `torch.stft(n_fft, hop, window=hann_window(n_fft, periodic=True), center=True, pad_mode="reflect")` and
 * `torch.istft(..., center=True)` (window-squared overlap-add normalisation, n_fft/2 trimmed at both ends).
 * Arithmetic is float64 internally; torch works in float32, so results agree to float32 rounding.
 */
import { RealFft } from "./fft.ts";

/** Frames per block when moving between frame-major FFT buffers and the bin-major spectrogram. */
const BLOCK = 32;

/** torch.hann_window(n, periodic=True) in float32, computed the way torch does (arange·(2π/n) → cos → ·-0.5 + 0.5). */
export function torchHannWindow(n: number): Float32Array {
  const w = new Float32Array(n);
  const step = Math.fround((2 * Math.PI) / n);
  for (let i = 0; i < n; i++) {
    const c = Math.fround(Math.cos(Math.fround(i * step)));
    w[i] = Math.fround(0.5 + Math.fround(-0.5 * c));
  }
  return w;
}

/** A spectrogram: `re`/`im` hold `bins × frames` values, frequency-major (bin f, frame t at f·frames + t). */
export interface Spectrogram {
  bins: number;
  frames: number;
  re: Float32Array;
  im: Float32Array;
}

/** One STFT configuration (n_fft, hop) with its FFT plan and window. */
export class TorchStft {
  readonly nFft: number;
  readonly hop: number;
  readonly window: Float32Array;
  private readonly fft: RealFft;
  private readonly frame: Float64Array;
  private readonly fRe: Float64Array;
  private readonly fIm: Float64Array;

  constructor(nFft: number, hop: number) {
    if (nFft % 2) throw new RangeError(`n_fft must be even, got ${nFft}`);
    this.nFft = nFft;
    this.hop = hop;
    this.window = torchHannWindow(nFft);
    this.fft = new RealFft(nFft);
    this.frame = new Float64Array(nFft);
    this.fRe = new Float64Array(nFft / 2 + 1);
    this.fIm = new Float64Array(nFft / 2 + 1);
  }

  /** Number of frames torch.stft(center=True) gives for `length` samples. */
  frameCount(length: number): number {
    return 1 + Math.floor(length / this.hop);
  }

  /**
   * STFT of `x`, keeping the first `keepBins` bins (audio-separator keeps dim_f of n_fft/2+1). Writes into
   * `out` when given (re and im planes may be views into a larger model input), else allocates.
   */
  forward(x: Float32Array, keepBins = this.nFft / 2 + 1, out?: Spectrogram): Spectrogram {
    const n = this.nFft, pad = n / 2, len = x.length;
    if (len <= pad) {
      throw new RangeError(`reflect padding of ${pad} needs more than ${pad} samples, got ${len}`);
    }
    const frames = this.frameCount(len);
    const spec = out ?? {
      bins: keepBins,
      frames,
      re: new Float32Array(keepBins * frames),
      im: new Float32Array(keepBins * frames),
    };
    const w = this.window, fr = this.frame, re = this.fRe, im = this.fIm;
    // Frames are computed in blocks and written bin-major block by block: writing one frame at a time
    // strides across the whole spectrogram and is several times slower.
    const bRe = new Float64Array(BLOCK * keepBins), bIm = new Float64Array(BLOCK * keepBins);
    for (let t0 = 0; t0 < frames; t0 += BLOCK) {
      const nb = Math.min(BLOCK, frames - t0);
      for (let b = 0; b < nb; b++) {
        const start = (t0 + b) * this.hop - pad; // position in x of frame sample 0
        if (start >= 0 && start + n <= len) {
          for (let i = 0; i < n; i++) fr[i] = x[start + i] * w[i];
        } else {
          for (let i = 0; i < n; i++) {
            let p = start + i;
            if (p < 0) p = -p; // reflect without repeating the edge sample
            else if (p >= len) p = 2 * (len - 1) - p;
            fr[i] = x[p] * w[i];
          }
        }
        this.fft.forward(fr, re, im);
        bRe.set(re.subarray(0, keepBins), b * keepBins);
        bIm.set(im.subarray(0, keepBins), b * keepBins);
      }
      for (let f = 0; f < keepBins; f++) {
        const o = f * frames + t0;
        for (let b = 0; b < nb; b++) {
          spec.re[o + b] = bRe[b * keepBins + f];
          spec.im[o + b] = bIm[b * keepBins + f];
        }
      }
    }
    return spec;
  }

  /**
   * Inverse STFT (torch.istft, center=True, no `length`): bins beyond `spec.bins` are zero. Returns
   * hop·(frames−1) samples.
   */
  inverse(spec: Spectrogram): Float32Array {
    const n = this.nFft, hop = this.hop, frames = spec.frames, nb = n / 2 + 1, pad = n / 2;
    const total = n + hop * (frames - 1);
    const acc = new Float64Array(total);
    const env = new Float64Array(total);
    const y = this.frame, w = this.window;
    const used = Math.min(spec.bins, nb);
    const bRe = new Float64Array(BLOCK * nb), bIm = new Float64Array(BLOCK * nb); // bins >= used stay zero
    for (let t0 = 0; t0 < frames; t0 += BLOCK) {
      const nbk = Math.min(BLOCK, frames - t0);
      for (let f = 0; f < used; f++) {
        const o = f * frames + t0;
        for (let b = 0; b < nbk; b++) {
          bRe[b * nb + f] = spec.re[o + b];
          bIm[b * nb + f] = spec.im[o + b];
        }
      }
      for (let b = 0; b < nbk; b++) {
        this.fft.inverse(bRe.subarray(b * nb, (b + 1) * nb), bIm.subarray(b * nb, (b + 1) * nb), y);
        const o = (t0 + b) * hop;
        for (let i = 0; i < n; i++) {
          acc[o + i] += y[i] * w[i];
          env[o + i] += w[i] * w[i];
        }
      }
    }
    const out = new Float32Array(hop * (frames - 1));
    for (let i = 0; i < out.length; i++) {
      const e = env[pad + i];
      // torch asserts the envelope is non-zero (NOLA); a Hann window with hop <= n_fft/2 always passes.
      out[i] = e > 1e-11 ? acc[pad + i] / e : 0;
    }
    return out;
  }
}
