/**
 * A small float64 mixed-radix FFT (any length; radix 2, 3 and 4 butterflies are unrolled, other factors use a
 * generic butterfly) and a real FFT built on it (even lengths).
 *
 * Written here rather than taken from npm because MDX needs n_fft = 7680 = 2^9·3·5: fft.js and webfft are
 * powers of two only; kissfft-js (asm.js, last changed 2017) is float32 and its complex inverse is broken;
 * kissfft-wasm does not load its .wasm under Deno; @echogarden/pffft-wasm ships bare Emscripten exports
 * with no API; ndarray-fft pads to powers of two (Bluestein) and pulls five packages. Float64 also keeps the
 * FFT's own rounding far below torch's float32 STFT, the reference it is compared with.
 */

function factorize(n: number): number[] {
  const f: number[] = [];
  while (n % 4 === 0) {
    f.push(4);
    n /= 4;
  }
  for (let p = 2; n > 1; p++) {
    while (n % p === 0) {
      f.push(p);
      n /= p;
    }
    if (p * p > n && n > 1) {
      f.push(n);
      break;
    }
  }
  return f;
}

/** Complex DFT of a fixed length n: X[k] = Σ x[j]·exp(∓2πi·jk/n), unnormalised both ways. */
export class ComplexFft {
  readonly n: number;
  private readonly factors: number[];
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly sRe: Float64Array;
  private readonly sIm: Float64Array;
  // state of the current transform (avoids passing eight arrays through the recursion)
  private inRe!: ArrayLike<number>;
  private inIm!: ArrayLike<number>;
  private outRe!: Float64Array;
  private outIm!: Float64Array;
  private sign = -1;

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`FFT length must be a positive integer, got ${n}`);
    }
    this.n = n;
    this.factors = n === 1 ? [1] : factorize(n);
    this.cos = new Float64Array(n);
    this.sin = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const a = (2 * Math.PI * k) / n;
      this.cos[k] = Math.cos(a);
      this.sin[k] = Math.sin(a);
    }
    const pmax = Math.max(...this.factors);
    this.sRe = new Float64Array(pmax);
    this.sIm = new Float64Array(pmax);
  }

  /**
   * Writes the DFT of (inRe, inIm) to (outRe, outIm); `inverse` flips the exponent's sign (no 1/n scaling).
   * Input and output must not overlap.
   */
  transform(
    inRe: ArrayLike<number>,
    inIm: ArrayLike<number>,
    outRe: Float64Array,
    outIm: Float64Array,
    inverse = false,
  ): void {
    this.inRe = inRe;
    this.inIm = inIm;
    this.outRe = outRe;
    this.outIm = outIm;
    this.sign = inverse ? 1 : -1;
    this.work(0, 0, 1, 0, this.n);
  }

  private work(outOff: number, inOff: number, fstride: number, fi: number, len: number): void {
    const p = this.factors[fi];
    const m = len / p;
    if (m === 1) {
      for (let j = 0; j < p; j++) {
        this.outRe[outOff + j] = this.inRe[inOff + j * fstride];
        this.outIm[outOff + j] = this.inIm[inOff + j * fstride];
      }
    } else {
      for (let j = 0; j < p; j++) this.work(outOff + j * m, inOff + j * fstride, fstride * p, fi + 1, m);
    }
    if (p === 4) this.radix4(outOff, fstride, m);
    else if (p === 2) this.radix2(outOff, fstride, m);
    else if (p === 3) this.radix3(outOff, fstride, m);
    else if (p > 1) this.generic(outOff, fstride, p, m);
  }

  // Each butterfly combines p sub-transforms of length m stored at out[off + j·m + u]:
  // X[u + q·m] = Σ_j (Y_j[u]·W^(j·u·fstride)) · W_p^(j·q), with W = exp(sign·2πi/n).

  private radix2(off: number, fs: number, m: number): void {
    const re = this.outRe, im = this.outIm, c = this.cos, s = this.sin, sg = this.sign;
    for (let u = 0; u < m; u++) {
      const a = off + u, b = a + m, t = u * fs;
      const wr = c[t], wi = sg * s[t];
      const br = re[b] * wr - im[b] * wi, bi = re[b] * wi + im[b] * wr;
      const ar = re[a], ai = im[a];
      re[a] = ar + br;
      im[a] = ai + bi;
      re[b] = ar - br;
      im[b] = ai - bi;
    }
  }

  private radix3(off: number, fs: number, m: number): void {
    const re = this.outRe, im = this.outIm, c = this.cos, s = this.sin, sg = this.sign;
    const h = sg * Math.sqrt(3) / 2;
    for (let u = 0; u < m; u++) {
      const i0 = off + u, i1 = i0 + m, i2 = i1 + m, t1 = u * fs, t2 = 2 * t1;
      const w1r = c[t1], w1i = sg * s[t1], w2r = c[t2], w2i = sg * s[t2];
      const x1r = re[i1] * w1r - im[i1] * w1i, x1i = re[i1] * w1i + im[i1] * w1r;
      const x2r = re[i2] * w2r - im[i2] * w2i, x2i = re[i2] * w2i + im[i2] * w2r;
      const sr = x1r + x2r, si = x1i + x2i, dr = x1r - x2r, di = x1i - x2i;
      const x0r = re[i0], x0i = im[i0];
      const mr = x0r - 0.5 * sr, mi = x0i - 0.5 * si;
      re[i0] = x0r + sr;
      im[i0] = x0i + si;
      re[i1] = mr - h * di;
      im[i1] = mi + h * dr;
      re[i2] = mr + h * di;
      im[i2] = mi - h * dr;
    }
  }

  private radix4(off: number, fs: number, m: number): void {
    const re = this.outRe, im = this.outIm, c = this.cos, s = this.sin, sg = this.sign;
    for (let u = 0; u < m; u++) {
      const i0 = off + u, i1 = i0 + m, i2 = i1 + m, i3 = i2 + m;
      const t1 = u * fs, t2 = 2 * t1, t3 = 3 * t1;
      const w1r = c[t1], w1i = sg * s[t1], w2r = c[t2], w2i = sg * s[t2], w3r = c[t3], w3i = sg * s[t3];
      const x1r = re[i1] * w1r - im[i1] * w1i, x1i = re[i1] * w1i + im[i1] * w1r;
      const x2r = re[i2] * w2r - im[i2] * w2i, x2i = re[i2] * w2i + im[i2] * w2r;
      const x3r = re[i3] * w3r - im[i3] * w3i, x3i = re[i3] * w3i + im[i3] * w3r;
      const x0r = re[i0], x0i = im[i0];
      const ar = x0r + x2r, ai = x0i + x2i, br = x0r - x2r, bi = x0i - x2i;
      const cr = x1r + x3r, ci = x1i + x3i, dr = x1r - x3r, di = x1i - x3i;
      // W_4 = sign·i, so W_4·d = (-sign·d.im, sign·d.re)
      re[i0] = ar + cr;
      im[i0] = ai + ci;
      re[i2] = ar - cr;
      im[i2] = ai - ci;
      re[i1] = br - sg * di;
      im[i1] = bi + sg * dr;
      re[i3] = br + sg * di;
      im[i3] = bi - sg * dr;
    }
  }

  private generic(off: number, fs: number, p: number, m: number): void {
    const re = this.outRe, im = this.outIm, c = this.cos, s = this.sin, sg = this.sign, n = this.n;
    const sr = this.sRe, si = this.sIm, np = fs * m; // W_p = W^(n/p) and n/p = fs·m
    for (let u = 0; u < m; u++) {
      for (let j = 0; j < p; j++) {
        const k = off + u + j * m, t = j * u * fs;
        const wr = c[t], wi = sg * s[t];
        sr[j] = re[k] * wr - im[k] * wi;
        si[j] = re[k] * wi + im[k] * wr;
      }
      for (let q = 0; q < p; q++) {
        let accR = 0, accI = 0;
        for (let j = 0; j < p; j++) {
          const t = (j * q * np) % n;
          const wr = c[t], wi = sg * s[t];
          accR += sr[j] * wr - si[j] * wi;
          accI += sr[j] * wi + si[j] * wr;
        }
        re[off + u + q * m] = accR;
        im[off + u + q * m] = accI;
      }
    }
  }
}

/** Real FFT of an even length n through a complex FFT of n/2 (the usual even/odd packing). */
export class RealFft {
  readonly n: number;
  /** Number of non-negative frequency bins, n/2 + 1. */
  readonly bins: number;
  private readonly half: ComplexFft;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly zRe: Float64Array;
  private readonly zIm: Float64Array;
  private readonly yRe: Float64Array;
  private readonly yIm: Float64Array;

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 2 || n % 2) {
      throw new RangeError(`real FFT length must be even, got ${n}`);
    }
    this.n = n;
    const h = n / 2;
    this.bins = h + 1;
    this.half = new ComplexFft(h);
    this.cos = new Float64Array(h + 1);
    this.sin = new Float64Array(h + 1);
    for (let k = 0; k <= h; k++) {
      this.cos[k] = Math.cos((2 * Math.PI * k) / n);
      this.sin[k] = Math.sin((2 * Math.PI * k) / n);
    }
    this.zRe = new Float64Array(h);
    this.zIm = new Float64Array(h);
    this.yRe = new Float64Array(h);
    this.yIm = new Float64Array(h);
  }

  /** X[k] = Σ x[j]·exp(-2πi·jk/n) for k = 0..n/2, written to outRe/outIm (length n/2+1). */
  forward(x: ArrayLike<number>, outRe: Float64Array, outIm: Float64Array): void {
    const h = this.n / 2, zr = this.zRe, zi = this.zIm, yr = this.yRe, yi = this.yIm;
    for (let k = 0; k < h; k++) {
      zr[k] = x[2 * k];
      zi[k] = x[2 * k + 1];
    }
    this.half.transform(zr, zi, yr, yi);
    for (let k = 0; k <= h; k++) {
      const a = k % h, b = (h - k) % h;
      const ar = yr[a], ai = yi[a], br = yr[b], bi = -yi[b]; // b = conj(Y[h-k])
      const er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
      const or = 0.5 * (ai - bi), oi = -0.5 * (ar - br); // (a-b)/(2i)
      const wr = this.cos[k], wi = -this.sin[k];
      outRe[k] = er + or * wr - oi * wi;
      outIm[k] = ei + or * wi + oi * wr;
    }
  }

  /**
   * The real x (length n) whose spectrum is X, scaled by 1/n (numpy/torch irfft). The imaginary parts of
   * bins 0 and n/2 are ignored, as every c2r transform does.
   */
  inverse(re: ArrayLike<number>, im: ArrayLike<number>, out: Float64Array): void {
    const h = this.n / 2, zr = this.zRe, zi = this.zIm, yr = this.yRe, yi = this.yIm;
    for (let k = 0; k < h; k++) {
      const ar = re[k], ai = k === 0 ? 0 : im[k];
      const br = re[h - k], bi = k === 0 ? 0 : -im[h - k]; // conj(X[h-k])
      const er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
      const dr = 0.5 * (ar - br), di = 0.5 * (ai - bi);
      const wr = this.cos[k], wi = this.sin[k]; // exp(+2πik/n)
      const or = dr * wr - di * wi, oi = dr * wi + di * wr;
      yr[k] = er - oi; // E + i·O
      yi[k] = ei + or;
    }
    this.half.transform(yr, yi, zr, zi, true);
    const scale = 1 / h;
    for (let k = 0; k < h; k++) {
      out[2 * k] = zr[k] * scale;
      out[2 * k + 1] = zi[k] * scale;
    }
  }
}
