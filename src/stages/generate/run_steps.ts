/**
 * The steps file of a recorded clip (`clips/NNNN.steps.safetensors`, written by `animate` with `recordSteps`):
 * everything one denoising step needs to run again alone — the clip's conditioning as the UNet was fed it
 * (context, reference latents, face features, audio tokens, mask pyramids), the latents every step saw, the
 * guided prediction every step made and the final latents — plus the sampling settings in its metadata. The
 * bank is not stored: it is the reference UNet on the stored reference latents and context, recomputed.
 * run_dir.ts owns where the file lives; this module only encodes and decodes it.
 */
import type { F32Tensor } from "../../tensor.ts";
import { f32 } from "../../tensor.ts";
import { readSafetensors } from "../../weights/safetensors.ts";
import type { TensorToWrite } from "../../weights/safetensors_write.ts";
import { withFileSource } from "../../weights/source.ts";
import type { ClipConditioning } from "./conditioning.ts";
import { GenerationError } from "./errors.ts";

/** A clip's steps as recorded while sampling. */
export interface RecordedSteps {
  conditioning: ClipConditioning;
  /** Latents step s saw, for every step. */
  latents: F32Tensor[];
  /** Guided prediction (`noise_pred` after guidance) of every step. */
  noisePred: F32Tensor[];
  /** Latents after the last step. */
  final: F32Tensor;
  cfg: number;
  motionScale: readonly [number, number, number];
}

/** One recorded step, with what it needs to run again. */
export interface RecordedStep {
  conditioning: ClipConditioning;
  step: number;
  /** Steps of the run. */
  steps: number;
  cfg: number;
  motionScale: [number, number, number];
  latents: F32Tensor;
  noisePred: F32Tensor;
  /** Latents after the step (the next step's input, or the final latents). */
  nextLatents: F32Tensor;
}

const FORMAT = "hallo-lab recorded steps 1";
const MASKS = ["full", "face", "lip"] as const;

/** The tensors and metadata of a steps file. */
export function encodeSteps(
  r: RecordedSteps,
): { tensors: TensorToWrite[]; metadata: Record<string, string> } {
  const c = r.conditioning;
  const t = (name: string, x: F32Tensor): TensorToWrite => ({
    name,
    dtype: "F32",
    shape: x.shape,
    data: x.data,
  });
  const tensors = [
    t("context", c.context),
    t("ref_latents", c.refLatents),
    t("face_features", c.faceFeatures),
    t("audio_tokens", c.audioTokens),
    ...MASKS.flatMap((k) => c.masks[k].map((m, l) => t(`mask.${k}.${l}`, m))),
    ...r.latents.map((x, s) => t(`latents.${s}`, x)),
    ...r.noisePred.map((x, s) => t(`noise_pred.${s}`, x)),
    t("final_latents", r.final),
  ];
  return {
    tensors,
    metadata: {
      format: FORMAT,
      steps: String(r.latents.length),
      cfg: String(r.cfg),
      motion_scale: JSON.stringify(r.motionScale),
      guidance: String(c.guidance),
      frames: String(c.frames),
      levels: String(c.masks.full.length),
    },
  };
}

/** Step `step` of the steps file `path`, with the clip's conditioning; only the tensors it needs are read. */
export function readRecordedStep(path: string, step: number): RecordedStep {
  return withFileSource(path, (src) => {
    const ck = readSafetensors(src);
    const meta = ck.metadata;
    if (meta.format !== FORMAT) {
      throw new GenerationError(`${path}: not a recorded-steps file (format ${meta.format ?? "missing"})`);
    }
    const steps = Number(meta.steps);
    if (!Number.isInteger(step) || step < 0 || step >= steps) {
      throw new GenerationError(`${path}: step ${step} out of range (${steps} steps recorded)`);
    }
    const get = (name: string): F32Tensor => {
      const ref = ck.tensors.get(name);
      if (!ref || ref.dtype !== "F32") throw new GenerationError(`${path}: no F32 tensor '${name}'`);
      // slice(): a fresh, aligned buffer the Float32Array can view.
      const bytes = src.read(ref.offset, ref.length).slice();
      return f32(ref.shape, new Float32Array(bytes.buffer, 0, ref.length / 4));
    };
    const levels = Number(meta.levels);
    const pyramid = (k: string) => Array.from({ length: levels }, (_, l) => get(`mask.${k}.${l}`));
    return {
      conditioning: {
        guidance: meta.guidance === "true",
        frames: Number(meta.frames),
        context: get("context"),
        refLatents: get("ref_latents"),
        faceFeatures: get("face_features"),
        audioTokens: get("audio_tokens"),
        masks: { full: pyramid("full"), face: pyramid("face"), lip: pyramid("lip") },
      },
      step,
      steps,
      cfg: Number(meta.cfg),
      motionScale: JSON.parse(meta.motion_scale),
      latents: get(`latents.${step}`),
      noisePred: get(`noise_pred.${step}`),
      nextLatents: get(step + 1 < steps ? `latents.${step + 1}` : "final_latents"),
    };
  });
}
