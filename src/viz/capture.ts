/**
 * Runs the first clip of a video the way `animate` does (same inputs, same noise for the same seed) and
 * keeps what the visualisers draw: every sampler step (with the UNet's probes), the reader bank and the
 * decoded clip. Later clips depend on the frames before them; inspect them from a run directory instead.
 */
import { manualSeed } from "../sampling/noise.ts";
import type { SamplerStep } from "../sampling/sampler.ts";
import type { AudioConditioning, ImageConditioning } from "../stages/generate/animate.ts";
import type { HalloModels } from "../stages/generate/models.ts";
import { denoiseClip } from "../stages/generate/pipeline.ts";
import { projectAudio } from "../stages/networks/projections.ts";
import type { Bank } from "../stages/networks/unets.ts";
import { decodeLatents } from "../stages/networks/vae.ts";
import { f32, type F32Tensor } from "../tensor.ts";

export interface CaptureOptions {
  steps: number;
  cfg: number;
  /** [pose, face, lip]. */
  motionScale: readonly [number, number, number];
  seed: number;
  /** Decode the final latents to the clip's frames (default true). */
  decode?: boolean;
  onStep?: (s: SamplerStep) => void;
}

/** What the first clip left behind. */
export interface CapturedClip {
  steps: SamplerStep[];
  /** The bank as the denoising UNet read it (fp16-rounded), batch `[ref, m1, m2]` per CFG copy. */
  bank: Bank;
  /** (1, 4, F, h, w). */
  latentShape: number[];
  latents: F32Tensor;
  /** (1, 3, F, H, W) in [0, 1], when decoded. */
  video?: F32Tensor;
}

/** Upstream's `mask.repeat(F, 1)` of a (1, hw) pyramid level. */
function repeatRows(t: F32Tensor, frames: number): F32Tensor {
  const out = new Float32Array(frames * t.data.length);
  for (let i = 0; i < frames; i++) out.set(t.data, i * t.data.length);
  return f32([frames, t.data.length], out);
}

/** Runs clip 0 as `animate` does (motion frames = the reference image) and keeps every step. */
export async function captureFirstClip(
  m: HalloModels,
  image: ImageConditioning,
  audio: AudioConditioning,
  o: CaptureOptions,
): Promise<CapturedClip> {
  const F = m.geometry.frames;
  const M = m.configs.nMotionFrames ?? 2;
  const [, H, W] = image.pixels.shape;
  const px = image.pixels.data;
  const ref = new Float32Array((1 + M) * px.length);
  for (let i = 0; i <= M; i++) ref.set(px, i * px.length);
  const per = audio.windows.data.length / audio.windows.shape[0];
  const windows = f32([1, F, ...audio.windows.shape.slice(1)], audio.windows.data.slice(0, F * per));
  const audioTokens = await projectAudio(m.audioProj, windows);
  const pyr = (p: F32Tensor[]) => p.map((t) => repeatRows(t, F));
  const latentShape = [1, 4, F, m.geometry.height, m.geometry.width];
  const it = denoiseClip(m, {
    refImages: f32([1 + M, 3, H, W], ref),
    faceEmb: image.faceEmb,
    audioTokens,
    faceRegion: f32([1, 3, H, W], image.faceRegion.data),
    masks: { full: pyr(image.fullMask), face: pyr(image.faceMask), lip: pyr(image.lipMask) },
  }, {
    steps: o.steps,
    cfg: o.cfg,
    motionScale: o.motionScale,
    generator: manualSeed(o.seed),
  });
  const steps: SamplerStep[] = [];
  let r = await it.next();
  while (!r.done) {
    steps.push(r.value);
    o.onStep?.(r.value);
    r = await it.next();
  }
  const video = (o.decode ?? true) ? await decodeLatents(m.vae, r.value.latents) : undefined;
  return { steps, bank: r.value.bank, latentShape, latents: r.value.latents, video };
}
