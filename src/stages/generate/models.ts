/**
 * Every network one clip needs, loaded once from a `pretrained_models/` folder and reused across clips.
 * Sizes that upstream hard-codes in inference.py (projection and face-locator configs, the UNet kwargs)
 * can be overridden, which is how the tiny reference models load; a folder with a `tiny.json` (the tiny
 * random set) supplies them itself.
 */
import { join } from "node:path";
import type { HalloConfigs } from "../../models/hallo_configs.ts";
import type { Device } from "../../runtime/device.ts";
import { resolveNetCheckpoint } from "../../weights/locate.ts";
import { WeightStore } from "../../weights/store.ts";
import { readTinyConfigs } from "../../tiny/configs.ts";
import { type FaceLocatorModel, loadFaceLocator } from "../networks/face_locator.ts";
import {
  type AudioProjModel,
  type ImageProjModel,
  loadAudioProj,
  loadImageProj,
} from "../networks/projections.ts";
import {
  type DenoisingUNet,
  loadDenoisingUNet,
  loadReferenceUNet,
  type Probes,
  type ReferenceUNet,
} from "../networks/unets.ts";
import { loadVae, type VaeModel } from "../networks/vae.ts";
import { GenerationError } from "./errors.ts";

/** How the networks are loaded: the clip geometry they are built for, where they run, their precision. */
export interface ModelOptions {
  /** Video size in pixels (square, a multiple of 64; upstream: 512); the latents are size / 8. */
  size?: number;
  /** Frames per clip (upstream's `n_sample_frames`: 16). */
  frames?: number;
  /**
   * Classifier-free guidance (cfg > 1, the default): the UNets run the [uncond, cond] batch. Without it they
   * run the conditional branch alone (cfg <= 1).
   */
  guidance?: boolean;
  /**
   * How the denoising UNet runs guidance's [uncond, cond] batch: `"joint"` (default, upstream's one batch-2
   * call) or `"halves"` (a batch-1 graph called once per half: the same numbers up to float rounding, about
   * half the activation memory; `estimateCost` picks it when joint does not fit). No effect without guidance.
   */
  cfgBatch?: CfgBatch;
  device?: Device;
  threads?: number;
  /**
   * Weights read in place from the (cached, optimised) data file instead of pre-packed copies (default: in place
   * for the large networks, see `SessionOptions.mmapWeights`). At Hallo's sizes every MatMul has thousands of
   * rows, so packing on the fly costs little, while pre-packed copies double the weights in memory and make a
   * warm load seconds instead of a fraction of one.
   */
  mmapWeights?: boolean;
  dtype?: "float32" | "float16";
  /** On a GPU device, a compute node placed on the CPU fails the load (default: a warning naming it). */
  strictDevice?: boolean;
  configs?: HalloConfigs;
  /** Denoising-UNet probes (attention probabilities, module outputs), part of its compile key. */
  probes?: Probes;
}

/** How the denoising UNet runs the CFG batch: one batch-2 call, or one batch-1 call per half. */
export type CfgBatch = "joint" | "halves";

/** Geometry of a clip: frames per clip and the latent size (image size / 8). */
export interface ClipGeometry {
  frames: number;
  height: number;
  width: number;
  /** Classifier-free guidance on: UNets run the [uncond, cond] batch. */
  guidance: boolean;
  /** How the denoising UNet runs that batch (always "joint" without guidance). */
  cfgBatch: CfgBatch;
}

/** The loaded networks of one clip geometry, reused across clips and videos. */
export interface HalloModels {
  weightsDir: string;
  geometry: ClipGeometry;
  configs: HalloConfigs;
  vae: VaeModel;
  imageProj: ImageProjModel;
  audioProj: AudioProjModel;
  faceLocator: FaceLocatorModel;
  referenceUNet: ReferenceUNet;
  denoisingUNet: DenoisingUNet;
  /** Seconds spent building graphs and creating sessions, per network. */
  timings: Record<string, { build_s: number; session_s: number }>;
  release(): Promise<void>;
}

/** The clip geometry of `o`: upstream's 16 frames of 512x512 pixels, with guidance, unless told otherwise. */
export function clipGeometry(
  o: Pick<ModelOptions, "size" | "frames" | "guidance" | "cfgBatch"> = {},
): ClipGeometry {
  const size = o.size ?? 512;
  const frames = o.frames ?? 16;
  if (!Number.isInteger(size) || size <= 0 || size % 64 !== 0) {
    throw new GenerationError(`size ${size} is not a positive multiple of 64`);
  }
  if (!Number.isInteger(frames) || frames <= 0) {
    throw new GenerationError(`frames ${frames} is not a positive integer`);
  }
  const cfgBatch = o.cfgBatch ?? "joint";
  if (cfgBatch !== "joint" && cfgBatch !== "halves") {
    throw new GenerationError(`cfgBatch ${cfgBatch} is neither "joint" nor "halves"`);
  }
  const guidance = o.guidance ?? true;
  return { frames, height: size / 8, width: size / 8, guidance, cfgBatch: guidance ? cfgBatch : "joint" };
}

/**
 * Loads every generation network from a `pretrained_models/` folder (the one loader; a tiny random set supplies
 * its own sizes through its tiny.json).
 *
 * @example
 * ```ts ignore
 * const models = await loadHalloModels("weights/pretrained_models", { size: 512, guidance: true });
 * try {
 *   console.log(models.geometry); // { frames: 16, height: 64, width: 64, guidance: true }
 * } finally {
 *   await models.release();
 * }
 * ```
 */
export async function loadHalloModels(weightsDir: string, o: ModelOptions = {}): Promise<HalloModels> {
  const geometry = clipGeometry(o);
  // A tiny random set records the sizes upstream hard-codes; real weights have no tiny.json.
  const cfgs = o.configs ?? readTinyConfigs(weightsDir) ?? {};
  // Every network but wav2vec2 (fp32 upstream too) in the requested precision.
  const session = {
    device: o.device,
    threads: o.threads,
    mmapWeights: o.mmapWeights,
    dtype: o.dtype,
    strictDevice: o.strictDevice,
  };
  const net = WeightStore.open(resolveNetCheckpoint(weightsDir));
  const vae = await loadVae(join(weightsDir, "sd-vae-ft-mse"), session);
  const imageProj = await loadImageProj(net, { ...session, config: cfgs.imageProj });
  const audioProj = await loadAudioProj(net, { ...session, config: cfgs.audioProj });
  const faceLocator = await loadFaceLocator(net, { ...session, config: cfgs.faceLocator });
  const b = geometry.guidance ? 2 : 1;
  const M = cfgs.nMotionFrames ?? 2;
  const src = { weightsDir, kwargs: cfgs.unetKwargs };
  const tokens = imageProj.config.clip_extra_context_tokens;
  const referenceUNet = await loadReferenceUNet(src, {
    batch: b * (1 + M),
    contextBatch: b,
    contextTokens: tokens,
    height: geometry.height,
    width: geometry.width,
  }, session);
  const halves = geometry.cfgBatch === "halves";
  const denoisingUNet = await loadDenoisingUNet(src, {
    batch: halves ? 1 : b,
    frames: geometry.frames,
    height: geometry.height,
    width: geometry.width,
    contextTokens: tokens,
    audioTokens: audioProj.config.context_tokens,
    motionFrames: M,
    ...(halves ? { cfgHalves: true } : {}),
    // Halves is the memory-bounded form, and the halves graph's key length is known only at run time: ORT's
    // arena then keeps its power-of-two growth (a 512x512 step peaked at 19.0 GiB with it, 13.0 GiB without).
  }, { ...session, probes: o.probes, ...(halves ? { cpuArena: false } : {}) });
  const t = (x: { timings: { build_s: number; session_s: number } }) => ({
    build_s: x.timings.build_s,
    session_s: x.timings.session_s,
  });
  return {
    weightsDir,
    geometry,
    configs: { ...cfgs, nMotionFrames: M },
    vae,
    imageProj,
    audioProj,
    faceLocator,
    referenceUNet,
    denoisingUNet,
    timings: {
      vae: t(vae),
      image_proj: t(imageProj),
      audio_proj: t(audioProj),
      face_locator: t(faceLocator),
      reference_unet: t(referenceUNet),
      denoising_unet: t(denoisingUNet),
    },
    async release() {
      await vae.release();
      await imageProj.release();
      await audioProj.release();
      await faceLocator.release();
      await referenceUNet.session.release();
      await denoisingUNet.session.release();
    },
  };
}
