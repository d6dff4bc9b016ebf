import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { basename, join } from "node:path";
import { decodeAudio } from "../src/stages/audio/decode.ts";
import { encodeWavPcm16, readWav } from "../src/stages/audio/wav.ts";
import { TorchStft } from "../src/stages/audio/stft.ts";
import {
  demix,
  KIM_VOCAL_2_PARAMS,
  mdxGeometry,
  type MdxModelRunner,
  type MdxParams,
  normalizePeak,
  numpyHanning,
  separateVocals,
  SeparationError,
  SilentAudioError,
} from "../src/stages/audio/mdx.ts";
import { MdxModelDataError, mdxModelHash, resolveMdxParams } from "../src/stages/audio/mdx_params.ts";
import { splitextStem, vocalsFileNames, vocalsToInt16 } from "../src/stages/audio/vocals_file.ts";
import { separateVocalsToFiles } from "../src/stages/audio/separate_file.ts";
import { assertArrayEqual, errors, interleaved, planar } from "./helpers/audio_assert.ts";
import { f32Tensors, shared } from "./helpers/shared.ts";

/** Upstream's MDX references (a clear error when tests/reference lacks them). */
const mdxDir = () => shared("reference", "preprocess", "mdx");
const identity = (s: Float32Array) => s;

Deno.test("MDX identity model vs upstream audio-separator 0.17.2 (1 s speech, Kim_Vocal_2 params)", async () => {
  const dir = mdxDir();
  const meta = JSON.parse(await Deno.readTextFile(join(dir, "mdx_identity_1s.json")));
  const ref = f32Tensors(join(dir, "mdx_identity_1s.safetensors"));
  const mix = await readWav(join(dir, meta.wav));
  const g = mdxGeometry(mix.channels[0].length, KIM_VOCAL_2_PARAMS);
  assert.equal(g.trim, meta.derived.trim);
  assert.equal(g.chunkSize, meta.derived.chunk_size);
  assert.equal(g.genSize, meta.derived.gen_size);
  assert.equal(g.pad, meta.derived.pad);
  assert.equal(g.mixtureLength, meta.derived.mixture_len);
  assert.equal(g.step, meta.derived.step);
  assert.deepEqual(g.chunkStarts, meta.derived.chunk_starts);

  const t0 = performance.now();
  const r = await separateVocals(mix.channels, identity, KIM_VOCAL_2_PARAMS);
  const ms = performance.now() - t0;
  assertArrayEqual(planar(r.mixNormalized), ref.get("mix_normalized")!.data, "mix_normalized");
  const d = errors(planar(r.demixed), ref.get("demix_output")!.data);
  const p = errors(interleaved(r.vocals), ref.get("primary_final")!.data);
  console.log(
    `demix_output rel ${d.rel.toExponential(2)} max ${d.maxAbs.toExponential(2)}; ` +
      `primary_final rel ${p.rel.toExponential(2)} max ${p.maxAbs.toExponential(2)}; ${ms.toFixed(0)} ms`,
  );
  assert.ok(d.rel <= 1e-5 && d.maxAbs <= 1e-5, "demix_output");
  assert.ok(p.rel <= 1e-5 && p.maxAbs <= 1e-5, "primary_final");
  assert.equal(Math.max(...r.vocals[0].map(Math.abs), ...r.vocals[1].map(Math.abs)), 0.8999999761581421);
});

/** Small parameters so a demix takes milliseconds. */
const SMALL: MdxParams = {
  ...KIM_VOCAL_2_PARAMS,
  nFft: 64,
  hopLength: 16,
  segmentSize: 32,
  dimF: 32,
  dimT: 32,
  compensate: 1.5,
};

function tone(n: number, freq: number, amp: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / 64));
}

/** upstream's demix written literally (whole-length result and divider arrays), to check the rolling version. */
async function literalDemix(mix: Float32Array[], run: (s: Float32Array) => Float32Array, p: MdxParams) {
  const g = mdxGeometry(mix[0].length, p);
  const stft = new TorchStft(p.nFft, p.hopLength);
  const frames = stft.frameCount(g.chunkSize), plane = p.dimF * frames;
  const mixture = mix.map((c) => {
    const m = new Float32Array(g.mixtureLength);
    m.set(c, g.trim);
    return m;
  });
  const result = [new Float32Array(g.mixtureLength), new Float32Array(g.mixtureLength)];
  const divider = new Float32Array(g.mixtureLength);
  for (const start of g.chunkStarts) {
    const end = Math.min(start + g.chunkSize, g.mixtureLength);
    const w = numpyHanning(end - start);
    const spec = new Float32Array(4 * plane);
    for (let c = 0; c < 2; c++) {
      const part = new Float32Array(g.chunkSize);
      part.set(mixture[c].subarray(start, end));
      const sp = stft.forward(part, p.dimF);
      spec.set(sp.re, 2 * c * plane);
      spec.set(sp.im, (2 * c + 1) * plane);
    }
    for (let c = 0; c < 4; c++) spec.fill(0, c * plane, c * plane + 3 * frames);
    const pred = await run(spec);
    for (let c = 0; c < 2; c++) {
      const wave = stft.inverse({
        bins: p.dimF,
        frames,
        re: pred.subarray(2 * c * plane, (2 * c + 1) * plane),
        im: pred.subarray((2 * c + 1) * plane, (2 * c + 2) * plane),
      });
      for (let k = 0; k < end - start; k++) result[c][start + k] += Math.fround(wave[k] * w[k]);
    }
    for (let k = 0; k < end - start; k++) divider[start + k] += w[k];
  }
  return result.map((r) =>
    Float32Array.from(
      r.subarray(g.trim, g.trim + mix[0].length),
      (v, i) => Math.fround(v / divider[g.trim + i]) * Math.fround(p.compensate),
    )
  );
}

Deno.test("demix over many chunks equals upstream's literal whole-array accumulation; model output is used", async () => {
  const n = 2000; // padded to 2224: 6 chunks of 496 samples, step 372
  const mix = [tone(n, 9, 0.3), tone(n, 13, 0.2)];
  const model = (s: Float32Array) => s.map((v, i) => v * (1 + (i % 7) / 10));
  const shapes: number[][] = [];
  const out = await demix(mix, (s, shape) => {
    shapes.push([...shape]);
    return model(s);
  }, SMALL);
  assert.deepEqual(shapes[0], [1, 4, 32, 32]);
  assert.equal(shapes.length, 6);
  const lit = await literalDemix(mix, model, SMALL);
  assertArrayEqual(out[0], lit[0], "left");
  assertArrayEqual(out[1], lit[1], "right");
  // identity model: away from the signal's abrupt start and end, the output is compensate × input
  const id = await demix(mix, identity, SMALL);
  const e = errors(id[0].subarray(100, n - 100), mix[0].subarray(100, n - 100).map((v) => v * 1.5));
  assert.ok(e.rel < 0.02, `identity rel ${e.rel}`);
  const zero = await demix(mix, (s) => new Float32Array(s.length), SMALL);
  assert.ok(zero[0].every((v) => v === 0));
  await assert.rejects(demix(mix, () => new Float32Array(3), SMALL), /returned 3 values/);
});

Deno.test("denoise averages the model on ±spectrum; an Instrumental-primary model gives vocals = mix − prediction", async () => {
  const mix = [tone(600, 9, 0.5), tone(600, 11, 0.5)];
  const plain = await separateVocals(mix, identity, SMALL);
  const den = await separateVocals(mix, identity, { ...SMALL, enableDenoise: true });
  assert.ok(errors(den.vocals[0], plain.vocals[0]).maxAbs < 1e-6);
  const halfModel = (s: Float32Array) => s.map((v) => v * 0.5);
  const inst = await separateVocals(mix, halfModel, { ...SMALL, primaryStem: "Instrumental" });
  const prim = inst.demixed.map((c) => c.slice());
  normalizePeak(prim, 0.9);
  for (let i = 0; i < 600; i += 37) {
    assert.equal(inst.vocals[0][i], Math.fround(inst.mixNormalized[0][i] - prim[0][i]));
  }
});

Deno.test("separator input checks: silent, mono, mismatched channels", async () => {
  await assert.rejects(
    separateVocals([new Float32Array(100), new Float32Array(100)], identity, SMALL),
    (e: Error) => {
      assert.ok(e instanceof SeparationError);
      assert.match(e.message, /silent/);
      return true;
    },
  );
  await assert.rejects(separateVocals([tone(100, 3, 1)], identity, SMALL), /needs 2 channels, got 1/);
  await assert.rejects(separateVocals([tone(100, 3, 1), tone(90, 3, 1)], identity, SMALL), /lengths differ/);
});

Deno.test("peak normalisation and np.hanning follow numpy", () => {
  const x = [Float32Array.from([0.5, -1.2]), Float32Array.from([0.3, 0.1])];
  const s = normalizePeak(x, 0.9);
  assert.equal(s, Math.fround(0.9 / Math.fround(1.2)));
  assert.equal(x[0][1], Math.fround(Math.fround(-1.2) * s));
  const y = [Float32Array.from([0.5])];
  assert.equal(normalizePeak(y, 0.9), 1);
  assert.deepEqual(Array.from(numpyHanning(1)), [1]);
  const h = numpyHanning(5);
  assert.deepEqual(Array.from(h).map((v) => Math.round(v * 1e12) / 1e12), [0, 0.5, 1, 0.5, 0]);
});

Deno.test("vocals WAV conversion: re-normalise, float32 ·32767, truncate toward zero; silence refused", () => {
  const pcm = vocalsToInt16([
    Float32Array.from([0.5, -0.5, 0.9, 1e-3]),
    Float32Array.from([-0.25, 0.75, 0, -1e-3]),
  ]);
  assert.deepEqual(Array.from(pcm), [16383, -8191, -16383, 24575, 29490, 0, 32, -32]);
  const loud = vocalsToInt16([Float32Array.from([1.8]), Float32Array.from([-0.9])]);
  assert.deepEqual(Array.from(loud), [29490, -14745]);
  assert.throws(
    () => vocalsToInt16([new Float32Array(4), Float32Array.from([0, 1e-7, 0, 0])]),
    /vocals are silent/,
  );
});

Deno.test("output names as upstream (splitext stem, model name, -16k)", () => {
  assert.equal(splitextStem("my.song.wav"), "my.song");
  assert.equal(splitextStem(".hidden"), ".hidden");
  assert.equal(splitextStem("noext"), "noext");
  assert.deepEqual(vocalsFileNames("/a/b/1.mp3", "Kim_Vocal_2", "out"), {
    vocals: "out/1_(Vocals)_Kim_Vocal_2.wav",
    vocals16k: "out/1_(Vocals)_Kim_Vocal_2-16k.wav",
  });
});

Deno.test("model params: MD5 of the last 10,000 KiB (whole file when smaller), JSON lookup, defaults, errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const small = join(dir, "tiny.onnx");
    await Deno.writeFile(small, new TextEncoder().encode("not really onnx"));
    assert.equal(await mdxModelHash(small), createHash("md5").update("not really onnx").digest("hex"));
    const big = join(dir, "Big_Model.onnx");
    const bytes = new Uint8Array(10000 * 1024 + 777).map((_, i) => (i * 7) & 255);
    await Deno.writeFile(big, bytes);
    const hash = createHash("md5").update(bytes.subarray(777)).digest("hex");
    assert.equal(await mdxModelHash(big), hash);

    const none = await resolveMdxParams(big);
    assert.equal(none.source, "defaults");
    assert.deepEqual(none.params, KIM_VOCAL_2_PARAMS);
    assert.equal(none.modelName, "Big_Model");

    const table = {
      [hash]: {
        compensate: 1.035,
        mdx_dim_f_set: 2048,
        mdx_dim_t_set: 8,
        mdx_n_fft_scale_set: 6144,
        primary_stem: "Vocals",
      },
    };
    await Deno.writeTextFile(join(dir, "mdx_model_data.json"), JSON.stringify(table));
    const found = await resolveMdxParams(big, { overrides: { segmentSize: 128 } });
    assert.equal(found.source, "model-data");
    assert.deepEqual(
      [
        found.params.compensate,
        found.params.dimF,
        found.params.dimT,
        found.params.nFft,
        found.params.segmentSize,
      ],
      [1.035, 2048, 256, 6144, 128],
    );
    await assert.rejects(resolveMdxParams(small), (e: Error) => {
      assert.ok(e instanceof MdxModelDataError);
      assert.match(e.message, /no parameters for tiny\.onnx \(MD5 [0-9a-f]{32}\)/);
      return true;
    });
    await Deno.writeTextFile(
      join(dir, "mdx_model_data.json"),
      JSON.stringify({ [hash]: { config_yaml: "x.yaml" } }),
    );
    await assert.rejects(resolveMdxParams(big), /MDXC model/);
    await Deno.writeTextFile(join(dir, "mdx_model_data.json"), "{oops");
    await assert.rejects(resolveMdxParams(big), /not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("separateVocalsToFiles writes 44.1 kHz int16 vocals and the ffmpeg 16 kHz copy", async () => {
  const out = await Deno.makeTempDir();
  try {
    const files = await separateVocalsToFiles(join(mdxDir(), "mdx_identity_1s.wav"), identity, {
      outputDir: out,
    });
    assert.equal(files.vocals, join(out, "mdx_identity_1s_(Vocals)_Kim_Vocal_2.wav"));
    const v = await readWav(files.vocals);
    assert.equal(v.sampleRate, 44100);
    assert.equal(v.format, "pcm16");
    assert.equal(v.channels.length, 2);
    assert.equal(v.channels[0].length, 44100);
    const ref = f32Tensors(join(mdxDir(), "mdx_identity_1s.safetensors")).get("primary_final")!.data;
    let mismatch = 0;
    for (let i = 0; i < 44100; i++) {
      if (v.channels[0][i] * 32768 !== Math.trunc(Math.fround(ref[2 * i] * 32767))) mismatch++;
    }
    assert.ok(mismatch < 50, `${mismatch} int16 samples differ from upstream's conversion of its own output`);
    const v16 = await readWav(files.vocals16k);
    assert.equal(v16.sampleRate, 16000);
    assert.equal(v16.channels.length, 2); // upstream keeps stereo; librosa averages later
    assert.ok(Math.abs(v16.channels[0].length - 16000) <= 1);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

/** A 16-bit stereo WAV at 44.1 kHz of `seconds`, louder than 0.9 so the mix normalisation is exercised. */
async function loudWav(path: string, seconds: number): Promise<void> {
  const n = Math.round(seconds * 44100);
  const pcm = new Int16Array(2 * n);
  for (let i = 0; i < n; i++) {
    const env = 0.6 + 0.4 * Math.sin((2 * Math.PI * i) / 88200);
    pcm[2 * i] = Math.round(32767 * env * (0.7 * Math.sin(i / 7.1) + 0.3 * Math.sin(i / 2.3)));
    pcm[2 * i + 1] = Math.round(30000 * env * Math.sin(i / 11.7 + 1));
  }
  await Deno.writeFile(path, encodeWavPcm16(pcm, 2, 44100));
}

/** The whole-array path: decode whole, separateVocals, writeVocalsWav's bytes. */
async function wholeArrayVocalsWav(path: string, run: MdxModelRunner, p: MdxParams): Promise<Uint8Array> {
  const mix = await decodeAudio(path, { sampleRate: 44100, channels: 2 });
  const { vocals } = await separateVocals(mix.channels, run, p);
  return encodeWavPcm16(vocalsToInt16(vocals, p.normalizationThreshold), 2, 44100);
}

const listDir = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("90 s through the streaming separateVocalsToFiles: the whole-array path's vocals WAV byte for byte; temp files gone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo_sep_stream_" });
  try {
    const input = join(dir, "long.wav");
    await loudWav(input, 90);
    // a cheap gain: the output still depends on every chunk's model call
    const model = (s: Float32Array) => s.map((v) => v * 1.25);
    const chunks: number[] = [];
    const tmpDir = join(dir, "tmp");
    await Deno.mkdir(tmpDir);
    const t0 = performance.now();
    const files = await separateVocalsToFiles(input, model, {
      outputDir: join(dir, "out"),
      tmpDir,
      onProgress: (d) => chunks.push(d),
      decode: { chunkFrames: 10007 }, // pieces that do not line up with chunks or blocks
    });
    const ms = performance.now() - t0;
    const streamed = await Deno.readFile(files.vocals);
    const t1 = performance.now();
    const whole = await wholeArrayVocalsWav(input, model, KIM_VOCAL_2_PARAMS);
    console.log(`90 s: streaming ${ms.toFixed(0)} ms, whole-array ${(performance.now() - t1).toFixed(0)} ms`);
    assert.equal(files.frames, 90 * 44100);
    assert.equal(chunks.length, mdxGeometry(90 * 44100, KIM_VOCAL_2_PARAMS).chunkStarts.length);
    assert.equal(streamed.length, 44 + 4 * 90 * 44100);
    assert.ok(Buffer.from(streamed).equals(Buffer.from(whole)), "vocals WAV bytes differ");
    assert.deepEqual(listDir(tmpDir), []);
    assert.deepEqual(listDir(join(dir, "out")), [basename(files.vocals), basename(files.vocals16k)].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("streaming = whole-array for an Instrumental-primary model with denoise (vocals = mix − prediction)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo_sep_stream_" });
  try {
    const input = join(dir, "short.wav");
    await loudWav(input, 0.2);
    const p: MdxParams = { ...SMALL, primaryStem: "Instrumental", enableDenoise: true };
    // a negative gain makes mix − prediction louder than the mix: write_audio's normalisation then acts, on a
    // peak only a scan of the secondary stem finds
    const model = (s: Float32Array) => s.map((v, i) => v * (-0.4 - (i % 3) / 10));
    const files = await separateVocalsToFiles(input, model, { outputDir: dir, params: p });
    const streamed = await Deno.readFile(files.vocals);
    assert.ok(Buffer.from(streamed).equals(Buffer.from(await wholeArrayVocalsWav(input, model, p))));
    assert.deepEqual(listDir(dir), ["short.wav", basename(files.vocals), basename(files.vocals16k)].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("streaming separation failures leave no temporary or partial files: model error, silent mix, silent vocals", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo_sep_stream_" });
  try {
    const input = join(dir, "in.wav");
    await loudWav(input, 0.2);
    const out = join(dir, "out");
    let calls = 0;
    const failing = (s: Float32Array) => {
      if (++calls === 3) throw new Error("model blew up");
      return s;
    };
    await assert.rejects(
      separateVocalsToFiles(input, failing, { outputDir: out, params: SMALL }),
      /model blew up/,
    );
    assert.equal(calls, 3);
    assert.deepEqual(listDir(out), []);

    const zeros = (s: Float32Array) => new Float32Array(s.length);
    await assert.rejects(
      separateVocalsToFiles(input, zeros, { outputDir: out, params: SMALL }),
      (e: Error) => e instanceof SeparationError && /separated vocals are silent/.test(e.message),
    );
    assert.deepEqual(listDir(out), []);
    // the fallback prepareAudio uses: silence of the mix's length
    const r = await separateVocalsToFiles(input, zeros, {
      outputDir: out,
      params: SMALL,
      silentVocals: "zeros",
    });
    assert.equal(r.silent, true);
    const v = await readWav(r.vocals);
    assert.equal(v.channels[0].length, r.frames);
    assert.ok(v.channels.every((c) => c.every((x) => x === 0)));
    await Deno.remove(out, { recursive: true });

    const quiet = join(dir, "quiet.wav");
    await Deno.writeFile(quiet, encodeWavPcm16(new Int16Array(2000), 2, 44100));
    await assert.rejects(
      separateVocalsToFiles(quiet, identity, { outputDir: out, params: SMALL }),
      (e: Error) => e instanceof SilentAudioError && /quiet\.wav: the audio is silent/.test(e.message),
    );
    assert.deepEqual(listDir(out), []);
    await assert.rejects(
      separateVocalsToFiles(join(dir, "missing.wav"), identity, { outputDir: out, params: SMALL }),
      /missing\.wav: no such file/,
    );
    assert.deepEqual(listDir(out), []);
    await assert.rejects(
      separateVocalsToFiles(input, identity, { outputDir: out, tmpDir: join(dir, "nope"), params: SMALL }),
      (e: Error) => e instanceof SeparationError && /nope: cannot create a temporary file/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
