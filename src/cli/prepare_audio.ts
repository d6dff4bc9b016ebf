/**
 * `deno task hallo prepare-audio --audio A --out DIR`: the audio stage alone. Writes `audio.safetensors`
 * (`audio_emb` (L, layers, dim), `audio_windows` (L, 5, layers, dim), float32) and `audio.json` (seq_len,
 * audio_length, files, timings, warnings) into DIR; the separated vocals go to DIR/.cache/audio_preprocess.
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { parseDevice } from "../runtime/device.ts";
import { probeDevice } from "../runtime/probe.ts";
import { checkAudioFile, joinNegativeValues } from "./options.ts";
import { prepareAudio } from "../stages/audio/prepare.ts";
import { writeSafetensors } from "../weights/safetensors_write.ts";
import { resolveWeightsDir } from "../weights/locate.ts";
import { StepProgress } from "./progress.ts";

const USAGE = `usage: deno task hallo prepare-audio --audio FILE --out DIR [options]

  --audio FILE        driving audio: any file ffmpeg reads, or a video with a sound track
  --out DIR           writes DIR/audio.safetensors (audio_emb, audio_windows) and DIR/audio.json
  --weights DIR       pretrained_models folder (default: $HALLO_WEIGHTS, then weights/pretrained_models)
  --no-separate       skip vocal separation (Kim_Vocal_2); also skipped, with a warning, when the model is missing
  --clip-length N     frames per clip; the frame count is padded to a multiple of it (default 16)
  --fps N             video frame rate (default 25)
  --device D          cpu (default), cuda or webgpu
  --cache-dir DIR     where the separated vocals go (default DIR/.cache/audio_preprocess)`;

function positiveInt(flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${flag} must be a positive integer, got '${v}'`);
  }
  return n;
}

class UsageError extends Error {
  override name = "UsageError";
}

function oneLine(s: string, max = 1000): string {
  const line = s.replace(/\s*\n\s*/g, " | ");
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

function parse(args: string[]) {
  const options = {
    audio: { type: "string" },
    out: { type: "string" },
    weights: { type: "string" },
    "no-separate": { type: "boolean" },
    "clip-length": { type: "string" },
    fps: { type: "string" },
    device: { type: "string" },
    "cache-dir": { type: "string" },
    help: { type: "boolean", short: "h" },
  } as const;
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(args, options),
    strict: true,
    allowPositionals: true,
    options,
  });
  if (values.help) return undefined;
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (!values.audio) throw new UsageError("--audio is required");
  if (!values.out) throw new UsageError("--out is required");
  const out = resolve(values.out);
  return {
    audio: values.audio,
    out,
    weightsDir: resolveWeightsDir(values.weights),
    separate: !values["no-separate"],
    clipLength: positiveInt("--clip-length", values["clip-length"], 16),
    fps: positiveInt("--fps", values.fps, 25),
    device: parseDevice(values.device ?? "cpu"),
    cacheDir: resolve(values["cache-dir"] ?? join(out, ".cache", "audio_preprocess")),
  };
}

/** CLI entry: returns the exit code (0 ok, 1 failed, 2 usage). */
export async function run(args: string[]): Promise<number> {
  let o: ReturnType<typeof parse>;
  try {
    o = parse(args);
  } catch (e) {
    console.error(`hallo prepare-audio: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!o) {
    console.log(USAGE);
    return 0;
  }
  const progress = new StepProgress();
  try {
    // Before the output folder, the separator or wav2vec2: a device that cannot run and a file that is
    // not audio fail in a fraction of a second.
    await probeDevice(o.device);
    await checkAudioFile("audio", o.audio);
    await Deno.mkdir(o.out, { recursive: true });
    const r = await prepareAudio(o.audio, {
      ...o,
      onProgress: (_step, done, total) =>
        progress.update(done, total, `separating vocals: chunk ${done}/${total}`),
    });
    progress.done();
    const st = join(o.out, "audio.safetensors");
    writeSafetensors(st, [
      { name: "audio_emb", dtype: "F32", shape: r.embedding.shape, data: r.embedding.data },
      { name: "audio_windows", dtype: "F32", shape: r.windows.shape, data: r.windows.data },
    ], { seq_len: String(r.seqLen), audio_length: String(r.audioLength) });
    const record = {
      audio: resolve(o.audio),
      seq_len: r.seqLen,
      audio_length: r.audioLength,
      num_samples_16k: r.numSamples,
      clip_length: o.clipLength,
      fps: o.fps,
      separated: r.separated,
      weights: o.weightsDir,
      device: o.device,
      shapes: { audio_emb: r.embedding.shape, audio_windows: r.windows.shape },
      files: {
        safetensors: st,
        ...(r.vocalsPath ? { vocals: r.vocalsPath, vocals_16k: r.vocals16kPath } : {}),
      },
      timings: Object.fromEntries(
        Object.entries(r.timings).map(([k, v]) => [k, Math.round(v * 1000) / 1000]),
      ),
      warnings: r.warnings,
    };
    await Deno.writeTextFile(join(o.out, "audio.json"), JSON.stringify(record, null, 2) + "\n");
    for (const w of r.warnings) console.error(`warning: ${w}`);
    console.log(
      `audio: ${r.audioLength} frames (${r.seqLen} with padding), audio_emb [${r.embedding.shape}], ` +
        `${r.separated ? "vocals separated" : "not separated"}, ${r.timings.total.toFixed(1)} s -> ${o.out}`,
    );
    return 0;
  } catch (e) {
    progress.done();
    // Input, weights and model problems are one line; the stack only when asked for.
    const err = e as Error;
    console.error(`hallo prepare-audio: ${oneLine(err?.message ?? String(e))}`);
    if (Deno.env.get("HALLO_DEBUG")) console.error(err?.stack);
    return 1;
  }
}
