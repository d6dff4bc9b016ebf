/**
 * The clip loop of upstream's `scripts/inference.py` (spec 6.1), with a run directory (run_dir.ts) that
 * makes long runs safe: each finished clip is recorded (its frames and the motion frames the next clip needs)
 * before the next starts, so a killed run loses at most the clip in progress, and a resumed run continues
 * bit-identically.
 */
import { manualSeed } from "../../sampling/noise.ts";
import { makeDdimSchedule } from "../../sampling/ddim.ts";
import type { SamplerStep } from "../../sampling/sampler.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import { projectAudio } from "../networks/projections.ts";
import { videoFrame, videoToFrames } from "../video/frames.ts";
import type { HalloModels } from "./models.ts";
import { type ClipInputs, runClip } from "./pipeline.ts";
import type { BankCache } from "./bank_cache.ts";
import { identityDifference, type RunDir, RunDirError } from "./run_dir.ts";

/** The reference image's conditioning, as the image stage returns it. */
export interface ImageConditioning {
  /** (3, H, W) in [-1, 1]. */
  pixels: F32Tensor;
  /** (3, H, W) in [0, 1]. */
  faceRegion: F32Tensor;
  /** (1, 512) raw ArcFace embedding. */
  faceEmb: F32Tensor;
  /** Mask pyramids, level 0..3, each (1, h*w) in [0, 1]. */
  fullMask: F32Tensor[];
  faceMask: F32Tensor[];
  lipMask: F32Tensor[];
}

/** The driving audio's conditioning, as the audio stage returns it. */
export interface AudioConditioning {
  /** (L, 5, layers, dim) per-frame windows of wav2vec2 features, L padded to a multiple of the clip length. */
  windows: F32Tensor;
  /** Frames of the output video (upstream's `audio_length`). */
  audioLength: number;
}

export interface AnimateOptions {
  steps: number;
  cfg: number;
  motionScale: readonly [number, number, number];
  seed: number;
  /**
   * The opened run directory (`RunDir.open`) where finished clips and the run record go; a resumed one
   * continues from its last verified clip. Its identity must name the same steps, cfg, weights and seed.
   */
  run: RunDir;
  /** Written into run.json (CLI options, input hashes, versions, stage timings). */
  record?: Record<string, unknown>;
  /** Stop after this many clips (tests of resume). */
  maxClips?: number;
  /**
   * Reference-bank cache shared by runs of one input (sweeps); offered to clip 0 only, the one clip whose
   * reference inputs repeat across settings (later clips' motion frames are this run's own output).
   * Default: off.
   */
  bankCache?: BankCache;
  onStep?: (clip: number, clips: number, s: SamplerStep) => void;
  onClip?: (clip: number, clips: number, seconds: number) => void;
}

/** What `animate` leaves behind. */
export interface AnimateResult {
  runDir: string;
  clips: number;
  /** Frames of the video (audio_length). */
  frames: number;
  width: number;
  height: number;
  /** Clips computed by this call (the others came from a previous run). */
  computed: number;
  complete: boolean;
  /** Clips computed by this call whose reference bank came from `bankCache`. */
  referenceCachedClips: number;
}

/** (1, L, ...) slice of frames [start, start+n) of a (L, ...) tensor. */
function sliceFrames(t: F32Tensor, start: number, n: number): F32Tensor {
  const per = t.data.length / t.shape[0];
  return f32([1, n, ...t.shape.slice(1)], t.data.slice(start * per, (start + n) * per));
}

/** A pyramid level (1, hw) repeated over `frames` rows: upstream's `mask.repeat(16, 1)`. */
function repeatRows(t: F32Tensor, frames: number): F32Tensor {
  const hw = t.data.length;
  const out = new Float32Array(frames * hw);
  for (let i = 0; i < frames; i++) out.set(t.data, i * hw);
  return f32([frames, hw], out);
}

/** The masks of a clip: every pyramid level repeated over the clip's frames. */
export function clipMasks(image: ImageConditioning, frames: number): ClipInputs["masks"] {
  const pyr = (p: F32Tensor[]) => p.map((t) => repeatRows(t, frames));
  return { full: pyr(image.fullMask), face: pyr(image.faceMask), lip: pyr(image.lipMask) };
}

/**
 * What clip `t` is conditioned on, as inference.py builds it: `[pixels, M1, M2]` where the motion frames are
 * the reference image itself for clip 0 and, later, the previous clip's last decoded frames (float in
 * [0, 1], mapped to [-1, 1]); the clip's audio windows through AudioProjModel.
 */
export async function clipInputs(
  m: HalloModels,
  image: ImageConditioning,
  audio: AudioConditioning,
  t: number,
  motion: readonly Float32Array[],
  masks: ClipInputs["masks"] = clipMasks(image, m.geometry.frames),
): Promise<ClipInputs> {
  const F = m.geometry.frames;
  const [, H, W] = image.pixels.shape;
  const px = image.pixels.data;
  const ref = new Float32Array((1 + motion.length) * px.length);
  ref.set(px, 0);
  motion.forEach((fr, i) =>
    ref.set(t === 0 ? fr : fr.map((v) => Math.fround(v * 2 - 1)), (1 + i) * px.length)
  );
  return {
    refImages: f32([1 + motion.length, 3, H, W], ref),
    faceEmb: image.faceEmb,
    audioTokens: await projectAudio(m.audioProj, sliceFrames(audio.windows, t * F, F)),
    faceRegion: f32([1, 3, H, W], image.faceRegion.data),
    masks,
  };
}

/**
 * Generates every clip into the run directory `o.run`. The first clip's motion frames are the reference image itself;
 * later clips use the last decoded frames of the previous clip (float, not quantised). The reference UNet
 * reruns every clip, and the noise comes from one generator seeded once, consumed clip after clip.
 */
export async function animate(
  m: HalloModels,
  image: ImageConditioning,
  audio: AudioConditioning,
  o: AnimateOptions,
): Promise<AnimateResult> {
  const F = m.geometry.frames;
  const M = m.configs.nMotionFrames ?? 2;
  const L = audio.windows.shape[0];
  if (L % F !== 0) {
    throw new Error(`audio windows (${L}) are not padded to a multiple of the clip length ${F}`);
  }
  const clips = L / F;
  const [, H, W] = image.pixels.shape;
  const frameBytes = F * H * W * 3;
  const run = o.run;
  const asked = {
    ...run.identity,
    steps: o.steps,
    cfg: o.cfg,
    poseWeight: o.motionScale[0],
    faceWeight: o.motionScale[1],
    lipWeight: o.motionScale[2],
    seed: o.seed,
    size: H,
  };
  const diff = identityDifference(run.identity, asked);
  if (diff) throw new RunDirError(`run dir ${run.dir} was opened for a run with ${diff}`);
  const start = await run.begin(
    { clips, audioLength: audio.audioLength, width: W, height: H, framesPerClip: F, motionFrames: M },
    o.record,
  );
  let motion: Float32Array[] = Array.from({ length: M }, () => image.pixels.data);
  if (start > 0) {
    const all = await run.readMotion(start - 1);
    const per = 3 * H * W;
    motion = Array.from({ length: M }, (_, i) => all.slice(i * per, (i + 1) * per));
  }

  const generator = manualSeed(o.seed);
  const latentShape = [1, 4, F, m.geometry.height, m.geometry.width];
  // Clips already on disk consumed their noise: draw and drop it so the stream lines up.
  for (let i = 0; i < start; i++) generator.randn(latentShape, "float16");
  const schedule = makeDdimSchedule();
  const masks = clipMasks(image, F);
  const end = o.maxClips !== undefined ? Math.min(clips, start + o.maxClips) : clips;
  let referenceCachedClips = 0;
  for (let t = start; t < end; t++) {
    const t0 = performance.now();
    const { video, latents } = await runClip(m, await clipInputs(m, image, audio, t, motion, masks), {
      steps: o.steps,
      cfg: o.cfg,
      motionScale: o.motionScale,
      generator,
      schedule,
      bankCache: t === 0 ? o.bankCache : undefined,
      onStep: (s) => o.onStep?.(t, clips, s),
    });
    if (latents.bankCached) referenceCachedClips++;
    motion = Array.from({ length: M }, (_, i) => videoFrame(video, F - M + i));
    const frames = videoToFrames(video);
    const all = new Uint8Array(frameBytes);
    frames.forEach((f, i) => all.set(f, i * f.length));
    const mot = new Float32Array(M * 3 * H * W);
    motion.forEach((fr, i) => mot.set(fr, i * fr.length));
    const seconds = (performance.now() - t0) / 1000;
    await run.writeClip(t, all, mot, seconds);
    o.onClip?.(t, clips, seconds);
  }
  const complete = end === clips;
  if (complete) await run.complete();
  return {
    runDir: run.dir,
    clips,
    frames: Math.min(audio.audioLength, clips * F),
    width: W,
    height: H,
    computed: end - start,
    complete,
    referenceCachedClips,
  };
}
