/**
 * The front door: one object holding the loaded networks, with a method per stage, in the spirit of diffusers'
 * pipeline objects. Every method is a thin call of a stage function that stays callable alone (`prepareImage`,
 * `prepareAudio`, `clipInputs`, `conditionClip`, `referenceBank`, `initialNoise`, `denoise`, `decodeLatents`,
 * `renderVideo`), so a notebook can start here and step down to any stage.
 */
import { manualSeed } from "../../sampling/noise.ts";
import type { SamplerStep } from "../../sampling/sampler.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import { readTinyConfigs } from "../../tiny/configs.ts";
import { prepareAudio, type PrepareAudioOptions, type PreparedAudio } from "../audio/prepare.ts";
import { type PreparedImage, prepareImage, type PrepareImageOptions } from "../image/prepare.ts";
import type { ActivationCache } from "../inspect/cache.ts";
import {
  type Intervention,
  type InterventionSources,
  type PlannedIntervention,
  sourceNeeded,
} from "../inspect/interventions.ts";
import { type Occlusion, occlusionAttribution } from "../inspect/occlusion.ts";
import { projectFaceEmbedding } from "../networks/projections.ts";
import { decodeLatents } from "../networks/vae.ts";
import { videoFrame } from "../video/frames.ts";
import type { BankCache } from "./bank_cache.ts";
import { IDENTITY_SITES, identityProbes } from "./clip_measures.ts";
import { type ClipComparison, compareVariants } from "./compare.ts";
import {
  clipAudioTokens,
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
import { type ReplayOptions, type ReplayResult, replayStep } from "./replay.ts";
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
  /**
   * Load the denoising UNet with the identity measure's probes (`identityProbes()`, beside any `probes`), and
   * record the bank share at `IDENTITY_SITES` in every video `animate` makes (default off: a probed graph).
   */
  measureIdentity?: boolean;
}

/** One clip's conditioning, with the inputs it was built from. */
export interface HalloClip extends ClipConditioning {
  /** Clip index in the video. */
  index: number;
  inputs: ClipInputs;
}

/** How `Hallo.denoise` samples a clip: the settings, and where the noise and the bank come from. */
export interface HalloDenoiseOptions extends Omit<Partial<DenoiseOptions>, "interventions"> {
  /** Seed of the video's noise (default 42): the clip's initial noise is the one `animate` draws for it. */
  seed?: number;
  /** Initial latents instead of the seeded noise. */
  initialLatents?: F32Tensor;
  /** The clip's bank, when already computed (`Hallo.bank`); otherwise the reference UNet runs. */
  bank?: ReferenceBank;
  /** Records the UNet's probes (those it declares; ask for them at load with `probes`) at every step. */
  cache?: ActivationCache;
  /**
   * Changes to what the UNet sees at their steps: an intervention alone has its `clip`/`image` source
   * resolved here (`Hallo.sources`); one with `sources` is taken as given.
   */
  interventions?: readonly (Intervention | PlannedIntervention)[];
}

/** What `Hallo.animate` does beside the settings: outputs, resume, progress. */
export interface HalloAnimateOptions extends Partial<RenderSettings>, RenderOptions {
  /** Upstream's face_expand_ratio (default 1.2). */
  faceExpandRatio?: number;
  /** Separate the vocals first (default true). */
  separate?: boolean;
  /** Inputs prepared earlier (`Hallo.prepare`): the image and audio are not prepared again. */
  prepared?: PreparedInputs;
  /**
   * An activation cache per clip (e.g. `clipActivationCache(runDir, clip, ...)`: spilled into the run dir);
   * it records every step of that clip. Called once per clip computed.
   */
  cache?: (clip: number, runDir: string) => ActivationCache;
  /** Interventions for every clip (sources resolved per clip, `Hallo.sources`); recorded in run.json. */
  interventions?: readonly Intervention[];
  /** Make the run replayable: each clip's conditioning and per-step latents go into the run dir. */
  recordSteps?: boolean;
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
    const probes = o.measureIdentity
      ? { ...o.probes, attention: { ...identityProbes(), ...o.probes?.attention } }
      : o.probes;
    return new Hallo(weightsDir, await loadHalloModels(weightsDir, { ...o, probes }), tiny, o);
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
      start: o.start,
      stop: o.stop,
      cache: o.cache,
      interventions: await this.plan(o.interventions ?? []),
    });
  }

  /**
   * The tensor an intervention's `clip` or `image` names, as the UNet's cond half takes it: another clip's
   * audio tokens (1, F, tokens, dim) of the prepared audio; another image's face embedding (its image-proj
   * tokens, (1, tokens, dim)) or reference bank (the reference UNet on that image). `motion-frames-clip` needs
   * another clip's generated frames: pass its bank yourself (`{ intervention, sources: { bank } }`).
   */
  async sources(iv: Intervention): Promise<InterventionSources> {
    const m = this.models;
    switch (iv.kind) {
      case "audio-clip": {
        if (!this.audio) throw new GenerationError(`intervention audio-clip: no audio prepared yet`);
        if (!Number.isInteger(iv.clip) || iv.clip < 0 || iv.clip >= this.clips) {
          throw new GenerationError(
            `intervention audio-clip: clip ${iv.clip} out of range (${this.clips} clips)`,
          );
        }
        return { audio: await clipAudioTokens(m.audioProj, this.audio, iv.clip, m.geometry.frames) };
      }
      case "face-embedding-image": {
        const img = await prepareImage(iv.image, this.prepareDefaults);
        return { faceEmbedding: await projectFaceEmbedding(m.imageProj, img.faceEmb) };
      }
      case "bank-image": {
        if (!this.audio) throw new GenerationError(`intervention bank-image: no audio prepared yet`);
        const img = await prepareImage(iv.image, this.prepareDefaults);
        const c = await conditionClip(m, await clipInputs(m, img, this.audio, 0));
        return { bank: (await referenceBank(m, c)).bank };
      }
      case "motion-frames-clip":
        throw new GenerationError(
          `intervention motion-frames-clip: clip ${iv.clip}'s motion frames come from generated video; ` +
            `pass its bank as { intervention, sources: { bank } } (hallo.bank(await hallo.clip(${iv.clip}, video)))`,
        );
      default:
        if (sourceNeeded(iv)) {
          throw new GenerationError(`intervention ${iv.kind}: no resolver for its source`);
        }
        return {};
    }
  }

  /** Interventions with their sources resolved (those given with `sources` are kept as they are). */
  async plan(list: readonly (Intervention | PlannedIntervention)[]): Promise<PlannedIntervention[]> {
    const out: PlannedIntervention[] = [];
    for (const e of list) {
      out.push("intervention" in e ? e : { intervention: e, sources: await this.sources(e) });
    }
    return out;
  }

  /**
   * Two variants of one clip (e.g. without and with an intervention) from the same noise and the same bank:
   * both clips' latents and frames, and where they differ (per frame, overall and inside the full, face and
   * lip masks on the latent grid).
   *
   * @example
   * ```ts ignore
   * const clip = await hallo.clip(0);
   * const d = await hallo.compare(clip, { steps: 40 }, { steps: 40, interventions: [{ kind: "audio-silence" }] });
   * console.log(d.regions.lip); // mean |a - b| of the latents inside the lip mask, per frame
   * ```
   */
  async compare(clip: HalloClip, a: HalloDenoiseOptions, b: HalloDenoiseOptions): Promise<ClipComparison> {
    const bank = a.bank ?? b.bank ?? await this.bank(clip);
    const run = async (o: HalloDenoiseOptions) => {
      const it = this.denoise(clip, { bank, ...o });
      let r = await it.next();
      while (!r.done) r = await it.next();
      return { latents: r.value, video: await this.decode(r.value) };
    };
    return compareVariants(clip.inputs.masks, await run(a), await run(b));
  }

  /**
   * Causal lip sync by occlusion: silences each audio window of the clip in turn (all, or `o.windows`), runs the
   * clip again from the same noise and bank, and measures per frame how much the final latents change inside
   * the region's mask (`o.region`, default the lip; level 0 of the pyramid, the latent grid).
   *
   * @example
   * ```ts ignore
   * const occ = await hallo.occlusion(await hallo.clip(0), { steps: 40, windows: [0, 8] });
   * console.log(occ.change.data); // (windows, F): row k = silencing window k
   * ```
   */
  async occlusion(
    clip: HalloClip,
    o: HalloDenoiseOptions & { windows?: readonly number[]; region?: "full" | "face" | "lip" } = {},
  ): Promise<Occlusion> {
    const bank = o.bank ?? await this.bank(clip);
    const { windows, region, ...denoiseOptions } = o;
    const t = clip.audioTokens;
    const per = t.data.length / t.shape[0];
    const cond = f32([1, ...t.shape.slice(1)], t.data.slice(t.data.length - per));
    const run = async (audio: F32Tensor): Promise<F32Tensor> => {
      const it = this.denoise(clip, {
        ...denoiseOptions,
        bank,
        interventions: [
          ...denoiseOptions.interventions ?? [],
          { intervention: { kind: "audio-clip", clip: clip.index }, sources: { audio } },
        ],
      });
      let r = await it.next();
      while (!r.done) r = await it.next();
      return r.value;
    };
    const { height: h, width: w } = this.models.geometry;
    const mask = clip.inputs.masks[region ?? "lip"][0].data.subarray(0, h * w);
    return await occlusionAttribution(run, cond, { axis: 1, mouth: mask, windows });
  }

  /**
   * Step `step` of clip `clip` of a run recorded with `recordSteps` (its run dir), run again with these
   * networks, optionally with a cache and interventions, and measured against the recording (see replay.ts).
   */
  async replay(
    runDir: string,
    clip: number,
    step: number,
    o: ReplayOptions = {},
  ): Promise<ReplayResult> {
    return await replayStep(this.models, runDir, clip, step, { ...o, dtype: this.o.dtype });
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
    if (prepared) {
      this.image = prepared.image;
      this.audio = prepared.audio;
    } else {
      o.onEvent?.({ kind: "phase", message: `preparing ${image} and ${audio} ...`, ...o.place });
      prepared = await this.prepare(image, audio, {
        faceExpandRatio: o.faceExpandRatio,
        separate: o.separate,
      });
      o.onEvent?.({ kind: "prepared", warnings: prepared.warnings, timings: prepared.timings, ...o.place });
    }
    const interventions = o.interventions ?? [];
    const inspecting = o.cache || interventions.length;
    const res = await renderVideo(this.models, prepared, settings, {
      ...o,
      // the run's identity names the precision the networks were loaded with, whatever `o` says
      dtype: this.o.dtype ?? "float32",
      record: {
        weightsDir: this.weightsDir,
        ...o.record,
        ...(interventions.length ? { interventions } : {}),
        ...(o.recordSteps ? { record_steps: true } : {}),
      },
      recordSteps: o.recordSteps,
      measures: o.measures ?? (this.o.measureIdentity ? { identity: IDENTITY_SITES } : undefined),
      inspect: inspecting
        ? async (clip, runDir) => ({
          cache: o.cache?.(clip, runDir),
          interventions: await this.plan(interventions),
        })
        : undefined,
    });
    return { ...res, prepared };
  }

  /** Releases every session. */
  release(): Promise<void> {
    return this.models.release();
  }
}
