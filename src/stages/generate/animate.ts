/**
 * The clip loop of upstream's `scripts/inference.py` (spec 6.1), with a run directory that makes long runs
 * safe: each finished clip is written (its frames and the motion frames the next clip needs) before the next
 * starts, so a killed run loses at most the clip in progress, and `resume` continues bit-identically.
 */
import { join } from "node:path";
import { makeDdimSchedule } from "../../sampling/ddim.ts";
import type { EventPlace, OnEvent } from "../../sampling/events.ts";
import { manualSeed } from "../../sampling/noise.ts";
import type { AudioWindows } from "../audio/prepare.ts";
import type { ImageConditioning } from "../image/prepare.ts";
import { videoFrame, videoToFrames } from "../video/frames.ts";
import type { BankCache } from "./bank_cache.ts";
import { clipInputs, clipMasks, firstMotionFrames } from "./conditioning.ts";
import { GenerationError } from "./errors.ts";
import type { HalloModels } from "./models.ts";
import { initialNoise, latentShape } from "./noise.ts";
import { runClip } from "./pipeline.ts";

export interface AnimateOptions {
  steps: number;
  cfg: number;
  motionScale: readonly [number, number, number];
  seed: number;
  /** Where finished clips and the run record go. */
  runDir: string;
  /** Continue from the last finished clip of `runDir`. */
  resume?: boolean;
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

/** Thrown when a run directory cannot be resumed (different inputs or options, damaged files). */
export class RunDirError extends Error {
  override name = "RunDirError";
}

const clipName = (i: number) => String(i).padStart(4, "0");

/** Paths of a run directory's files. */
export const runFiles = {
  record: (dir: string) => join(dir, "run.json"),
  frames: (dir: string, i: number) => join(dir, "clips", `${clipName(i)}.rgb`),
  motion: (dir: string, i: number) => join(dir, "clips", `${clipName(i)}.motion.f32`),
  done: (dir: string, i: number) => join(dir, "clips", `${clipName(i)}.json`),
};

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp`;
  if (typeof data === "string") await Deno.writeTextFile(tmp, data);
  else await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

/** The deterministic part of a run: what must match for a resume to give the same video. */
function runIdentity(o: AnimateOptions, clips: number, size: [number, number]): Record<string, unknown> {
  return { steps: o.steps, cfg: o.cfg, motionScale: [...o.motionScale], seed: o.seed, clips, size };
}

/** How many clips of `dir` are finished (consecutive from 0, marker and files complete). */
async function finishedClips(
  dir: string,
  clips: number,
  frameBytes: number,
  motionBytes: number,
): Promise<number> {
  let n = 0;
  for (; n < clips; n++) {
    try {
      await Deno.stat(runFiles.done(dir, n));
      if ((await Deno.stat(runFiles.frames(dir, n))).size !== frameBytes) break;
      if ((await Deno.stat(runFiles.motion(dir, n))).size !== motionBytes) break;
    } catch {
      break;
    }
  }
  return n;
}

/**
 * Generates every clip into `o.runDir`. The first clip's motion frames are the reference image itself;
 * later clips use the last decoded frames of the previous clip (float, not quantised). The reference UNet
 * reruns every clip, and the noise comes from one generator seeded once, consumed clip after clip.
 *
 * @example
 * ```ts ignore
 * const res = await animate(models, image, audio, {
 *   steps: 40, cfg: 3.5, motionScale: [1, 1, 1], seed: 42, runDir: "out.run",
 *   onEvent: (e) => e.kind === "clip" && console.log(`clip ${e.clip!.index + 1}/${e.clip!.count}`),
 * });
 * for await (const frame of runFrames(res)) void frame; // RGB24 frames of the video
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
  const motionBytes = M * 3 * H * W * 4;
  const identity = runIdentity(o, clips, [H, W]);
  await Deno.mkdir(join(o.runDir, "clips"), { recursive: true });

  let start = 0;
  let motion: Float32Array[] = firstMotionFrames(image, M);
  if (o.resume) {
    let prev: { identity?: unknown };
    try {
      prev = JSON.parse(await Deno.readTextFile(runFiles.record(o.runDir)));
    } catch {
      throw new RunDirError(`${o.runDir}: no run.json to resume from`);
    }
    if (JSON.stringify(prev.identity) !== JSON.stringify(identity)) {
      throw new RunDirError(
        `${o.runDir}: holds a run with other settings (${JSON.stringify(prev.identity)}), not ${
          JSON.stringify(identity)
        }`,
      );
    }
    start = await finishedClips(o.runDir, clips, frameBytes, motionBytes);
    if (start > 0) {
      const raw = await Deno.readFile(runFiles.motion(o.runDir, start - 1));
      const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      const per = 3 * H * W;
      motion = Array.from({ length: M }, (_, i) => all.slice(i * per, (i + 1) * per));
    }
  }
  await writeAtomic(
    runFiles.record(o.runDir),
    JSON.stringify(
      { ...o.record, identity, clips, audio_length: audio.audioLength, status: "running" },
      null,
      2,
    ),
  );

  const generator = manualSeed(o.seed);
  const shape = latentShape(m);
  // Clips already on disk consumed their noise: draw and drop it so the stream lines up.
  for (let i = 0; i < start; i++) initialNoise(generator, shape);
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
      onEvent: o.onEvent && ((e) => o.onEvent!({ ...o.place, ...e })),
      clip: { index: t, count: clips },
    });
    if (latents.bankCached) referenceCachedClips++;
    motion = Array.from({ length: M }, (_, i) => videoFrame(video, F - M + i));
    const frames = videoToFrames(video);
    const all = new Uint8Array(frameBytes);
    frames.forEach((f, i) => all.set(f, i * f.length));
    const mot = new Float32Array(M * 3 * H * W);
    motion.forEach((fr, i) => mot.set(fr, i * fr.length));
    await writeAtomic(runFiles.frames(o.runDir, t), all);
    await writeAtomic(runFiles.motion(o.runDir, t), new Uint8Array(mot.buffer));
    const seconds = (performance.now() - t0) / 1000;
    await writeAtomic(runFiles.done(o.runDir, t), JSON.stringify({ clip: t, seconds }));
    o.onEvent?.({
      ...o.place,
      kind: "clip",
      clip: { index: t, count: clips },
      seconds,
      bankCached: latents.bankCached,
    });
  }
  const complete = end === clips;
  if (complete) {
    const rec = JSON.parse(await Deno.readTextFile(runFiles.record(o.runDir)));
    await writeAtomic(runFiles.record(o.runDir), JSON.stringify({ ...rec, status: "complete" }, null, 2));
  }
  return {
    runDir: o.runDir,
    clips,
    frames: Math.min(audio.audioLength, clips * F),
    width: W,
    height: H,
    computed: end - start,
    complete,
    referenceCachedClips,
  };
}

/** The finished video's frames, read clip by clip from the run directory and trimmed to `frames`. */
export async function* runFrames(r: AnimateResult): AsyncGenerator<Uint8Array> {
  const size = r.width * r.height * 3;
  let left = r.frames;
  for (let c = 0; c < r.clips && left > 0; c++) {
    const all = await Deno.readFile(runFiles.frames(r.runDir, c));
    for (let i = 0; i < all.length / size && left > 0; i++, left--) {
      yield all.subarray(i * size, (i + 1) * size);
    }
  }
}
