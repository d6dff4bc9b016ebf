/**
 * Audio stage benchmark: `deno run -A bench/audio.ts [--threads N] [--quick] [--no-10min] [--10min-only]`.
 *
 * 1. Vocal separation time per second of audio, through onnxruntime with an IDENTITY stand-in for
 *    Kim_Vocal_2.onnx (same input/output names and (1,4,3072,256) shape, Kim_Vocal_2 parameters): this measures
 *    our STFT / iSTFT / overlap-add and the ORT round trip, not the real network (not available here).
 * 2. wav2vec2 time per second of audio: the tiny random weights (`ensureTinyWeights`, made once under
 *    weights/tiny_pretrained_models), and full-size wav2vec2-base-960h with random weights (a temporary 378 MB
 *    safetensors whose keys and shapes the graph builder records).
 * 3. Peak RSS of prepareAudio on a 10-minute file (each in a fresh process, VmHWM): with separation (identity
 *    stand-in) and without, both with the tiny wav2vec2, and of the separation alone (separateVocalsToFiles);
 *    full-size wav2vec2 is measured on one minute, since on 10 minutes its attention alone is
 *    12 × 15,008² floats ≈ 10.8 GB per layer if materialised. `--10min-only` runs just the 10-minute rows.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureRandomCheckpoint, peakRssMiB, recordedKeys, table, timed } from "./util.ts";
import { KIM_VOCAL_2_PARAMS, separateVocals } from "../src/stages/audio/mdx.ts";
import { loadMdxSeparator } from "../src/stages/audio/separator_onnx.ts";
import { separateVocalsToFiles } from "../src/stages/audio/separate_file.ts";
import { prepareAudio, type PrepareAudioOptions } from "../src/stages/audio/prepare.ts";
import { prepareWav2vecInput } from "../src/stages/audio/wav2vec_input.ts";
import { loadWav2Vec, wav2vecFeatures } from "../src/stages/networks/wav2vec.ts";
import { runFfmpeg } from "../src/util/ffmpeg.ts";
import { WAV2VEC2_BASE_CONFIG } from "../src/models/full_configs.ts";
import { buildWav2Vec2, parseWav2Vec2Config } from "../src/models/wav2vec2.ts";
import { ensureTinyWeights } from "../src/tiny/random.ts";
import { writeIdentityMdxModel } from "../tests/helpers/mdx_identity.ts";

/** Where the tiny random wav2vec2 lives inside a tiny weight set. */
const W2V = join("wav2vec", "wav2vec2-base-960h");

/** prepareAudio's timing keys of the separation steps (44.1 kHz decode, demix, vocals WAV, 16 kHz copy). */
const SEPARATION_STEPS = ["decode_44k", "separate", "write_vocals", "resample_16k"];

/** A deterministic speech-like test signal: two tones with a slow amplitude wobble plus a little noise. */
function signal(n: number, sampleRate: number, seed = 1): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const t = i / sampleRate;
    const env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t);
    x[i] = 0.3 * env * Math.sin(2 * Math.PI * 220 * t) + 0.1 * Math.sin(2 * Math.PI * 1330 * t) +
      0.02 * ((s >>> 0) / 4294967296 - 0.5);
  }
  return x;
}

async function benchSeparation(
  tmp: string,
  threads: number,
  seconds: number[],
): Promise<(string | number)[][]> {
  const model = writeIdentityMdxModel(join(tmp, "sep", "Kim_Vocal_2.onnx"));
  const sep = await loadMdxSeparator(model, { threads });
  const rows: (string | number)[][] = [];
  try {
    for (const sec of seconds) {
      const n = Math.round(sec * 44100);
      const mix = [signal(n, 44100, 1), signal(n, 44100, 2)];
      let modelS = 0, chunks = 0;
      const runModel = async (s: Float32Array, shape: readonly number[]) => {
        const t0 = performance.now();
        const out = await sep.runModel(s, shape);
        modelS += (performance.now() - t0) / 1000;
        chunks++;
        return out;
      };
      const [, total] = await timed(() => separateVocals(mix, runModel, sep.params));
      rows.push([sec, String(chunks), total, modelS, total - modelS, total / sec]);
    }
  } finally {
    await sep.release();
  }
  return rows;
}

async function benchWav2vec(
  label: string,
  dir: string,
  threads: number,
  seconds: number[],
): Promise<(string | number)[][]> {
  const [model, loadS] = await timed(() => loadWav2Vec(dir, { threads }));
  const rows: (string | number)[][] = [];
  try {
    for (const sec of seconds) {
      const prep = prepareWav2vecInput(signal(Math.round(sec * 16000), 16000));
      await wav2vecFeatures(model, prep.inputValues, prep.seqLen); // warm-up (first-run allocations)
      const [emb, s] = await timed(() => wav2vecFeatures(model, prep.inputValues, prep.seqLen));
      rows.push([label, sec, String(prep.seqLen), `[${emb.shape}]`, loadS, s, s / sec]);
    }
  } finally {
    await model.release();
  }
  return rows;
}

/**
 * A full-size wav2vec2-base-960h folder with random weights: the base-960h config, the keys and shapes the
 * graph builder binds (recorded), the tiny set's preprocessor config (the same feature extractor).
 */
async function fullSizeWav2vec(tmp: string, tiny: string): Promise<string> {
  const dir = join(tmp, "weights_full", W2V);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(WAV2VEC2_BASE_CONFIG));
  await Deno.copyFile(join(tiny, W2V, "preprocessor_config.json"), join(dir, "preprocessor_config.json"));
  const keys = recordedKeys((w) =>
    buildWav2Vec2(w, parseWav2Vec2Config(structuredClone(WAV2VEC2_BASE_CONFIG)), { prefix: "wav2vec2." })
  );
  await ensureRandomCheckpoint(join(dir, "model.safetensors"), keys);
  return dir;
}

/** What a child run does: prepareAudio, or (separateOnly) just the separation to files. */
type ChildOptions = PrepareAudioOptions & { separateOnly?: boolean };

/** Child mode: prepareAudio (or the separation alone) once, then print the peak RSS and timings as JSON. */
async function child(file: string, opts: ChildOptions): Promise<void> {
  const before = peakRssMiB();
  if (opts.separateOnly) {
    const t0 = performance.now();
    const sep = await loadMdxSeparator(opts.separatorModel!, { threads: opts.threads });
    const timings: Record<string, number> = {};
    try {
      await separateVocalsToFiles(file, sep.runModel, {
        outputDir: opts.cacheDir!,
        modelName: sep.modelName,
        params: sep.params,
        timings,
      });
    } finally {
      await sep.release();
    }
    timings.total = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ rss_before: before, rss_peak: peakRssMiB(), timings }));
    return;
  }
  const r = await prepareAudio(file, opts);
  console.log(
    JSON.stringify({ rss_before: before, rss_peak: peakRssMiB(), timings: r.timings, seq: r.seqLen }),
  );
}

async function rssRun(file: string, opts: ChildOptions) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(import.meta.url), "--child", file, JSON.stringify(opts)],
    env: { HALLO_GRAPH_CACHE: "off" },
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`child run failed (exit ${out.code})`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as {
    rss_before: number;
    rss_peak: number;
    timings: Record<string, number>;
  };
}

async function main(args: string[]): Promise<void> {
  if (args[0] === "--child") return await child(args[1], JSON.parse(args[2]));
  const threads = Number(args[args.indexOf("--threads") + 1]) || 1;
  const quick = args.includes("--quick");
  const only10 = args.includes("--10min-only"); // section 3 without the full-size wav2vec2 row
  Deno.env.set("HALLO_GRAPH_CACHE", "off"); // benchmark graphs must not fill the user cache
  const tmp = await Deno.makeTempDir({ prefix: "hallo_bench_audio_" });
  try {
    // Tiny random weights, generated once: the benchmark needs neither the reference set nor the real weights.
    const { dir: tiny } = await ensureTinyWeights();
    console.log(`audio bench: ${threads} ORT thread(s), ${navigator.hardwareConcurrency} cores visible\n`);

    if (!only10) await timeRows(tmp, tiny, threads, quick);
    if (!args.includes("--no-10min")) await rssRows(tmp, tiny, threads, !only10);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Sections 1 and 2: separation and wav2vec2 time per second of audio. */
async function timeRows(tmp: string, tiny: string, threads: number, quick: boolean): Promise<void> {
  console.log(
    "1. vocal separation (IDENTITY stand-in for Kim_Vocal_2: STFT/iSTFT/overlap-add + ORT copy only)",
  );
  const sepRows = await benchSeparation(tmp, threads, quick ? [5] : [5, 30]);
  console.log(table(["audio s", "chunks", "total s", "model s", "dsp s", "s per audio s"], sepRows));
  console.log(
    `   chunk = ${KIM_VOCAL_2_PARAMS.hopLength * (KIM_VOCAL_2_PARAMS.segmentSize - 1)} samples, ` +
      `step 0.75 chunk (${(0.75 * 261120 / 44100).toFixed(2)} s of new audio per chunk)\n`,
  );

  console.log("2. wav2vec2 (features of all layers, interpolated to 25 fps)");
  const w2vRows = await benchWav2vec("tiny (random)", join(tiny, W2V), threads, quick ? [10] : [10, 60]);
  const fullDir = await fullSizeWav2vec(tmp, tiny);
  w2vRows.push(...await benchWav2vec("full (random)", fullDir, threads, quick ? [4] : [4, 16]));
  console.log(
    table(["weights", "audio s", "seq_len", "audio_emb", "load s", "run s", "s per audio s"], w2vRows),
  );
  console.log();
}

/** Section 3: peak RSS of prepareAudio on 10 minutes (and on one minute with the full-size wav2vec2). */
async function rssRows(tmp: string, tiny: string, threads: number, fullSize: boolean): Promise<void> {
  console.log(
    "3. peak RSS of prepareAudio (fresh process each), 44.1 kHz stereo 16-bit WAV input",
  );
  const long = join(tmp, "ten_minutes.wav");
  await runFfmpeg([
    ...["-y", "-v", "error", "-f", "lavfi", "-i", "sine=f=220:r=44100:d=600", "-f", "lavfi"],
    ...["-i", "sine=f=330:r=44100:d=600", "-filter_complex", "[0][1]amerge=inputs=2"],
    ...["-c:a", "pcm_s16le", long],
  ], { captureStdout: false });
  const model = writeIdentityMdxModel(join(tmp, "weights", "audio_separator", "Kim_Vocal_2.onnx"));
  const base: PrepareAudioOptions = { weightsDir: tiny, threads, cacheDir: join(tmp, "cache") };
  const rows: (string | number)[][] = [];
  for (
    const [label, o] of [
      ["600 s, no separation, tiny wav2vec2", { ...base, separate: false }],
      ["600 s, separation (identity), tiny wav2vec2", { ...base, separatorModel: model }],
      ["600 s, separateVocalsToFiles only (identity)", {
        ...base,
        separatorModel: model,
        separateOnly: true,
      }],
    ] as [string, ChildOptions][]
  ) {
    const r = await rssRun(long, o);
    rows.push([
      label,
      r.rss_before,
      r.rss_peak,
      r.timings.total,
      r.timings.separate ?? 0,
      SEPARATION_STEPS.reduce((s, k) => s + (r.timings[k] ?? 0), 0),
      r.timings.wav2vec_run ?? 0,
    ]);
  }
  if (fullSize) {
    const minute = join(tmp, "one_minute.wav");
    await runFfmpeg(
      ["-y", "-v", "error", "-i", long, "-t", "60", "-c:a", "pcm_s16le", minute],
      { captureStdout: false },
    );
    // Full-size wav2vec2 on 10 minutes would need ~20 GB here (attention 12 × 15,008² floats per layer,
    // CNN activations 512 × 1.92 M floats): measured on the first minute instead.
    const full = await rssRun(minute, { ...base, weightsDir: join(tmp, "weights_full"), separate: false });
    rows.push([
      "first 60 s, no separation, full-size wav2vec2 (random)",
      full.rss_before,
      full.rss_peak,
      full.timings.total,
      0,
      0,
      full.timings.wav2vec_run,
    ]);
  }
  console.log(
    table(
      [
        "run",
        "RSS at start MiB",
        "peak RSS MiB",
        "total s",
        "separate s",
        "all separation steps s",
        "wav2vec s",
      ],
      rows,
    ),
  );
  console.log("   input: 600 s = 26.46 M stereo frames (212 MB as float32 per copy of both channels)");
  console.log("   all separation steps = decode_44k + separate + write_vocals + resample_16k");
}

if (import.meta.main) await main(Deno.args);
