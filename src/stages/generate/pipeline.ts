/**
 * One clip, as upstream's `FaceAnimatePipeline.__call__` computes it (spec 6.2): image-proj context,
 * reference latents through the VAE, face-locator features, masks and audio doubled for guidance, the
 * reference UNet once at step 0 (timestep 0), then DDIM over the denoising UNet, then per-frame decode.
 */
import { ddimSampler, type Denoiser, type SamplerStep } from "../../sampling/sampler.ts";
import { type DdimSchedule, makeDdimSchedule } from "../../sampling/ddim.ts";
import type { TorchCpuGenerator } from "../../sampling/noise.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import { decodeLatents, encodeImages } from "../networks/vae.ts";
import { projectFaceEmbedding } from "../networks/projections.ts";
import { locateFace } from "../networks/face_locator.ts";
import { type Bank, predictNoise, runReferenceUNet } from "../networks/unets.ts";
import type { HalloModels } from "./models.ts";
import type { BankCache } from "./bank_cache.ts";
import { GenerationError } from "./errors.ts";

/** What one clip is conditioned on. */
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
  masks: { full: F32Tensor[]; face: F32Tensor[]; lip: F32Tensor[] };
}

export interface ClipOptions {
  steps: number;
  /** Guidance scale; must match the models' geometry (guidance on iff cfg > 1). */
  cfg: number;
  /** [pose, face, lip]. */
  motionScale: readonly [number, number, number];
  /** Initial latents (1, 4, F, h, w); otherwise drawn from `generator` in float16 as upstream. */
  initialLatents?: F32Tensor;
  generator?: TorchCpuGenerator;
  schedule?: DdimSchedule;
  /**
   * Reuse the reference UNet's bank when the reference latents and context were seen before (sweeps:
   * clip 0 is identical across settings of one guidance mode). Default: off, the UNet runs every clip.
   */
  bankCache?: BankCache;
}

/** What `denoiseClip` hands back after the last step. */
export interface ClipLatents {
  latents: F32Tensor;
  initialLatents: F32Tensor;
  /** The reference UNet input (ref latents repeated per guidance copy), and the bank as the reader saw it. */
  refLatents: F32Tensor;
  bank: Bank;
  /** True when the bank came from `bankCache` (the reference UNet did not run). */
  bankCached: boolean;
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

/**
 * Steps of one clip: yields every DDIM step, returns the final latents. Guidance runs the UNets on
 * the [uncond, cond] batch; without it only the conditional branch runs (upstream crashes there).
 */
export async function* denoiseClip(
  m: HalloModels,
  x: ClipInputs,
  o: ClipOptions,
): AsyncGenerator<SamplerStep, ClipLatents> {
  const guidance = m.geometry.guidance;
  if (guidance !== o.cfg > 1) {
    throw new GenerationError(
      `models were loaded with guidance ${guidance ? "on" : "off"} but cfg is ${o.cfg}`,
    );
  }
  const F = x.audioTokens.shape[1];
  const [h, w] = [m.geometry.height, m.geometry.width];
  const schedule = o.schedule ?? makeDdimSchedule();

  const cond = await projectFaceEmbedding(m.imageProj, x.faceEmb);
  let context = cond;
  if (guidance) {
    const uncond = await projectFaceEmbedding(m.imageProj, f32(x.faceEmb.shape));
    context = f32([2, ...cond.shape.slice(1)], new Float32Array([...uncond.data, ...cond.data]));
  }
  const refOnce = await encodeImages(m.vae, vaePreprocess(x.refImages));
  const refLatents = guidance ? doubled(refOnce) : refOnce;
  const faceFea = await locateFace(m.faceLocator, x.faceRegion, { frames: F });
  const maskCondFea = guidance ? doubled(faceFea, true) : faceFea;
  const masks = {
    full: x.masks.full.map((t) => guidance ? doubled(t) : t),
    face: x.masks.face.map((t) => guidance ? doubled(t) : t),
    lip: x.masks.lip.map((t) => guidance ? doubled(t) : t),
  };
  const audio = guidance ? doubled(x.audioTokens, true) : x.audioTokens;
  const latentShape = [1, 4, F, h, w];
  let init = o.initialLatents;
  if (!init) {
    if (!o.generator) throw new GenerationError("denoiseClip needs initialLatents or a generator");
    init = f32(latentShape, o.generator.randn(latentShape, "float16").values);
  }

  const ref = o.bankCache
    ? await o.bankCache.run(m.referenceUNet, refLatents, context, 0)
    : { ...await runReferenceUNet(m.referenceUNet, refLatents, context, 0), cached: false };
  const denoise: Denoiser = async (lat, t) => {
    const sample = guidance ? doubled(f32(latentShape, lat)) : f32(latentShape, lat);
    const { noisePred, probes } = await predictNoise(m.denoisingUNet, {
      sample,
      timestep: t,
      encoderHiddenStates: context,
      audioEmbedding: audio,
      maskCondFea,
      fullMask: masks.full,
      faceMask: masks.face,
      lipMask: masks.lip,
      motionScale: o.motionScale,
      bank: ref.readerBank,
    });
    if (!guidance) return { cond: noisePred.data, probes };
    const half = noisePred.data.length / 2;
    return { uncond: noisePred.data.subarray(0, half), cond: noisePred.data.subarray(half), probes };
  };
  const it = ddimSampler(denoise, init.data, { schedule, steps: o.steps, cfg: o.cfg });
  let r = await it.next();
  while (!r.done) {
    yield r.value;
    r = await it.next();
  }
  return {
    latents: f32(latentShape, r.value),
    initialLatents: init,
    refLatents,
    bank: ref.readerBank,
    bankCached: ref.cached,
  };
}

/** The whole clip: every step, then the per-frame decode -> video (1, 3, F, H, W) in [0, 1]. */
export async function runClip(
  m: HalloModels,
  x: ClipInputs,
  o: ClipOptions & { onStep?: (s: SamplerStep) => void },
): Promise<{ video: F32Tensor; latents: ClipLatents }> {
  const it = denoiseClip(m, x, o);
  let r = await it.next();
  while (!r.done) {
    o.onStep?.(r.value);
    r = await it.next();
  }
  const video = await decodeLatents(m.vae, r.value.latents);
  return { video, latents: r.value };
}
