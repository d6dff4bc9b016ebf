import assert from "node:assert/strict";
import { ComplexFft, RealFft } from "../src/stages/audio/fft.ts";
import { torchHannWindow, TorchStft } from "../src/stages/audio/stft.ts";

function rand(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

function naiveDft(re: Float64Array, im: Float64Array, sign: number): [Float64Array, Float64Array] {
  const n = re.length, R = new Float64Array(n), I = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) {
      const t = (sign * 2 * Math.PI * ((j * k) % n)) / n;
      R[k] += re[j] * Math.cos(t) - im[j] * Math.sin(t);
      I[k] += re[j] * Math.sin(t) + im[j] * Math.cos(t);
    }
  }
  return [R, I];
}

Deno.test("complex FFT matches a direct DFT for mixed-radix and prime lengths, both directions", () => {
  for (const n of [1, 2, 3, 4, 5, 6, 7, 12, 15, 16, 30, 60, 77, 120, 240]) {
    const re = rand(n, n), im = rand(n, n + 99);
    const fft = new ComplexFft(n);
    for (const inverse of [false, true]) {
      const R = new Float64Array(n), I = new Float64Array(n);
      fft.transform(re, im, R, I, inverse);
      const [r, i] = naiveDft(re, im, inverse ? 1 : -1);
      for (let k = 0; k < n; k++) {
        assert.ok(
          Math.abs(R[k] - r[k]) < 1e-10 && Math.abs(I[k] - i[k]) < 1e-10,
          `n=${n} k=${k} inverse=${inverse}`,
        );
      }
    }
  }
});

Deno.test("real FFT of 7680 = 2^9·3·5: forward matches the DFT at sample bins, inverse restores the input", () => {
  const n = 7680, x = rand(n, 7);
  const f = new RealFft(n);
  const R = new Float64Array(n / 2 + 1), I = new Float64Array(n / 2 + 1);
  f.forward(x, R, I);
  for (const k of [0, 1, 2, 3, 1000, 1919, 2560, 3839, 3840]) {
    let a = 0, b = 0;
    for (let j = 0; j < n; j++) {
      const t = (-2 * Math.PI * ((j * k) % n)) / n;
      a += x[j] * Math.cos(t);
      b += x[j] * Math.sin(t);
    }
    assert.ok(Math.abs(R[k] - a) < 1e-9 && Math.abs(I[k] - b) < 1e-9, `bin ${k}`);
  }
  I[0] = 3; // c2r ignores the imaginary parts of DC and Nyquist
  I[n / 2] = -2;
  const back = new Float64Array(n);
  f.inverse(R, I, back);
  for (let j = 0; j < n; j++) assert.ok(Math.abs(back[j] - x[j]) < 1e-12);
});

Deno.test("torch periodic Hann window: float32 arithmetic, so not exactly symmetric", () => {
  // torch: arange(n+1)·float32(2π/n) → cos → ·(−0.5) + 0.5, all float32 (numpy float32 gives the same values)
  const w = Array.from(torchHannWindow(8));
  assert.deepEqual(w, [
    0,
    0.1464466154575348,
    0.5,
    0.8535534143447876,
    1,
    0.853553295135498,
    0.5,
    0.14644649624824524,
  ]);
});

Deno.test("STFT: frame count, reflect padding at the edges, and iSTFT(STFT(x)) = x", () => {
  const nFft = 16, hop = 4, len = 40;
  const x = Float32Array.from(rand(len, 3));
  const stft = new TorchStft(nFft, hop);
  const spec = stft.forward(x);
  assert.equal(spec.frames, 11);
  assert.equal(spec.bins, 9);
  // frame 0 is centred on sample 0: reflect-padded x[8..1], x[0..7], windowed
  const w = torchHannWindow(nFft);
  const frame = Array.from({ length: nFft }, (_, i) => x[Math.abs(i - 8)] * w[i]);
  for (const k of [0, 1, 4, 8]) {
    let a = 0, b = 0;
    for (let j = 0; j < nFft; j++) {
      a += frame[j] * Math.cos((-2 * Math.PI * j * k) / nFft);
      b += frame[j] * Math.sin((-2 * Math.PI * j * k) / nFft);
    }
    assert.ok(
      Math.abs(spec.re[k * spec.frames] - a) < 1e-6 && Math.abs(spec.im[k * spec.frames] - b) < 1e-6,
      `bin ${k}`,
    );
  }
  const back = stft.inverse(spec);
  assert.equal(back.length, hop * (spec.frames - 1));
  for (let i = 0; i < back.length; i++) assert.ok(Math.abs(back[i] - x[i]) < 1e-6, `sample ${i}`);
  // keeping fewer bins zeroes the rest on the way back: a DC-free signal below those bins survives
  const kept = stft.forward(x, 5);
  assert.equal(kept.re.length, 5 * spec.frames);
  assert.throws(() => stft.forward(new Float32Array(8)), /reflect padding/);
});
