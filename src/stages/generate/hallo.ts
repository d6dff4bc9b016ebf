/**
 * The front door: one object holding the loaded networks, with a method per stage, in the spirit of diffusers'
 * pipeline objects. Every method is a thin call of a stage function that stays callable alone (`prepareImage`,
 * `prepareAudio`, `clipInputs`, `conditionClip`, `referenceBank`, `initialNoise`, `denoise`, `decodeLatents`,
 * `renderVideo`), so a notebook can start here and step down to any stage.
 */
import { manualSeed } from "../../sampling/noise.ts";
import type { SamplerStep } from "../../sampling/sampler.ts";
import type { F32Tensor } from "../../tensor.ts";
import { readTinyConfigs } from "../../tiny/configs.ts";
import { prepareAudio, type PrepareAudioOptions, type PreparedAudio } from "../audio/prepare.ts";
import { type PreparedImage, prepareImage, type PrepareImageOptions } from "../image/prepare.ts";
import { decodeLatents } from "../networks/vae.ts";
import { videoFrame } from "../video/frames.ts";
import type { BankCache } from "./bank_cache.ts";
import {
  type ClipConditioning,
  type ClipInputs,
  clipInputs,
  clipMasks,
  conditionClip,
  firstMotionFrames,
} from "./conditioning.ts";
import { GenerationError } from "./errors.ts";
import { type HalloModels, loadHalloModels, type ModelOptions } from "./models.ts";
import { initialNoise, latentShape } from "./noise.ts";
import { denoise, type DenoiseOptions, type ReferenceBank, referenceBank } from "./pipeline.ts";
import {
  DEFAULT_SETTINGS,
  type PreparedInputs,
  prepareInputs,
  type PrepareOptions,
  type RenderOptions,
  type RenderResult,
  type RenderSettings,
  renderVideo,
} from "./run.ts";

/** How `Hallo.load` loads the networks and how the object prepares inputs. */
export interface HalloOptions extends ModelOptions {
  /** Upstream's no-face path when the insightface files are missing (default: only for a tiny random set). */
  allowMissingFaceModels?: boolean;
  /** Where intermediate files go (vocals). */
  cacheDir?: string;
}

/** One clip's conditioning, with the inputs it was built from. */
export interface HalloClip extends ClipConditioning {
  /** Clip index in the video. */
  index: number;
  inputs: ClipInputs;
}

/** How `Hallo.denoise` samples a clip: the settings, and where the noise and the bank come from. */
export interface HalloDenoiseOptions extends Partial<DenoiseOptions> {
  /** Seed of the video's noise (default 42): the clip's initial noise is the one `animate` draws for it. */
  seed?: number;
  /** Initial latents instead of the seeded noise. */
  initialLatents?: F32Tensor;
  /** The clip's bank, when already computed (`Hallo.bank`); otherwise the reference UNet runs. */
  bank?: ReferenceBank;
}

/** What `Hallo.animate` does beside the settings: outputs, resume, progress. */
export interface HalloAnimateOptions extends Partial<RenderSettings>, RenderOptions {
  /** Upstream's face_expand_ratio (default 1.2). */
  faceExpandRatio?: number;
  /** Separate the vocals first (default true). */
  separate?: boolean;
  /** Inputs prepared earlier (`Hallo.prepare`): the image and audio are not prepared again. */
  prepared?: PreparedInputs;
}

/** A finished (or stopped) video, with the prepared inputs it came from. */
export interface HalloAnimateResult extends RenderResult {
  prepared: PreparedInputs;
}

/**
 * Hallo with its networks loaded for one clip geometry (size, frames, guidance).
 *
 * @example
 * ```ts ignore
 * const hallo = await Hallo.load("weights/pretrained_models", { size: 512 });
 * try {
 *   const res = await hallo.animate("face.jpg", "speech.wav", { out: "out.mp4", steps: 40, cfg: 3.5 });
 *   console.log(res.out, res.frames);
 * } finally {
 *   await hallo.release();
 * }
 * ```
 */
export class Hallo {
  /** The image and audio prepared last (`prepareImage`, `prepareAudio`, `prepare`): what `clip(i)` reads. */
  image?: PreparedImage;
  audio?: PreparedAudio;

  private constructor(
    /** The `pretrained_models/` folder. */
    readonly weightsDir: string,
    /** The loaded networks (every stage function takes them). */
    readonly models: HalloModels,
    /** Whether the weights are a tiny random set (everything they make is noise). */
    readonly tiny: boolean,
    private readonly o: HalloOptions,
  ) {}

  /** Loads every generation network from `weightsDir` (see `loadHalloModels`). */
  static async load(weightsDir: string, o: HalloOptions = {}): Promise<Hallo> {
    const tiny = readTinyConfigs(weightsDir) !== undefined;
    return new Hallo(weightsDir, await loadHalloModels(weightsDir, o), tiny, o);
  }

  /** Video size in pixels. */
  get size(): number {
    return this.models.geometry.height * 8;
  }

  private get prepareDefaults(): PrepareOptions {
    return {
      weightsDir: this.weightsDir,
      size: this.size,
      device: this.o.device,
      threads: this.o.threads,
      allowMissingFaceModels: this.o.allowMissingFaceModels ?? this.tiny,
      cacheDir: this.o.cacheDir,
      clipLength: this.models.geometry.frames,
    };
  }

  /** The image stage (landmarks, masks, face embedding) at this object's size; kept for `clip(i)`. */
  async prepareImage(path: string, o: PrepareImageOptions = {}): Promise<PreparedImage> {
    this.image = await prepareImage(path, { ...this.prepareDefaults, ...o });
    return this.image;
  }

  /** The audio stage (vocals, wav2vec2 features, windows); kept for `clip(i)`. */
  async prepareAudio(path: string, o: PrepareAudioOptions = {}): Promise<PreparedAudio> {
    this.audio = await prepareAudio(path, { ...this.prepareDefaults, ...o });
    return this.audio;
  }

  /** Both inputs, with their file hashes and timings, as `animate` records them; kept for `clip(i)`. */
  async prepare(
    image: string,
    audio: string,
    o: Partial<PrepareOptions> = {},
  ): Promise<PreparedInputs> {
    const p = await prepareInputs(image, audio, { ...this.prepareDefaults, ...o });
    this.image = p.image;
    this.audio = p.audio;
    return p;
  }

  /** Clips of the prepared audio. */
  get clips(): number {
    if (!this.audio) throw new GenerationError("no audio prepared yet: call prepareAudio or prepare first");
    return Math.ceil(this.audio.windows.shape[0] / this.models.geometry.frames);
  }

  /**
   * Clip `index`'s conditioning from the prepared image and audio: its inputs (masks repeated per frame, audio
   * tokens, `[ref, motion frames]`), then the guidance context, reference latents and face features. Clip 0's
   * motion frames are the reference image; a later clip's are the last frames of the previous clip's decoded
   * video (`previous`, (1, 3, F, H, W) in [0, 1]), as `animate` takes them.
   */
  async clip(index: number, previous?: F32Tensor): Promise<HalloClip> {
    const { image, audio } = this;
    if (!image || !audio) {
      throw new GenerationError(
        "no image and audio prepared yet: call prepare (or prepareImage and prepareAudio)",
      );
    }
    if (!Number.isInteger(index) || index < 0 || index >= this.clips) {
      throw new GenerationError(`clip ${index} out of range (the audio makes ${this.clips} clips)`);
    }
    const m = this.models;
    const M = m.configs.nMotionFrames ?? 2;
    let motion = firstMotionFrames(image, M);
    if (index > 0) {
      if (!previous) {
        throw new GenerationError(
          `clip ${index} needs the previous clip's decoded video: its last ${M} frames are the motion frames`,
        );
      }
      const F = previous.shape[2];
      motion = Array.from({ length: M }, (_, k) => videoFrame(previous, F - M + k));
    }
    const inputs = await clipInputs(m, image, audio, index, motion, clipMasks(image, m.geometry.frames));
    return { index, inputs, ...await conditionClip(m, inputs) };
  }

  /** The attention bank of a clip: the reference UNet once at timestep 0 (or from `cache`). */
  bank(clip: Pick<ClipConditioning, "refLatents" | "context">, cache?: BankCache): Promise<ReferenceBank> {
    return referenceBank(this.models, clip, cache);
  }

  /** Clip `index`'s initial latents for `seed`: the noise `animate` draws for that clip. */
  noise(index: number, seed: number): F32Tensor {
    const generator = manualSeed(seed);
    const shape = latentShape(this.models);
    for (let i = 0; i < index; i++) initialNoise(generator, shape);
    return initialNoise(generator, shape);
  }

  /**
   * The DDIM steps of a clip (an async iterator; each step carries latents, uncond/cond/guided predictions,
   * predicted x0 and the UNet's probes, all shaped (1, 4, F, h, w)); returns the final latents.
   */
  async *denoise(clip: HalloClip, o: HalloDenoiseOptions = {}): AsyncGenerator<SamplerStep, F32Tensor> {
    const bank = o.bank ?? await this.bank(clip);
    const initial = o.initialLatents ?? this.noise(clip.index, o.seed ?? DEFAULT_SETTINGS.seed);
    return yield* denoise(this.models, clip, bank.bank, initial, {
      steps: o.steps ?? DEFAULT_SETTINGS.steps,
      cfg: o.cfg ?? (clip.guidance ? DEFAULT_SETTINGS.cfg : 1),
      motionScale: o.motionScale ?? [1, 1, 1],
      schedule: o.schedule,
    });
  }

  /** Latents (1, 4, F, h, w) to the clip's frames (1, 3, F, H, W) in [0, 1], one frame at a time. */
  decode(latents: F32Tensor): Promise<F32Tensor> {
    return decodeLatents(this.models.vae, latents);
  }

  /**
   * A whole video: prepares the image and audio (unless `o.prepared`), generates every clip into the run
   * directory (`o.runDir`, default `<out>.run`), writes the mp4 with the original audio.
   */
  async animate(image: string, audio: string, o: HalloAnimateOptions): Promise<HalloAnimateResult> {
    const settings: RenderSettings = {
      steps: o.steps ?? DEFAULT_SETTINGS.steps,
      cfg: o.cfg ?? (this.models.geometry.guidance ? DEFAULT_SETTINGS.cfg : 1),
      poseWeight: o.poseWeight ?? DEFAULT_SETTINGS.poseWeight,
      faceWeight: o.faceWeight ?? DEFAULT_SETTINGS.faceWeight,
      lipWeight: o.lipWeight ?? DEFAULT_SETTINGS.lipWeight,
      seed: o.seed ?? DEFAULT_SETTINGS.seed,
    };
    let prepared = o.prepared;
    if (!prepared) {
      o.onEvent?.({ kind: "phase", message: `preparing ${image} and ${audio} ...`, ...o.place });
      prepared = await this.prepare(image, audio, {
        faceExpandRatio: o.faceExpandRatio,
        separate: o.separate,
      });
      o.onEvent?.({ kind: "prepared", warnings: prepared.warnings, timings: prepared.timings, ...o.place });
    }
    const res = await renderVideo(this.models, prepared, settings, o);
    return { ...res, prepared };
  }

  /** Releases every session. */
  release(): Promise<void> {
    return this.models.release();
  }
}
