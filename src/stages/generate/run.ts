/**
 * A whole run, as `scripts/inference.py` does it: prepare the image and the audio, load the networks,
 * generate every clip into a run directory, write the mp4 with the original audio. Split in two layers so
 * sweeps can share the preparation and the loaded networks across settings.
 */
import { createHash } from "node:crypto";
import { basename, dirname, extname, join, resolve } from "node:path";
import { prepareAudio, type PreparedAudio } from "../audio/prepare.ts";
import { type PreparedImage, prepareImage } from "../image/prepare.ts";
import { writeMp4 } from "../video/mp4.ts";
import { animate, type AnimateResult, runFrames } from "./animate.ts";
import { type HalloModels, loadHalloModels } from "./models.ts";
import type { BankCache } from "./bank_cache.ts";
import type { SamplerStep } from "../../sampling/sampler.ts";
import type { Device } from "../../runtime/device.ts";

/** The settings of one video (the knobs a sweep turns). */
export interface RenderSettings {
  steps: number;
  cfg: number;
  poseWeight: number;
  faceWeight: number;
  lipWeight: number;
  seed: number;
}

export const DEFAULT_SETTINGS: RenderSettings = {
  steps: 40,
  cfg: 3.5,
  poseWeight: 1,
  faceWeight: 1,
  lipWeight: 1,
  seed: 42,
};

export interface PrepareOptions {
  weightsDir: string;
  /** Video size (square, multiple of 64; upstream: 512). */
  size?: number;
  faceExpandRatio?: number;
  separate?: boolean;
  device?: Device;
  threads?: number;
  /** Demo with random weights: no insightface files -> the no-face path, loudly. */
  allowMissingFaceModels?: boolean;
  /** Where intermediate files go (vocals). */
  cacheDir?: string;
}

/** Both inputs prepared, with their file hashes and timings. */
export interface PreparedInputs {
  image: PreparedImage;
  audio: PreparedAudio;
  imagePath: string;
  audioPath: string;
  hashes: { image: string; audio: string };
  timings: Record<string, number>;
  warnings: string[];
}

/** sha256 of a file, streamed. */
export async function fileSha256(path: string): Promise<string> {
  const h = createHash("sha256");
  const f = await Deno.open(path);
  try {
    for await (const chunk of f.readable) h.update(chunk);
  } catch (e) {
    throw new Error(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  return h.digest("hex");
}

/** Prepares the reference image and the driving audio (spec sections 2 and 3). */
export async function prepareInputs(
  image: string,
  audio: string,
  o: PrepareOptions,
): Promise<PreparedInputs> {
  const t0 = performance.now();
  const img = await prepareImage(image, {
    weightsDir: o.weightsDir,
    faceExpandRatio: o.faceExpandRatio ?? 1.2,
    size: o.size,
    device: o.device,
    allowMissingFaceModels: o.allowMissingFaceModels,
  });
  const t1 = performance.now();
  const aud = await prepareAudio(audio, {
    weightsDir: o.weightsDir,
    separate: o.separate ?? true,
    device: o.device,
    threads: o.threads,
    cacheDir: o.cacheDir,
  });
  const t2 = performance.now();
  return {
    image: img,
    audio: aud,
    imagePath: resolve(image),
    audioPath: resolve(audio),
    hashes: { image: await fileSha256(image), audio: await fileSha256(audio) },
    timings: { prepare_image_s: (t1 - t0) / 1000, prepare_audio_s: (t2 - t1) / 1000 },
    warnings: [...img.warnings, ...aud.warnings],
  };
}

/** Loads the networks for 16-frame clips of `size` pixels (upstream: 512), with or without guidance. */
export function loadModelsFor(
  weightsDir: string,
  cfg: number,
  o: {
    device?: Device;
    threads?: number;
    dtype?: "float32" | "float16";
    size?: number;
    strictDevice?: boolean;
  } = {},
): Promise<HalloModels> {
  const latent = (o.size ?? 512) / 8;
  return loadHalloModels(weightsDir, { frames: 16, height: latent, width: latent, guidance: cfg > 1 }, o);
}

export interface RenderOptions {
  out: string;
  runDir?: string;
  resume?: boolean;
  maxClips?: number;
  /** Reference-bank cache shared across videos of the same inputs (sweeps); see `AnimateOptions`. */
  bankCache?: BankCache;
  /** Extra fields for the run record. */
  record?: Record<string, unknown>;
  onStep?: (clip: number, clips: number, s: SamplerStep) => void;
  onClip?: (clip: number, clips: number, seconds: number) => void;
}

export interface RenderResult extends AnimateResult {
  out?: string;
  timings: Record<string, number>;
}

/** The run directory of an output file: `<out without extension>.run`. */
export function defaultRunDir(out: string): string {
  return join(dirname(out), `${basename(out, extname(out))}.run`);
}

/** Generates one video with `settings` from prepared inputs and loaded networks. */
export async function renderVideo(
  m: HalloModels,
  p: PreparedInputs,
  s: RenderSettings,
  o: RenderOptions,
): Promise<RenderResult> {
  const runDir = o.runDir ?? defaultRunDir(o.out);
  const t0 = performance.now();
  const res = await animate(m, p.image, p.audio, {
    steps: s.steps,
    cfg: s.cfg,
    motionScale: [s.poseWeight, s.faceWeight, s.lipWeight],
    seed: s.seed,
    runDir,
    resume: o.resume,
    maxClips: o.maxClips,
    bankCache: o.bankCache,
    onStep: o.onStep,
    onClip: o.onClip,
    record: {
      ...o.record,
      settings: s,
      inputs: {
        image: { path: p.imagePath, sha256: p.hashes.image },
        audio: { path: p.audioPath, sha256: p.hashes.audio },
      },
      warnings: p.warnings,
      timings: { ...p.timings, ...modelTimings(m) },
    },
  });
  const t1 = performance.now();
  const timings: Record<string, number> = { ...p.timings, ...modelTimings(m), generate_s: (t1 - t0) / 1000 };
  if (!res.complete) return { ...res, timings };
  const frames = await writeMp4(runFrames(res), o.out, {
    width: res.width,
    height: res.height,
    fps: 25,
    audio: p.audioPath,
    frameCount: res.frames,
  });
  timings.write_mp4_s = (performance.now() - t1) / 1000;
  const recPath = join(runDir, "run.json");
  const rec = JSON.parse(await Deno.readTextFile(recPath));
  await Deno.writeTextFile(
    recPath,
    JSON.stringify({ ...rec, output: resolve(o.out), frames, timings }, null, 2),
  );
  return { ...res, out: o.out, timings };
}

function modelTimings(m: HalloModels): Record<string, number> {
  const t: Record<string, number> = {};
  for (const [k, v] of Object.entries(m.timings)) {
    t[`${k}_build_s`] = v.build_s;
    t[`${k}_session_s`] = v.session_s;
  }
  return t;
}
