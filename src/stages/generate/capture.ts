/**
 * Runs the first clip of a video the way `animate` does (same inputs, same noise for the same seed) and
 * keeps what the visualisers draw: every sampler step (with the UNet's probes), the reader bank and the
 * decoded clip. Later clips depend on the frames before them; inspect them from a run directory instead.
 */
import type { OnEvent } from "../../sampling/events.ts";
import { manualSeed } from "../../sampling/noise.ts";
import type { SamplerStep } from "../../sampling/sampler.ts";
import type { F32Tensor } from "../../tensor.ts";
import type { AudioWindows } from "../audio/prepare.ts";
import type { ImageConditioning } from "../image/prepare.ts";
import type { Bank } from "../networks/unets.ts";
import { decodeLatents } from "../networks/vae.ts";
import { clipInputs } from "./conditioning.ts";
import type { HalloModels } from "./models.ts";
import { denoiseClip } from "./pipeline.ts";

/** The settings of the captured clip, as `animate` takes them. */
export interface CaptureOptions {
  steps: number;
  cfg: number;
  /** [pose, face, lip]. */
  motionScale: readonly [number, number, number];
  seed: number;
  /** Decode the final latents to the clip's frames (default true). */
  decode?: boolean;
  /** A `step` event per sampler step (clip 0). */
  onEvent?: OnEvent;
}

/** What the first clip left behind. */
export interface CapturedClip {
  /** Every step, its tensors shaped like the latents (1, 4, F, h, w). */
  steps: SamplerStep[];
  /** The bank as the denoising UNet read it (fp16-rounded), batch `[ref, m1, m2]` per CFG copy. */
  bank: Bank;
  latents: F32Tensor;
  /** (1, 3, F, H, W) in [0, 1], when decoded. */
  video?: F32Tensor;
}

/** Runs clip 0 as `animate` does (motion frames = the reference image) and keeps every step. */
export async function captureFirstClip(
  m: HalloModels,
  image: ImageConditioning,
  audio: AudioWindows,
  o: CaptureOptions,
): Promise<CapturedClip> {
  const it = denoiseClip(m, await clipInputs(m, image, audio, 0), {
    steps: o.steps,
    cfg: o.cfg,
    motionScale: o.motionScale,
    generator: manualSeed(o.seed),
  });
  const steps: SamplerStep[] = [];
  let r = await it.next();
  while (!r.done) {
    steps.push(r.value);
    o.onEvent?.({ kind: "step", step: r.value, clip: { index: 0, count: 1 } });
    r = await it.next();
  }
  const video = (o.decode ?? true) ? await decodeLatents(m.vae, r.value.latents) : undefined;
  return { steps, bank: r.value.bank, latents: r.value.latents, video };
}
