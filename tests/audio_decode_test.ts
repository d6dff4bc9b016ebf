import assert from "node:assert/strict";
import { join } from "node:path";
import { AudioDecodeError, decodeAudio, decodeAudioChunks } from "../src/stages/audio/decode.ts";
import { encodeWavPcm16, readWav } from "../src/stages/audio/wav.ts";
import { media, mediaDir } from "./helpers/audio_media.ts";
import { assertArrayEqual } from "./helpers/audio_assert.ts";

function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / x.length);
}

Deno.test("0.01 s 16 kHz PCM16 WAV is read directly: exactly int16/32768, same as ffmpeg's decode", async () => {
  const path = await media("tone_10ms_16k_mono.wav");
  const direct = await decodeAudio(path, { sampleRate: 16000, channels: 1 });
  assert.equal(direct.channels[0].length, 160);
  const bytes = await Deno.readFile(path);
  const raw = new Int16Array(bytes.slice(bytes.length - 320).buffer);
  assertArrayEqual(direct.channels[0], Float32Array.from(raw, (v) => v / 32768), "direct read");
  const viaFfmpeg = await decodeAudio(path, { sampleRate: 16000, channels: 1, forceFfmpeg: true });
  assertArrayEqual(viaFfmpeg.channels[0], direct.channels[0], "ffmpeg path");
});

Deno.test("silence decodes to zeros", async () => {
  const a = await decodeAudio(await media("silence_16k_mono.wav"), { sampleRate: 16000, channels: 1 });
  assert.equal(a.channels[0].length, 8000);
  assert.ok(a.channels[0].every((v) => v === 0));
});

Deno.test("8 kHz mono is resampled to 16 kHz and duplicated for stereo", async () => {
  const path = await media("tone_8k_mono.wav");
  const m = await decodeAudio(path, { sampleRate: 16000, channels: 1 });
  assert.equal(m.sampleRate, 16000);
  assert.ok(Math.abs(m.channels[0].length - 8000) <= 16, `length ${m.channels[0].length}`);
  assert.ok(Math.abs(rms(m.channels[0].subarray(200, 7800)) - 0.125 / Math.SQRT2) < 0.005);
  const s = await decodeAudio(path, { sampleRate: 44100, channels: 2 });
  assert.equal(s.channels.length, 2);
  assertArrayEqual(s.channels[1], s.channels[0], "mono duplicated to both channels");
});

Deno.test("48 kHz stereo: mono is the float32 mean of the channels (librosa), stereo keeps them apart", async () => {
  const path = await media("tones_48k_stereo.wav");
  const st = await decodeAudio(path, { sampleRate: 16000, channels: 2 });
  const mono = await decodeAudio(path, { sampleRate: 16000, channels: 1 });
  const [l, r] = st.channels;
  assert.equal(mono.channels[0].length, l.length);
  assertArrayEqual(mono.channels[0], l.map((v, i) => Math.fround(v + r[i]) / 2), "mono = mean");
  let diff = 0;
  for (let i = 0; i < l.length; i++) diff = Math.max(diff, Math.abs(l[i] - r[i]));
  assert.ok(diff > 0.1, "channels carry different tones");
  const s44 = await decodeAudio(path, { sampleRate: 44100, channels: 2 });
  assert.ok(Math.abs(s44.channels[0].length - 22050) <= 16);
});

Deno.test("stereo WAV at the target rate: direct mono mean is exact", async () => {
  const path = await media("tones_16k_stereo.wav");
  const w = await readWav(path);
  const mono = await decodeAudio(path, { sampleRate: 16000, channels: 1 });
  const [l, r] = w.channels;
  assertArrayEqual(mono.channels[0], l.map((v, i) => Math.fround(v + r[i]) / 2), "mono");
});

Deno.test("6-channel audio: mono averages all six; stereo is down-mixed by ffmpeg", async () => {
  const path = await media("tones_44k_6ch.wav");
  const w = await readWav(path);
  assert.equal(w.channels.length, 6);
  const mono = await decodeAudio(path, { sampleRate: 44100, channels: 1 });
  const i = 1000;
  let s = w.channels[0][i];
  for (let c = 1; c < 6; c++) s = Math.fround(s + w.channels[c][i]);
  assert.equal(mono.channels[0][i], Math.fround(s / 6));
  const st = await decodeAudio(path, { sampleRate: 44100, channels: 2 });
  assert.equal(st.channels.length, 2);
  assert.equal(st.channels[0].length, w.channels[0].length);
});

Deno.test("mp3 and a video's audio track decode", async () => {
  const mp3 = await decodeAudio(await media("tone_44k_mono.mp3"), { sampleRate: 16000, channels: 1 });
  assert.ok(Math.abs(mp3.channels[0].length - 8000) < 1200, `mp3 length ${mp3.channels[0].length}`);
  assert.ok(Math.abs(rms(mp3.channels[0].subarray(1500, 6500)) - 0.125 / Math.SQRT2) < 0.01);
  const vid = await decodeAudio(await media("video_with_sound.mp4"), { sampleRate: 44100, channels: 2 });
  assert.ok(
    Math.abs(vid.channels[0].length - 0.6 * 44100) < 3000,
    `video audio length ${vid.channels[0].length}`,
  );
  assert.ok(rms(vid.channels[0]) > 0.05);
});

Deno.test("clear errors: no audio stream, not audio, empty, missing, no samples", async () => {
  const cases: [string, RegExp][] = [
    [await media("video_no_sound.mp4"), /video_no_sound\.mp4: no audio stream/],
    [join(mediaDir(), "missing.wav"), /missing\.wav: no such file/],
  ];
  const text = join(mediaDir(), "notes.wav");
  await Deno.writeTextFile(text, "these are not samples\n".repeat(20));
  cases.push([text, /notes\.wav: not an audio or video file/]);
  const empty = join(mediaDir(), "empty.wav");
  await Deno.writeFile(empty, new Uint8Array());
  cases.push([empty, /empty\.wav: file is empty/]);
  const noFrames = join(mediaDir(), "no_frames.wav");
  await Deno.writeFile(noFrames, encodeWavPcm16(new Int16Array(0), 1, 16000));
  cases.push([noFrames, /no_frames\.wav: contains no audio samples/]);
  for (const [path, re] of cases) {
    await assert.rejects(decodeAudio(path, { sampleRate: 16000, channels: 1 }), (e: Error) => {
      assert.ok(e instanceof AudioDecodeError, `${path}: ${e}`);
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"), "one-line message");
      return true;
    });
  }
});

Deno.test("chunk iterator: fixed-size chunks that concatenate to the whole decode; early stop is clean", async () => {
  const path = await media("tones_48k_stereo.wav");
  const whole = await decodeAudio(path, { sampleRate: 16000, channels: 2 });
  const sizes: number[] = [];
  const got = [new Float32Array(whole.channels[0].length), new Float32Array(whole.channels[0].length)];
  let o = 0;
  for await (const c of decodeAudioChunks(path, { sampleRate: 16000, channels: 2, chunkFrames: 3000 })) {
    sizes.push(c[0].length);
    got[0].set(c[0], o);
    got[1].set(c[1], o);
    o += c[0].length;
  }
  assert.ok(sizes.slice(0, -1).every((s) => s === 3000));
  assert.equal(o, whole.channels[0].length);
  assertArrayEqual(got[0], whole.channels[0], "left");
  assertArrayEqual(got[1], whole.channels[1], "right");
  let n = 0;
  for await (const _ of decodeAudioChunks(path, { sampleRate: 16000, channels: 1, chunkFrames: 100 })) {
    if (++n === 2) break; // must stop ffmpeg rather than hang or leak
  }
  assert.equal(n, 2);
});

Deno.test("fixtures/speech.wav: 16 kHz mono 16-bit speech, about 2.6 s, read directly", async () => {
  const path = new URL("../fixtures/speech.wav", import.meta.url).pathname;
  const w = await readWav(path);
  assert.equal(w.sampleRate, 16000);
  assert.equal(w.format, "pcm16");
  assert.equal(w.channels.length, 1);
  assert.equal(w.channels[0].length, 42212);
  assert.ok(Deno.statSync(path).size < 100_000);
  const a = await decodeAudio(path, { sampleRate: 16000, channels: 1 });
  assertArrayEqual(a.channels[0], w.channels[0], "direct read");
  assert.ok(rms(a.channels[0]) > 0.05, "not silence");
});
