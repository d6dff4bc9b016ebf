/**
 * dBFS levels and the gain that sets them (src/stages/audio/loudness.ts), and the int16 conversion the scaled
 * audio is written with (toPcm16): known answers (a full-scale sine, a constant), the asked level read back
 * from the written WAV, and the refusals (silence, clipping, a non-finite target).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { dbfs, scaleToDbfs } from "../src/stages/audio/loudness.ts";
import { encodeWavPcm16, readWav, readWavBytes, toPcm16 } from "../src/stages/audio/wav.ts";

const sine = (n: number, amp: number) =>
  Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * 100 * i) / 16000));
const SPEECH = fileURLToPath(new URL("../fixtures/speech.wav", import.meta.url));

Deno.test("dbfs: a full-scale sine is 0 dBFS peak and -3.01 RMS; a constant 0.5 is -6.02 both ways", () => {
  const s = sine(16000, 1); // 100 whole periods: the RMS is exactly 1/sqrt(2)
  assert.ok(Math.abs(dbfs([s], "peak")) < 1e-6);
  assert.ok(Math.abs(dbfs([s], "rms") - 20 * Math.log10(Math.SQRT1_2)) < 1e-4, String(dbfs([s], "rms")));
  const half = new Float32Array(100).fill(0.5);
  assert.ok(Math.abs(dbfs([half], "peak") + 6.0206) < 1e-4);
  assert.ok(Math.abs(dbfs([half], "rms") + 6.0206) < 1e-4);
  // Two channels: the peak of both, the RMS over every sample (0.5 and 0 -> sqrt(0.125)).
  assert.ok(Math.abs(dbfs([half, new Float32Array(100)], "rms") - 20 * Math.log10(Math.sqrt(0.125))) < 1e-4);
  assert.equal(dbfs([new Float32Array(10)], "peak"), -Infinity);
});

Deno.test("scaleToDbfs: the result measures the level asked, one gain for every sample", () => {
  const s = sine(16000, 0.3);
  for (const measure of ["peak", "rms"] as const) {
    for (const target of [-20, -10, -6]) {
      const { channels, gain } = scaleToDbfs([s, s.map((v) => v / 2)], target, measure);
      assert.ok(Math.abs(dbfs(channels, measure) - target) < 1e-4, `${measure} ${target}`);
      assert.equal(channels[1][40], Math.fround(Math.fround(s[40] / 2) * gain));
    }
  }
  // The input is left as it was.
  assert.ok(Math.abs(dbfs([s], "peak") - 20 * Math.log10(0.3)) < 1e-4);
});

Deno.test("scaleToDbfs: the speech fixture at -20/-10/0 dBFS peak reads back at that level from its WAV", async () => {
  const wav = await readWav(SPEECH);
  for (const target of [-20, -10, 0]) {
    const { channels } = scaleToDbfs(wav.channels, target, "peak");
    const back = readWavBytes(encodeWavPcm16(toPcm16(channels), channels.length, wav.sampleRate));
    // int16 rounding moves a peak of ~3,000+ counts by at most half a count: < 0.002 dB.
    assert.ok(
      Math.abs(dbfs(back.channels, "peak") - target) < 2e-3,
      `${target}: ${dbfs(back.channels, "peak")}`,
    );
    assert.equal(back.channels[0].length, wav.channels[0].length);
  }
});

Deno.test("scaleToDbfs refuses silence, clipping and a non-finite target", () => {
  assert.throws(() => scaleToDbfs([new Float32Array(8)], -10, "peak"), /silence/);
  // A sine at 0 dBFS RMS would need a peak of +3 dBFS.
  assert.throws(() => scaleToDbfs([sine(16000, 0.1)], 0, "rms"), /peak at 3\.01 dBFS: it would clip/);
  assert.throws(() => scaleToDbfs([sine(100, 0.1)], NaN, "peak"), /finite/);
});

Deno.test("toPcm16: round(x*32768), clamped, interleaved; int16 samples survive the round trip bit-exact", () => {
  const left = Float32Array.from([0, 0.5, -1, 1, 1.5, -2, 1 / 32768, 0.4 / 32768]);
  const right = left.map((v) => -v);
  const pcm = toPcm16([left, right]);
  assert.deepEqual(Array.from(pcm.filter((_, i) => i % 2 === 0)), [
    0,
    16384,
    -32768,
    32767,
    32767,
    -32768,
    1,
    0,
  ]);
  assert.deepEqual(Array.from(pcm.filter((_, i) => i % 2 === 1)), [
    0,
    -16384,
    32767,
    -32768,
    -32768,
    32767,
    -1,
    0,
  ]);
  const ints = Int16Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 65536) - 32768);
  const read = readWavBytes(encodeWavPcm16(ints, 1, 16000)).channels;
  assert.deepEqual(toPcm16(read), ints);
  assert.throws(() => toPcm16([new Float32Array(2), new Float32Array(3)]), /differ in length/);
});
