/**
 * A whole run, as `scripts/inference.py` does it: prepare the image and the audio, load the networks,
 * generate every clip into a run directory, write the mp4 with the original audio. Split in two layers so
 * sweeps can share the preparation and the loaded networks across settings.
 */
import { basename, dirname, extname, join, resolve } from "node:path";
import { prepareAudio, type PreparedAudio } from "../audio/prepare.ts";
import { type PreparedImage, prepareImage } from "../image/prepare.ts";
import { writeMp4 } from "../video/mp4.ts";
import { animate, type AnimateResult, type ClipInspection } from "./animate.ts";
import type { HalloModels } from "./models.ts";
import type { BankCache } from "./bank_cache.ts";
import type { MeasureOptions } from "./clip_measures.ts";
import type { EventPlace, OnEvent } from "../../sampling/events.ts";
import type { Device } from "../../runtime/device.ts";
import {
  checkRunPaths,
  fileSha256,
  identityDifference,
  makeRunIdentity,
  RunDir,
  RunDirError,
  type RunIdentity,
} from "./run_dir.ts";

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
  /** The separator .onnx (default `<weightsDir>/audio_separator/Kim_Vocal_2.onnx`); when given it must exist. */
  separatorModel?: string;
  /** Frames per clip the audio is padded to (upstream: 16). */
  clipLength?: number;
}

/** Both inputs prepared, with their file hashes and timings. */
export interface PreparedInputs {
  image: PreparedImage;
  audio: PreparedAudio;
  imagePath: string;
  audioPath: string;
  hashes: { image: string; audio: string };
  /** The preparation options that shape the conditioning, resolved (part of the run identity). */
  options: { faceExpandRatio: number; size: number; separate: boolean; separatorModel?: string };
  timings: Record<string, number>;
  warnings: string[];
}

/** Prepares the reference image and the driving audio (spec sections 2 and 3). */
export async function prepareInputs(
  image: string,
  audio: string,
  o: PrepareOptions,
): Promise<PreparedInputs> {
  const t0 = performance.now();
  const options = {
    faceExpandRatio: o.faceExpandRatio ?? 1.2,
    size: o.size ?? 512,
    separate: o.separate ?? true,
    separatorModel: o.separatorModel,
  };
  const img = await prepareImage(image, {
    weightsDir: o.weightsDir,
    faceExpandRatio: options.faceExpandRatio,
    size: options.size,
    device: o.device,
    allowMissingFaceModels: o.allowMissingFaceModels,
  });
  const t1 = performance.now();
  const aud = await prepareAudio(audio, {
    weightsDir: o.weightsDir,
    separate: options.separate,
    device: o.device,
    threads: o.threads,
    cacheDir: o.cacheDir,
    separatorModel: options.separatorModel,
    clipLength: o.clipLength,
  });
  const t2 = performance.now();
  return {
    image: img,
    audio: aud,
    imagePath: resolve(image),
    audioPath: resolve(audio),
    hashes: { image: await fileSha256(image), audio: await fileSha256(audio) },
    options,
    timings: { prepare_image_s: (t1 - t0) / 1000, prepare_audio_s: (t2 - t1) / 1000 },
    warnings: [...img.warnings, ...aud.warnings],
  };
}

export interface RenderOptions {
  out: string;
  /**
   * The run directory, opened by the caller (`RunDir.open`, e.g. before any preparation, to fail early) and
   * left open; its identity must be this run's. Without it, `runDir` (default `<out>.run`) is opened here,
   * with `resume`, and closed at the end.
   */
  run?: RunDir;
  runDir?: string;
  resume?: boolean;
  /** Precision the networks were loaded with (default: the opened run's, else float32); part of the identity. */
  dtype?: "float32" | "float16";
  maxClips?: number;
  /** Reference-bank cache shared across videos of the same inputs (sweeps); see `AnimateOptions`. */
  bankCache?: BankCache;
  /** Extra fields for the run record. */
  record?: Record<string, unknown>;
  /** Progress and inspection events (see `AnimateOptions.onEvent`). */
  onEvent?: OnEvent;
  /** Where this video sits in a larger job (a sweep's run), added to every event. */
  place?: EventPlace;
  /** Per clip: an activation cache and interventions (see `AnimateOptions.inspect`), given the run dir. */
  inspect?: (clip: number, runDir: string) => ClipInspection | Promise<ClipInspection>;
  /** Write what replays any step into the run dir (see `AnimateOptions.recordSteps`). */
  recordSteps?: boolean;
  /** What is measured per clip and kept in the run dir (see `AnimateOptions.measures`). */
  measures?: MeasureOptions;
}

export interface RenderResult extends AnimateResult {
  out?: string;
  timings: Record<string, number>;
}

/** The run directory of an output file: `<out without extension>.run`. */
export function defaultRunDir(out: string): string {
  return join(dirname(out), `${basename(out, extname(out))}.run`);
}

/**
 * The identity of a run of `s` on prepared inputs `p` with networks `m` (device from their sessions).
 * `dtype` is the precision the networks were loaded with.
 */
export function renderIdentity(
  m: HalloModels,
  p: PreparedInputs,
  s: RenderSettings,
  dtype: "float32" | "float16" = "float32",
): RunIdentity {
  return makeRunIdentity(
    p.hashes,
    { ...p.options, ...s, device: m.denoisingUNet.session.device, dtype },
    m.weightsDir,
  );
}

/**
 * Generates one video with `settings` from prepared inputs and loaded networks: the clips into the run
 * directory, then the mp4 with the original audio.
 *
 * @example
 * ```ts ignore
 * const prepared = await prepareInputs("face.jpg", "speech.wav", { weightsDir });
 * const res = await renderVideo(models, prepared, DEFAULT_SETTINGS, { out: "out.mp4" });
 * console.log(res.out, res.frames, res.runDir);
 * ```
 */
export async function renderVideo(
  m: HalloModels,
  p: PreparedInputs,
  s: RenderSettings,
  o: RenderOptions,
): Promise<RenderResult> {
  const runDir = o.run?.dir ?? o.runDir ?? defaultRunDir(o.out);
  checkRunPaths({ "--out": o.out }, { "--image": p.imagePath, "--audio": p.audioPath }, runDir);
  const dtype = o.dtype ?? (o.run?.identity.dtype as "float32" | "float16" | undefined) ?? "float32";
  const identity = renderIdentity(m, p, s, dtype);
  if (o.run) {
    const diff = identityDifference(o.run.identity, identity);
    if (diff) throw new RunDirError(`run dir ${runDir} was opened for a run with ${diff}`);
  }
  const run = o.run ?? await RunDir.open(runDir, { identity, resume: o.resume });
  let ok = false;
  try {
    const res = await renderInto(run, m, p, s, o);
    ok = true;
    return res;
  } finally {
    if (!o.run) await run.close({ failed: !ok });
  }
}

async function renderInto(
  run: RunDir,
  m: HalloModels,
  p: PreparedInputs,
  s: RenderSettings,
  o: RenderOptions,
): Promise<RenderResult> {
  const t0 = performance.now();
  const res = await animate(m, p.image, p.audio, {
    steps: s.steps,
    cfg: s.cfg,
    motionScale: [s.poseWeight, s.faceWeight, s.lipWeight],
    seed: s.seed,
    run,
    maxClips: o.maxClips,
    bankCache: o.bankCache,
    onEvent: o.onEvent,
    place: o.place,
    inspect: o.inspect && ((clip) => o.inspect!(clip, run.dir)),
    recordSteps: o.recordSteps,
    measures: o.measures,
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
  const frames = await writeMp4(run.frames(), o.out, {
    width: res.width,
    height: res.height,
    fps: 25,
    audio: p.audioPath,
    frameCount: res.frames,
  });
  timings.write_mp4_s = (performance.now() - t1) / 1000;
  await run.update({ output: resolve(o.out), frames, timings });
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
