/**
 * A clip's conditioning, stage by stage, as upstream's `FaceAnimatePipeline.__call__` and `inference.py` build it
 * (spec 6.1, 6.2): the clip's inputs (reference image and motion frames, audio tokens, masks repeated per frame),
 * then the guidance context, the reference latents and the face-locator features, each batched `[uncond, cond]`
 * when guiding. Each stage is a function of its own; `conditionClip` runs them in upstream's order.
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import type { AudioWindows } from "../audio/prepare.ts";
import type { ImageConditioning } from "../image/prepare.ts";
import { type FaceLocatorModel, locateFace } from "../networks/face_locator.ts";
import {
  type AudioProjModel,
  type ImageProjModel,
  projectAudio,
  projectFaceEmbedding,
} from "../networks/projections.ts";
import { encodeImages, type VaeModel } from "../networks/vae.ts";
import type { HalloModels } from "./models.ts";

/** The masks of a clip: per pyramid level, (F, h*w) in [0, 1] (batch x frames rows once batched for guidance). */
export interface ClipMasks {
  full: F32Tensor[];
  face: F32Tensor[];
  lip: F32Tensor[];
}

/** What one clip is conditioned on, before any network runs. */
export interface ClipInputs {
  /** (1+M, 3, H, W) in [-1, 1]: the reference image, then the M motion frames. */
  refImages: F32Tensor;
  /** (1, 512) raw ArcFace embedding (zeros when no face was found). */
  faceEmb: F32Tensor;
  /** (1, F, tokens, dim): the clip's audio after AudioProjModel. */
  audioTokens: F32Tensor;
  /** (1, 3, H, W) face region in [0, 1] (repeated over the frames, as upstream). */
  faceRegion: F32Tensor;
  /** Per level, (F, h*w) in [0, 1]. */
  masks: ClipMasks;
}

/** Everything the two UNets read for one clip, batched `[uncond, cond]` when `guidance`. */
export interface ClipConditioning {
  guidance: boolean;
  /** Frames of the clip. */
  frames: number;
  /** Image-proj tokens (b, tokens, dim): the cross-attention context of both UNets. */
  context: F32Tensor;
  /** VAE latents of `[ref, m1, ..]` repeated per guidance copy (b*(1+M), 4, h, w): the reference UNet input. */
  refLatents: F32Tensor;
  /** Face-locator features (b, C, F, h, w), zeros for the unconditional copy. */
  faceFeatures: F32Tensor;
  /** Audio tokens (b, F, tokens, dim), zeros for the unconditional copy. */
  audioTokens: F32Tensor;
  /** Per level, (b*F, h*w). */
  masks: ClipMasks;
}

/** torch.cat([t, t]) along the batch axis, or zeros then t when `zerosFirst`. */
function doubled(t: F32Tensor, zerosFirst = false): F32Tensor {
  const n = t.data.length;
  const out = new Float32Array(2 * n);
  if (!zerosFirst) out.set(t.data, 0);
  out.set(t.data, n);
  return f32([2 * t.shape[0], ...t.shape.slice(1)], out);
}

/** `VaeImageProcessor.preprocess`: images with any negative value are taken as already in [-1, 1]. */
function vaePreprocess(x: F32Tensor): F32Tensor {
  let min = Infinity;
  for (const v of x.data) if (v < min) min = v;
  if (min < 0) return x;
  return f32(x.shape, x.data.map((v) => Math.fround(2 * v - 1)));
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

/** The masks of a clip: every pyramid level of the image stage repeated over the clip's frames. */
export function clipMasks(image: ImageConditioning, frames: number): ClipMasks {
  const pyr = (p: F32Tensor[]) => p.map((t) => repeatRows(t, frames));
  return { full: pyr(image.fullMask), face: pyr(image.faceMask), lip: pyr(image.lipMask) };
}

/** The motion frames of clip 0: the reference image itself, `nMotionFrames` times. */
export function firstMotionFrames(image: ImageConditioning, count: number): Float32Array[] {
  return Array.from({ length: count }, () => image.pixels.data);
}

/** The audio tokens of clip `t`: its frames of the audio windows through AudioProjModel, (1, F, tokens, dim). */
export function clipAudioTokens(
  audioProj: AudioProjModel,
  audio: AudioWindows,
  t: number,
  frames: number,
): Promise<F32Tensor> {
  return projectAudio(audioProj, sliceFrames(audio.windows, t * frames, frames));
}

/**
 * What clip `t` is conditioned on, as inference.py builds it: `[pixels, M1, M2]` where the motion frames are
 * the reference image itself for clip 0 and, later, the previous clip's last decoded frames (float in
 * [0, 1], mapped to [-1, 1]); the clip's audio windows through AudioProjModel; the masks repeated per frame.
 */
export async function clipInputs(
  m: HalloModels,
  image: ImageConditioning,
  audio: AudioWindows,
  t: number,
  motion: readonly Float32Array[] = firstMotionFrames(image, m.configs.nMotionFrames ?? 2),
  masks: ClipMasks = clipMasks(image, m.geometry.frames),
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
    audioTokens: await clipAudioTokens(m.audioProj, audio, t, F),
    faceRegion: f32([1, 3, H, W], image.faceRegion.data),
    masks,
  };
}

/**
 * The cross-attention context: the face embedding through ImageProjModel, and with guidance
 * `[proj(zeros), proj(emb)]` (upstream's `uncond_encoder_hidden_states` first).
 */
export async function guidanceContext(
  imageProj: ImageProjModel,
  faceEmb: F32Tensor,
  guidance: boolean,
): Promise<F32Tensor> {
  const cond = await projectFaceEmbedding(imageProj, faceEmb);
  if (!guidance) return cond;
  const uncond = await projectFaceEmbedding(imageProj, f32(faceEmb.shape));
  return f32([2, ...cond.shape.slice(1)], new Float32Array([...uncond.data, ...cond.data]));
}

/** The reference UNet's input: `[ref, m1, ..]` through the VAE (scaled), repeated once per guidance copy. */
export async function referenceLatents(
  vae: VaeModel,
  refImages: F32Tensor,
  guidance: boolean,
): Promise<F32Tensor> {
  const once = await encodeImages(vae, vaePreprocess(refImages));
  return guidance ? doubled(once) : once;
}

/** The face locator's features of the face region over `frames` frames; zeros first when guiding. */
export async function faceFeatures(
  faceLocator: FaceLocatorModel,
  faceRegion: F32Tensor,
  frames: number,
  guidance: boolean,
): Promise<F32Tensor> {
  const fea = await locateFace(faceLocator, faceRegion, { frames });
  return guidance ? doubled(fea, true) : fea;
}

/**
 * Runs the small networks of one clip (image proj, VAE encoder, face locator) and batches for guidance.
 *
 * @example
 * ```ts ignore
 * const c = await conditionClip(models, await clipInputs(models, image, audio, 0));
 * console.log(c.context.shape, c.refLatents.shape, c.faceFeatures.shape, c.masks.lip.map((t) => t.shape));
 * ```
 */
export async function conditionClip(m: HalloModels, x: ClipInputs): Promise<ClipConditioning> {
  const guidance = m.geometry.guidance;
  const frames = x.audioTokens.shape[1];
  const batch = (t: F32Tensor) => guidance ? doubled(t) : t;
  return {
    guidance,
    frames,
    context: await guidanceContext(m.imageProj, x.faceEmb, guidance),
    refLatents: await referenceLatents(m.vae, x.refImages, guidance),
    faceFeatures: await faceFeatures(m.faceLocator, x.faceRegion, frames, guidance),
    audioTokens: guidance ? doubled(x.audioTokens, true) : x.audioTokens,
    masks: { full: x.masks.full.map(batch), face: x.masks.face.map(batch), lip: x.masks.lip.map(batch) },
  };
}
