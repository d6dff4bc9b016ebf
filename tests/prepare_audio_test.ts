/**
 * prepareAudio end to end with the tiny wav2vec2: the `wav2vec` parity case from a 16-bit WAV file, separation
 * through an identity ONNX stand-in, the missing-separator notice, and hostile or odd inputs (not audio, empty,
 * 0.01 s, silence, 8 kHz mono, 48 kHz stereo, mp3, video with and without sound, 2 minutes).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Graph } from "../src/onnx/graph.ts";
import { AudioDecodeError } from "../src/stages/audio/decode.ts";
import { SeparationError } from "../src/stages/audio/mdx.ts";
import { prepareAudio, type PrepareAudioOptions, type PreparedAudio } from "../src/stages/audio/prepare.ts";
import { vocalsToInt16 } from "../src/stages/audio/vocals_file.ts";
import { encodeWavPcm16, readWav } from "../src/stages/audio/wav.ts";
import { runFfmpeg } from "../src/util/ffmpeg.ts";
import { run } from "../src/cli/prepare_audio.ts";
import { MissingWeightsError } from "../src/weights/locate.ts";
import { errors } from "./helpers/audio_assert.ts";
import { media, mediaDir } from "./helpers/audio_media.ts";
import { writeIdentityMdxModel } from "./helpers/mdx_identity.ts";
import { f32Tensors, REFERENCE, shared, tinyModel } from "./helpers/shared.ts";
import { testWithEnv } from "./helpers/env.ts";

// Compiled graphs must not land in a user cache during tests.
const test = testWithEnv({ HALLO_GRAPH_CACHE: "off" });

const tmp = Deno.makeTempDirSync({ prefix: "hallo_prepare_audio_" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
/** This module's private copy of the tiny checkpoints (sessions never open on tests/reference itself). */
const TINY = tinyModel();
const BASE: PrepareAudioOptions = { weightsDir: TINY, threads: 1, cacheDir: join(tmp, "cache") };

/** The tiny model's (layers, hidden) from its config. */
const TINY_CFG = JSON.parse(
  Deno.readTextFileSync(join(TINY, "wav2vec", "wav2vec2-base-960h", "config.json")),
);

function assertWellFormed(r: PreparedAudio, clipLength = 16): void {
  const [L, layers, dim] = r.embedding.shape;
  assert.deepEqual(r.embedding.shape, [r.seqLen, TINY_CFG.num_hidden_layers, TINY_CFG.hidden_size]);
  assert.deepEqual(r.windows.shape, [L, 5, layers, dim]);
  assert.equal(r.seqLen % clipLength, 0);
  assert.ok(r.audioLength <= r.seqLen && r.seqLen - r.audioLength < clipLength);
  assert.equal(r.audioLength, Math.ceil((r.numSamples / 16000) * 25));
  assert.ok(r.windows.data.every(Number.isFinite), "windows are finite");
  assert.ok(r.embedding.data.every(Number.isFinite), "embedding is finite");
}

test("wav2vec parity case end to end from a 16-bit WAV file (separate: false, tiny wav2vec2)", async () => {
  const meta = JSON.parse(await Deno.readTextFile(shared("reference", "wav2vec.json")));
  const ref = f32Tensors(join(REFERENCE, "wav2vec.safetensors"));
  const wave = ref.get("waveform")!.data;
  const pcm = Int16Array.from(wave, (v) => Math.round(v * 32768));
  assert.ok(pcm.every((s, i) => s / 32768 === wave[i]), "reference waveform is int16/32768");
  const wav = join(tmp, "wav2vec_case.wav");
  await Deno.writeFile(wav, encodeWavPcm16(pcm, 1, meta.preprocessor.sampling_rate));
  const r = await prepareAudio(wav, {
    ...BASE,
    separate: false,
    clipLength: meta.clip_length,
    fps: meta.fps,
  });
  assert.equal(r.separated, false);
  assert.equal(r.vocalsPath, undefined);
  assert.deepEqual(r.warnings, []);
  assert.equal(r.numSamples, wave.length);
  assert.equal(r.seqLen, meta.seq_len);
  assert.equal(r.audioLength, meta.audio_length);
  assert.deepEqual(r.embedding.shape, ref.get("audio_emb")!.shape);
  assert.deepEqual(r.windows.shape, ref.get("audio_windows")!.shape);
  const e = errors(r.embedding.data, ref.get("audio_emb")!.data);
  const w = errors(r.windows.data, ref.get("audio_windows")!.data);
  console.log(
    `from WAV: audio_emb rel ${e.rel.toExponential(2)}, audio_windows rel ${w.rel.toExponential(2)}`,
  );
  assert.ok(e.rel <= 1e-4, `audio_emb rel ${e.rel}`);
  assert.ok(w.rel <= 1e-4, `audio_windows rel ${w.rel}`);
  for (const k of ["decode_16k", "wav2vec_input", "wav2vec_load", "wav2vec_run", "windows", "total"]) {
    assert.ok(r.timings[k] >= 0, `timing ${k}`);
  }
});

test("separation through an identity ONNX model: vocals = upstream's identity output; 16 kHz copy feeds wav2vec2", async () => {
  const dir = shared("reference", "preprocess", "mdx");
  const ref = f32Tensors(join(dir, "mdx_identity_1s.safetensors"));
  const model = writeIdentityMdxModel(join(tmp, "sep", "Kim_Vocal_2.onnx"));
  const steps: number[] = [];
  const r = await prepareAudio(join(dir, "mdx_identity_1s.wav"), {
    ...BASE,
    separatorModel: model,
    onProgress: (_s, done) => steps.push(done),
  });
  assert.equal(r.separated, true);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(steps, [1, 2]);
  assert.equal(r.vocalsPath, join(tmp, "cache", "mdx_identity_1s_(Vocals)_Kim_Vocal_2.wav"));
  assert.equal(r.vocals16kPath, join(tmp, "cache", "mdx_identity_1s_(Vocals)_Kim_Vocal_2-16k.wav"));
  // The written int16 vocals are upstream's final primary stem converted as write_audio does (±1 LSB).
  const vocals = await readWav(r.vocalsPath!);
  assert.equal(vocals.sampleRate, 44100);
  const prim = ref.get("primary_final")!.data; // interleaved (N, 2)
  const planar = [0, 1].map((c) => Float32Array.from({ length: prim.length / 2 }, (_, i) => prim[2 * i + c]));
  const want = vocalsToInt16(planar);
  let worst = 0;
  for (let c = 0; c < 2; c++) {
    vocals.channels[c].forEach((v, i) => worst = Math.max(worst, Math.abs(v * 32768 - want[2 * i + c])));
  }
  assert.ok(worst <= 1, `vocals differ from upstream's by ${worst} LSB`);
  const v16 = await readWav(r.vocals16kPath!);
  assert.equal(v16.sampleRate, 16000);
  assert.equal(v16.channels.length, 2);
  assert.equal(r.numSamples, v16.channels[0].length);
  assertWellFormed(r);
  for (const k of ["separator_load", "decode_44k", "separate", "write_vocals", "resample_16k", "load_16k"]) {
    assert.ok(r.timings[k] >= 0, `timing ${k}`);
  }
});

test("missing separator model: separation skipped with a notice; an explicit missing model is an error", async () => {
  const path = await media("tone_8k_mono.wav");
  const r = await prepareAudio(path, BASE); // tiny_models has no audio_separator/
  assert.equal(r.separated, false);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0], /vocal separation skipped: .*Kim_Vocal_2\.onnx not found .*weights download/);
  assertWellFormed(r);
  await assert.rejects(
    prepareAudio(path, { ...BASE, separatorModel: join(tmp, "nope.onnx") }),
    (e: Error) => e instanceof SeparationError && /nope\.onnx: separator model not found/.test(e.message),
  );
  await assert.rejects(
    prepareAudio(path, { ...BASE, weightsDir: join(tmp, "no_weights") }),
    (e: Error) =>
      e instanceof MissingWeightsError && /wav2vec2-base-960h\/config\.json \(missing\)/.test(e.message),
  );
});

test("hostile inputs: not audio, empty, a folder, missing, a video without sound: one-line AudioDecodeError", async () => {
  const text = join(tmp, "notes.mp3");
  await Deno.writeTextFile(text, "these are not samples\n".repeat(20));
  const empty = join(tmp, "empty.wav");
  await Deno.writeFile(empty, new Uint8Array());
  const cases: [string, RegExp][] = [
    [text, /notes\.mp3: not an audio or video file/],
    [empty, /empty\.wav: file is empty/],
    [tmp, /not a regular file/],
    [join(tmp, "missing.wav"), /missing\.wav: no such file/],
    [await media("video_no_sound.mp4"), /video_no_sound\.mp4: no audio stream/],
  ];
  for (const [path, re] of cases) {
    await assert.rejects(prepareAudio(path, { ...BASE, separate: false }), (e: Error) => {
      assert.ok(e instanceof AudioDecodeError, `${path}: ${e}`);
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"), "one-line message");
      return true;
    });
  }
  await assert.rejects(prepareAudio(text, { ...BASE, clipLength: 0 }), RangeError);
});

test("silence: no NaN (normalisation gives 0/sqrt(1e-7) = 0); with separation it is skipped with a notice", async () => {
  const path = await media("silence_16k_mono.wav");
  const r = await prepareAudio(path, { ...BASE, separate: false });
  assert.equal(r.numSamples, 8000);
  assertWellFormed(r);
  const model = writeIdentityMdxModel(join(tmp, "sil", "Kim_Vocal_2.onnx"));
  const s = await prepareAudio(path, { ...BASE, separatorModel: model });
  assert.equal(s.separated, false);
  assert.match(s.warnings.join(), /silent; vocal separation skipped/);
  assert.deepEqual(s.embedding.data, r.embedding.data);
});

test("odd inputs: 0.01 s, 8 kHz mono, 48 kHz stereo, mp3, a video's sound track", async () => {
  const short = await prepareAudio(await media("tone_10ms_16k_mono.wav"), { ...BASE, separate: false });
  assert.equal(short.numSamples, 160);
  assert.equal(short.audioLength, 1);
  assert.equal(short.seqLen, 16);
  assertWellFormed(short);
  const expect: [string, number][] = [
    ["tone_8k_mono.wav", 0.5],
    ["tones_48k_stereo.wav", 0.5],
    ["tone_44k_mono.mp3", 0.5],
    ["video_with_sound.mp4", 0.6],
  ];
  for (const [name, seconds] of expect) {
    const r = await prepareAudio(await media(name), { ...BASE, separate: false, clipLength: 4 });
    assertWellFormed(r, 4);
    // mp3/aac add encoder delay and padding: within 0.1 s of the nominal length
    assert.ok(Math.abs(r.numSamples - seconds * 16000) < 1600, `${name}: ${r.numSamples} samples`);
  }
});

test("separation of odd inputs (8 kHz mono, 48 kHz stereo, mp3, video) with small MDX parameters", async () => {
  const model = writeIdentityMdxModel(join(tmp, "dyn", "Kim_Vocal_2.onnx"), {
    dims: ["b", 4, "bins", "frames"],
  });
  const small = { nFft: 2048, hopLength: 512, segmentSize: 32, dimF: 1024, dimT: 32 }; // bins 0-2 end at 65 Hz
  for (
    const name of ["tone_8k_mono.wav", "tones_48k_stereo.wav", "tone_44k_mono.mp3", "video_with_sound.mp4"]
  ) {
    const r = await prepareAudio(await media(name), {
      ...BASE,
      separatorModel: model,
      separatorOverrides: small,
    });
    assert.equal(r.separated, true, name);
    assert.deepEqual(r.warnings, []);
    const v = await readWav(r.vocalsPath!);
    assert.equal(v.channels.length, 2);
    assert.equal(v.sampleRate, 44100);
    // identity model: the vocals are the mix (lavfi's sines have amplitude 1/8) times compensate
    const peak = Math.max(...v.channels[0].map(Math.abs));
    assert.ok(peak > 0.1 && peak < 0.15, `${name}: vocals peak ${peak}`);
    assertWellFormed(r);
  }
});

test("a model that hears no vocals: silent vocals written with a notice, features of silence", async () => {
  const g = new Graph("mdx_zero");
  const x = g.input("input", ["b", 4, "bins", "frames"]);
  g.output(
    g.op1("Mul", [x, g.constant("zero", Float32Array.of(0), [])], { path: "zero", outName: "output" }),
  );
  const model = join(tmp, "zero", "Kim_Vocal_2.onnx");
  Deno.mkdirSync(join(tmp, "zero"), { recursive: true });
  Deno.writeFileSync(model, g.encode(join(tmp, "zero")));
  const small = { nFft: 2048, hopLength: 512, segmentSize: 32, dimF: 1024, dimT: 32 };
  const r = await prepareAudio(await media("tone_8k_mono.wav"), {
    ...BASE,
    separatorModel: model,
    separatorOverrides: small,
  });
  assert.equal(r.separated, true);
  assert.match(r.warnings.join(), /separated vocals are silent; using silence/);
  const v = await readWav(r.vocalsPath!);
  assert.ok(v.channels[0].length > 20000 && v.channels.every((c) => c.every((s) => s === 0)));
  assertWellFormed(r);
});

test("a 2-minute file goes through in reasonable time (tiny wav2vec2)", async () => {
  const path = join(mediaDir(), "tone_2min_44k.wav");
  await runFfmpeg(
    ["-y", "-v", "error", "-f", "lavfi", "-i", "sine=f=220:r=44100:d=120", "-c:a", "pcm_s16le", path],
    { captureStdout: false },
  );
  const t0 = performance.now();
  const r = await prepareAudio(path, { ...BASE, separate: false });
  const s = (performance.now() - t0) / 1000;
  console.log(`2 min of audio: ${s.toFixed(1)} s (${JSON.stringify(r.timings)})`);
  assert.equal(r.audioLength, 3000);
  assert.equal(r.seqLen, 3008);
  assertWellFormed(r);
  assert.ok(s < 30, `took ${s} s`);
});

test("CLI prepare-audio writes audio.safetensors and audio.json; usage and input errors are exit codes", async () => {
  const out = join(tmp, "cli_out");
  const path = await media("tone_8k_mono.wav");
  const code = await run([
    "--audio",
    path,
    "--out",
    out,
    "--weights",
    TINY,
    "--clip-length",
    "4",
    "--no-separate",
  ]);
  assert.equal(code, 0);
  const st = f32Tensors(join(out, "audio.safetensors"));
  const rec = JSON.parse(await Deno.readTextFile(join(out, "audio.json")));
  assert.equal(rec.audio_length, 13); // ceil(0.5 s · 25)
  assert.equal(rec.seq_len, 16);
  assert.equal(rec.separated, false);
  assert.deepEqual(rec.warnings, []);
  assert.deepEqual(st.get("audio_emb")!.shape, [16, TINY_CFG.num_hidden_layers, TINY_CFG.hidden_size]);
  assert.deepEqual(st.get("audio_windows")!.shape, [16, 5, TINY_CFG.num_hidden_layers, TINY_CFG.hidden_size]);
  assert.deepEqual(rec.shapes.audio_windows, st.get("audio_windows")!.shape);
  assert.equal(rec.files.safetensors, join(out, "audio.safetensors"));
  assert.ok(rec.timings.wav2vec_run >= 0 && rec.timings.total > 0);
  // same numbers as the library call
  const lib = await prepareAudio(path, { ...BASE, separate: false, clipLength: 4 });
  assert.deepEqual(st.get("audio_windows")!.data, lib.windows.data);
  // default: separation requested, model missing -> warning recorded
  assert.equal(await run(["--audio", path, "--out", out, "--weights", TINY, "--clip-length", "4"]), 0);
  assert.match(
    JSON.parse(await Deno.readTextFile(join(out, "audio.json"))).warnings[0],
    /separation skipped/,
  );
  assert.equal(await run(["--out", out]), 2);
  assert.equal(await run(["--audio", path, "--out", out, "--fps", "0"]), 2);
  assert.equal(await run(["--audio", path, "--out", out, "--bogus"]), 2);
  assert.equal(await run(["--audio", path, "--out", out, "--device", "tpu"]), 2);
  assert.equal(await run(["--audio", join(tmp, "missing.wav"), "--out", out, "--weights", TINY]), 1);
});
