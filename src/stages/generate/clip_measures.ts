/**
 * The measures a run records per clip while it samples, cheap enough to keep with every run (run_dir.ts writes
 * them beside the clip's frames, `clips/NNNN.measures.json`):
 * - guidance by region (on whenever the run guides): per step, the mean |cond - uncond| and the mean guided
 *   update |next - latents| inside the lip, face and background masks (`guidanceByRegion`), six floats a step;
 * - identity (opt-in, `measures.identity`): per step, the mean bank share of the denoising UNet's
 *   reference-reading self-attention at a few sites (`bankShare`), one float per site and step. It needs those
 *   sites' attention probabilities, so the networks must be loaded with `identityProbes()` (a probed graph:
 *   another compile, and the probabilities copied out every step), which is why it is not on by default.
 * Both read the sampler's steps only: the frames are the same with the measures on or off.
 */
import type { AttentionProbe } from "../../onnx/layers.ts";
import type { SamplerStep } from "../../sampling/sampler.ts";
import type { F32Tensor } from "../../tensor.ts";
import type { ImageConditioning } from "../image/prepare.ts";
import { guidanceByRegion } from "../inspect/guidance_regions.ts";
import { bankShare } from "../inspect/identity.ts";
import { GenerationError } from "./errors.ts";
import type { HalloModels } from "./models.ts";

/**
 * The reference self-attention sites identity drift is measured at: the two bank-reading blocks at 1/4 of the
 * latent grid (16 x 16 tokens at 512 px, so one probe is 16 x 256 x 512 floats, 8 MB; `down_blocks.0`'s would
 * be 2.1 GB), one on the way down and one on the way up. Every Hallo UNet (and the tiny one) has both.
 */
export const IDENTITY_SITES: readonly string[] = [
  "down_blocks.2.attentions.0.transformer_blocks.0.attn1",
  "up_blocks.1.attentions.0.transformer_blocks.0.attn1",
];

/** What a run measures besides its frames. */
export interface MeasureOptions {
  /** Guidance by region (default true; it applies only when the run guides, cfg > 1). */
  guidance?: boolean;
  /** Reference self-attention sites whose bank share is recorded (default none; see `IDENTITY_SITES`). */
  identity?: readonly string[];
}

/** The measure settings as run.json records them (a resume must measure the same way). */
export interface RecordedMeasureSettings {
  guidance: boolean;
  identity: string[];
}

/** One step and region of guidance by region, averaged over the clip's frames. */
export interface GuidanceMeasure {
  step: number;
  region: string;
  /** Mask-weighted mean |cond - uncond| (null for an empty mask, as JSON keeps it). */
  condDelta: number | null;
  /** Mask-weighted mean |next - latents|, the guided update (null for an empty mask). */
  update: number | null;
}

/** One site and step of the identity measure. */
export interface BankShareMeasure {
  layer: string;
  step: number;
  /** Mean share of attention on the reference's keys (cond half, heads averaged). */
  mean: number;
}

/** Everything measured while one clip sampled. */
export interface ClipMeasures {
  /** Steps of the clip. */
  steps: number;
  guidance?: GuidanceMeasure[];
  identity?: BankShareMeasure[];
}

/** The regions, named as the report names them, and the mask pyramid each is level 0 of. */
export const MEASURE_REGIONS = { lip: "lipMask", face: "faceMask", background: "fullMask" } as const;

/** The region masks at the latent grid: level 0 of the lip, face and full (= sep_background) pyramids. */
export function measureRegions(image: ImageConditioning): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(MEASURE_REGIONS).map(([name, k]) => [name, image[k][0].data]));
}

/**
 * Probe requests for the identity sites ("mean": heads averaged in the graph), for `ModelOptions.probes`.
 *
 * @example
 * ```ts ignore
 * const models = await loadHalloModels(weightsDir, { probes: { attention: identityProbes() } });
 * await renderVideo(models, prepared, DEFAULT_SETTINGS, { out: "o.mp4", measures: { identity: IDENTITY_SITES } });
 * ```
 */
export function identityProbes(sites: readonly string[] = IDENTITY_SITES): Record<string, AttentionProbe> {
  return Object.fromEntries(sites.map((s) => [s, "mean" as const]));
}

/** The settings `o` resolves to for networks `m` (guidance only when they guide). */
export function resolveMeasures(m: HalloModels, o: MeasureOptions = {}): RecordedMeasureSettings {
  const identity = [...(o.identity ?? [])];
  const probed = m.denoisingUNet.probes.attention ?? {};
  const missing = identity.filter((s) => probed[s] === undefined);
  if (missing.length) {
    throw new GenerationError(
      `the identity measure reads ${missing.join(", ")}, but the denoising UNet was loaded without ` +
        `${
          missing.length > 1 ? "those probes" : "that probe"
        } (load with probes: { attention: identityProbes() })`,
    );
  }
  return { guidance: (o.guidance ?? true) && m.geometry.guidance, identity };
}

/** Measure settings in the words of the command line (run.json's `measures`, as read: any value). */
export function describeMeasures(settings: unknown): string {
  const m = (typeof settings === "object" && settings !== null ? settings : {}) as Partial<
    RecordedMeasureSettings
  >;
  const parts = [
    ...(m.guidance ? ["guidance by region"] : []),
    ...(m.identity?.length ? [`--measure identity (${m.identity.join(", ")})`] : []),
  ];
  return parts.length ? parts.join(" and ") : "no measures";
}

/**
 * Why a run dir measured with `recorded` (run.json's `measures`, as read) cannot be resumed by a run measuring
 * with `now`, or undefined when it can: a measure is a series over the clips (identity drift is a trend), so
 * every clip of a run is measured alike. A record without `measures` predates them: its clips carry none, and
 * only guidance by region (a per-step mean over the clips that have it) may start in the middle.
 */
export function measuresDifference(recorded: unknown, now: RecordedMeasureSettings): string | undefined {
  if (recorded === undefined ? !now.identity.length : JSON.stringify(recorded) === JSON.stringify(now)) {
    return undefined;
  }
  return `was measured with ${describeMeasures(recorded)}, this run with ${describeMeasures(now)}`;
}

/** Collects one clip's measures from its sampler steps, in order. */
export class ClipMeasurer {
  readonly #guidance: GuidanceMeasure[] = [];
  readonly #identity: BankShareMeasure[] = [];
  #steps = 0;

  constructor(
    private readonly settings: RecordedMeasureSettings,
    private readonly regions: Readonly<Record<string, Float32Array>>,
  ) {}

  /** Measures one step (it reads the step's tensors and keeps a few floats). */
  step(s: SamplerStep): void {
    this.#steps++;
    if (this.settings.guidance) {
      if (!s.uncond) throw new GenerationError(`guidance measure: step ${s.index} has no uncond prediction`);
      const rows = guidanceByRegion([{ ...s, uncond: s.uncond }], this.regions);
      for (const r of rows) {
        const num = (v: number) => Number.isNaN(v) ? null : v;
        this.#guidance.push({
          step: r.step,
          region: r.region,
          condDelta: num(r.condDelta),
          update: num(r.update),
        });
      }
    }
    for (const layer of this.settings.identity) {
      const probs = s.probes?.[`${layer}.probs`] as F32Tensor | undefined;
      if (!probs) throw new GenerationError(`identity measure: step ${s.index} has no probe ${layer}.probs`);
      this.#identity.push({ layer, step: s.index, mean: bankShare(layer, probs).mean });
    }
  }

  /** What was measured, or undefined when nothing applies (no guidance, no identity sites). */
  result(): ClipMeasures | undefined {
    if (!this.settings.guidance && !this.settings.identity.length) return undefined;
    return {
      steps: this.#steps,
      ...(this.settings.guidance ? { guidance: this.#guidance } : {}),
      ...(this.settings.identity.length ? { identity: this.#identity } : {}),
    };
  }
}
