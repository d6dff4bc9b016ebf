/**
 * The clip loop of upstream's `scripts/inference.py` (spec 6.1), with a run directory that makes long runs
 * safe: each finished clip is written (its frames and the motion frames the next clip needs) before the next
 * starts, so a killed run loses at most the clip in progress, and `resume` continues bit-identically.
 */
import { makeDdimSchedule } from "../../sampling/ddim.ts";
import type { EventPlace, HalloEvent, OnEvent } from "../../sampling/events.ts";
import { manualSeed } from "../../sampling/noise.ts";
import type { AudioWindows } from "../audio/prepare.ts";
import type { ImageConditioning } from "../image/prepare.ts";
import { videoFrame, videoToFrames } from "../video/frames.ts";
import type { ActivationCache } from "../inspect/cache.ts";
import type { PlannedIntervention } from "../inspect/interventions.ts";
import type { BankCache } from "./bank_cache.ts";
import {
  ClipMeasurer,
  type MeasureOptions,
  measureRegions,
  measuresDifference,
  resolveMeasures,
} from "./clip_measures.ts";
import { clipInputs, clipMasks, firstMotionFrames } from "./conditioning.ts";
import { GenerationError } from "./errors.ts";
import type { HalloModels } from "./models.ts";
import { initialNoise, latentShape } from "./noise.ts";
import { runClip } from "./pipeline.ts";
import { identityDifference, type RunDir, RunDirError } from "./run_dir.ts";

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
  /** Progress and inspection: a `step` event per sampler step and a `clip` event per finished clip. */
  onEvent?: OnEvent;
  /** Where this video sits in a larger job (a sweep's run), added to every event. */
  place?: EventPlace;
  /**
   * Per clip, before it is sampled: an activation cache to record its steps into and the interventions (with
   * their sources resolved for that clip) to apply. Called once per clip computed.
   */
  inspect?: (clip: number) => ClipInspection | Promise<ClipInspection>;
  /** Write each clip's conditioning and per-step latents and guided predictions (a replayable run). */
  recordSteps?: boolean;
  /**
   * What is measured per clip while it samples and kept in the run dir (see clip_measures.ts): guidance by
   * region unless `guidance: false`, identity at `identity` sites. A resume must measure the same way.
   */
  measures?: MeasureOptions;
}

/** What one clip is sampled with besides its settings (see `AnimateOptions.inspect`). */
export interface ClipInspection {
  cache?: ActivationCache;
  interventions?: readonly PlannedIntervention[];
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

/**
 * Generates every clip into the run directory `o.run`. The first clip's motion frames are the reference image itself;
 * later clips use the last decoded frames of the previous clip (float, not quantised). The reference UNet
 * reruns every clip, and the noise comes from one generator seeded once, consumed clip after clip.
 *
 * @example
 * ```ts ignore
 * const res = await animate(models, image, audio, {
 *   steps: 40, cfg: 3.5, motionScale: [1, 1, 1], seed: 42, run: await RunDir.open("out.run", { identity }),
 *   onEvent: (e) => e.kind === "clip" && console.log(`clip ${e.clip!.index + 1}/${e.clip!.count}`),
 * });
 * for await (const frame of readRunFrames(res.runDir)) void frame; // RGB24 frames of the video
 * ```
 */
export async function animate(
  m: HalloModels,
  image: ImageConditioning,
  audio: AudioWindows,
  o: AnimateOptions,
): Promise<AnimateResult> {
  const F = m.geometry.frames;
  const M = m.configs.nMotionFrames ?? 2;
  const L = audio.windows.shape[0];
  if (L % F !== 0) {
    throw new GenerationError(`audio windows (${L}) are not padded to a multiple of the clip length ${F}`);
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
  // Interventions change the frames but are not part of the identity (it names plain runs): a resume must
  // continue with the ones the run was made with.
  if (run.resume && run.record) {
    const was = JSON.stringify(run.record.interventions ?? []),
      now = JSON.stringify(o.record?.interventions ?? []);
    if (was !== now) {
      throw new RunDirError(`run dir ${run.dir} was made with interventions ${was}, this run has ${now}`);
    }
  }
  const measures = resolveMeasures(m, o.measures);
  const measureDiff = run.resume ? measuresDifference(run.record?.measures, measures) : undefined;
  if (measureDiff) throw new RunDirError(`run dir ${run.dir} ${measureDiff}`);
  const start = await run.begin(
    { clips, audioLength: audio.audioLength, width: W, height: H, framesPerClip: F, motionFrames: M },
    { ...o.record, measures },
  );
  let motion: Float32Array[] = firstMotionFrames(image, M);
  if (start > 0) {
    const all = await run.readMotion(start - 1);
    const per = 3 * H * W;
    motion = Array.from({ length: M }, (_, i) => all.slice(i * per, (i + 1) * per));
  }

  const generator = manualSeed(o.seed);
  const shape = latentShape(m);
  // Clips already on disk consumed their noise: draw and drop it so the stream lines up.
  for (let i = 0; i < start; i++) initialNoise(generator, shape);
  const schedule = makeDdimSchedule();
  const masks = clipMasks(image, F);
  const regions = measureRegions(image);
  const end = o.maxClips !== undefined ? Math.min(clips, start + o.maxClips) : clips;
  let referenceCachedClips = 0;
  for (let t = start; t < end; t++) {
    const t0 = performance.now();
    const inspect = await o.inspect?.(t);
    const measurer = new ClipMeasurer(measures, regions);
    const onEvent = (e: HalloEvent) => {
      if (e.kind === "step") measurer.step(e.step);
      o.onEvent?.({ ...o.place, ...e });
    };
    const { video, latents, steps } = await runClip(m, await clipInputs(m, image, audio, t, motion, masks), {
      steps: o.steps,
      cfg: o.cfg,
      motionScale: o.motionScale,
      generator,
      schedule,
      bankCache: t === 0 ? o.bankCache : undefined,
      onEvent,
      clip: { index: t, count: clips },
      cache: inspect?.cache,
      interventions: inspect?.interventions,
      recordSteps: o.recordSteps,
    });
    if (steps) await run.writeSteps(t, steps);
    if (latents.bankCached) referenceCachedClips++;
    motion = Array.from({ length: M }, (_, i) => videoFrame(video, F - M + i));
    const frames = videoToFrames(video);
    const all = new Uint8Array(frameBytes);
    frames.forEach((f, i) => all.set(f, i * f.length));
    const mot = new Float32Array(M * 3 * H * W);
    motion.forEach((fr, i) => mot.set(fr, i * fr.length));
    const seconds = (performance.now() - t0) / 1000;
    await run.writeClip(t, all, mot, seconds, measurer.result());
    o.onEvent?.({
      ...o.place,
      kind: "clip",
      clip: { index: t, count: clips },
      seconds,
      bankCached: latents.bankCached,
    });
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
