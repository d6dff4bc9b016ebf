import assert from "node:assert/strict";
import {
  decodeSamples,
  encodeWavPcm16,
  parseWavHeader,
  readWavBytes,
  WavFormatError,
} from "../src/stages/audio/wav.ts";
import { assertArrayEqual } from "./helpers/audio_assert.ts";

/** A WAV with an arbitrary fmt chunk (optionally extensible) and a LIST chunk before the data. */
function wav(
  code: number,
  bits: number,
  channels: number,
  rate: number,
  data: Uint8Array,
  extensible = false,
) {
  const fmtLen = extensible ? 40 : 16;
  const list = new TextEncoder().encode("LIST\x04\x00\x00\x00INFO");
  const out = new Uint8Array(12 + 8 + fmtLen + list.length + 8 + data.length);
  const v = new DataView(out.buffer);
  out.set(new TextEncoder().encode("RIFF"), 0);
  v.setUint32(4, out.length - 8, true);
  out.set(new TextEncoder().encode("WAVEfmt "), 8);
  v.setUint32(16, fmtLen, true);
  v.setUint16(20, extensible ? 0xfffe : code, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, rate, true);
  v.setUint16(34, bits, true);
  if (extensible) {
    v.setUint16(36, 22, true);
    v.setUint16(44, code, true);
  }
  let o = 20 + fmtLen;
  out.set(list, o);
  o += list.length;
  out.set(new TextEncoder().encode("data"), o);
  v.setUint32(o + 4, data.length, true);
  out.set(data, o + 8);
  return out;
}

Deno.test("PCM16 round trip and exact int16/32768 scaling", () => {
  const pcm = Int16Array.from([0, 1, -1, 32767, -32768, 1234, -4321, 7]);
  const a = readWavBytes(encodeWavPcm16(pcm, 2, 44100));
  assert.equal(a.sampleRate, 44100);
  assert.equal(a.format, "pcm16");
  assertArrayEqual(a.channels[0], Float32Array.from([0, -1, -32768, -4321], (v) => v / 32768), "left");
  assertArrayEqual(a.channels[1], Float32Array.from([1, 32767, 1234, 7], (v) => v / 32768), "right");
});

Deno.test("8/24/32-bit PCM, float32 and extensible headers are scaled like libsndfile", () => {
  const u8 = Uint8Array.from([0, 128, 255]);
  assertArrayEqual(decodeSamples(u8, "pcm8"), Float32Array.from([-1, 0, 127 / 128]), "pcm8");
  const b24 = Uint8Array.from([0xff, 0xff, 0x7f, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00]);
  assertArrayEqual(
    decodeSamples(b24, "pcm24"),
    Float32Array.from([8388607 / 8388608, -1, 1 / 8388608]),
    "pcm24",
  );
  const i32 = new Uint8Array(Int32Array.from([2147483647, -2147483648, 65537]).buffer);
  assertArrayEqual(decodeSamples(i32, "pcm32"), Float32Array.from([1, -1, 65537 / 2147483648]), "pcm32");
  const f = Float32Array.from([0.25, -0.5, 1.5]);
  const a = readWavBytes(wav(3, 32, 1, 16000, new Uint8Array(f.buffer), true));
  assert.equal(a.format, "float32");
  assertArrayEqual(a.channels[0], f, "extensible float32");
});

Deno.test("streamed WAV (data size 0xFFFFFFFF) reads to the end; odd trailing bytes are dropped", () => {
  const bytes = encodeWavPcm16(Int16Array.from([1, 2, 3]), 1, 8000);
  new DataView(bytes.buffer).setUint32(40, 0xffffffff, true);
  const h = parseWavHeader(bytes)!;
  assert.equal(h.dataBytes, undefined);
  const extra = new Uint8Array(bytes.length + 1);
  extra.set(bytes);
  assert.equal(readWavBytes(extra).channels[0].length, 3);
});

Deno.test("bad WAVs get one-line errors naming the file", () => {
  assert.throws(() => readWavBytes(new TextEncoder().encode("RIFF....AVI LIST"), "clip.avi"), (e: Error) => {
    assert.ok(e instanceof WavFormatError);
    assert.match(e.message, /^clip\.avi: not a RIFF\/WAVE file$/);
    return true;
  });
  assert.throws(
    () => readWavBytes(wav(2, 4, 1, 8000, new Uint8Array(4)), "adpcm.wav"),
    /adpcm\.wav: unsupported WAV encoding \(format code 2, 4 bits\)/,
  );
  assert.throws(
    () => readWavBytes(encodeWavPcm16(new Int16Array(4), 1, 8000).slice(0, 30), "cut.wav"),
    /cut\.wav: WAV header is truncated/,
  );
  assert.equal(parseWavHeader(new Uint8Array(4)), undefined);
});
