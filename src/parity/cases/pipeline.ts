/**
 * Parity case `pipeline`: one FaceAnimatePipeline call with the tiny models (DDIM, CFG), the recorded initial
 * latents injected. Compares the reference-UNet input, every raw noise prediction, the latents after every
 * step and the decoded video. Steps, guidance scale, motion scale and scheduler come from the sidecar; sizes,
 * frames and motion frames from the tensors' shapes (checked against the sidecar's numbers); the module
 * configs from index.json. The sidecar's generator seed is not needed: upstream's draw is recorded as
 * `initial_latents` (a float32 CPU draw depends on the CPU's vector path, so the seed alone cannot redo it).
 */
import { join } from "node:path";
import type { AudioProjConfig } from "../../models/audio_proj.ts";
import type { FaceLocatorConfig } from "../../models/face_locator.ts";
import type { ImageProjConfig } from "../../models/image_proj.ts";
import type { HalloUNetKwargs } from "../../models/unet_config.ts";
import { ddimConfig, ddimTimesteps, makeDdimSchedule } from "../../sampling/ddim.ts";
import { loadHalloModels } from "../../stages/generate/models.ts";
import { denoiseClip } from "../../stages/generate/pipeline.ts";
import { decodeLatents } from "../../stages/networks/vae.ts";
import { f32 } from "../../tensor.ts";
import {
  agrees,
  indexConfig,
  metaCount,
  metaNumber,
  optionalNumber,
  optionalNumbers,
  settingError,
} from "../settings.ts";
import type { CaseInput, CaseResult, ParityCase } from "../types.ts";
import { referenceTensor as tensor } from "./vae.ts";

/** The scheduler kwargs of the case: the sidecar's `scheduler`, else index.json's `configs.scheduler`. */
function schedulerKwargs(input: CaseInput): Record<string, unknown> {
  const s = input.meta.scheduler;
  if (typeof s === "object" && s !== null && !Array.isArray(s)) return s as Record<string, unknown>;
  return indexConfig<Record<string, unknown>>(input, "scheduler");
}

export const pipelineCase: ParityCase = {
  name: "pipeline",
  tolerance: 1e-3,
  async run(input: CaseInput): Promise<CaseResult> {
    const ref = tensor(input, "ref_image");
    const [, n, , H, W] = ref.shape;
    const audio = tensor(input, "audio_tensor");
    const frames = audio.shape[1];
    agrees(input, "height", H, "tensor 'ref_image'");
    agrees(input, "width", W, "tensor 'ref_image'");
    agrees(input, "video_length", frames, "tensor 'audio_tensor'");
    agrees(input, "n_motion_frames", n - 1, "tensor 'ref_image' (reference + motion frames)");
    // The models' geometry is in latents of SD's VAE (image / 8).
    if (H % 8 || W % 8) settingError(input, `image size ${W}x${H} is not a multiple of 8`);
    const cfg = metaNumber(input, "guidance_scale");
    const steps = metaCount(input, "num_inference_steps");
    const motion = optionalNumbers(input, "motion_scale", 3);
    if (!motion) settingError(input, "'motion_scale' [pose, face, lip] is missing");
    const eta = optionalNumber(input, "eta") ?? 0;
    if (eta !== 0) {
      settingError(input, `eta ${eta}: only deterministic DDIM (eta 0, what Hallo uses) is implemented`);
    }
    const scheduler = ddimConfig(schedulerKwargs(input), `parity case 'pipeline' scheduler`);
    const recorded = input.meta.timesteps;
    if (recorded !== undefined) {
      const ours = Array.from(ddimTimesteps(steps, scheduler));
      if (JSON.stringify(recorded) !== JSON.stringify(ours)) {
        settingError(
          input,
          `'timesteps' ${JSON.stringify(recorded)}, but the scheduler gives ${JSON.stringify(ours)}`,
        );
      }
    }
    const configs = {
      imageProj: indexConfig<ImageProjConfig>(input, "image_proj"),
      audioProj: indexConfig<AudioProjConfig>(input, "audio_proj"),
      faceLocator: indexConfig<FaceLocatorConfig>(input, "face_locator"),
      unetKwargs: indexConfig<HalloUNetKwargs>(input, "unet_additional_kwargs"),
      nMotionFrames: n - 1,
    };
    const models = await loadHalloModels(join(input.dir, "tiny_models"), {
      frames,
      size: H,
      guidance: cfg > 1,
      ...input.network,
      configs,
    });
    const t1 = performance.now();
    const build_s = Object.values(models.timings).reduce((a, t) => a + t.build_s, 0);
    const session_s = Object.values(models.timings).reduce((a, t) => a + t.session_s, 0);
    // One mask per UNet resolution level, as many as the case records.
    const levels: number[] = [];
    while (input.tensors.has(`full_mask.${levels.length}`)) levels.push(levels.length);
    const faceMask = tensor(input, "face_mask");
    const it = denoiseClip(models, {
      refImages: f32([n, 3, H, W], ref.data),
      faceEmb: tensor(input, "face_emb"),
      audioTokens: audio,
      faceRegion: f32([1, 3, H, W], faceMask.data),
      masks: {
        full: levels.map((l) => tensor(input, `full_mask.${l}`)),
        face: levels.map((l) => tensor(input, `face_mask_levels.${l}`)),
        lip: levels.map((l) => tensor(input, `lip_mask.${l}`)),
      },
    }, {
      steps,
      cfg,
      motionScale: [motion[0], motion[1], motion[2]],
      initialLatents: tensor(input, "initial_latents"),
      schedule: makeDdimSchedule(scheduler),
    });
    const outputs: CaseResult["outputs"] = {};
    let r = await it.next();
    while (!r.done) {
      const s = r.value;
      const raw = s.uncond ? new Float32Array([...s.uncond.data, ...s.cond.data]) : s.cond.data;
      outputs[`noise_pred_per_step.${s.index}`] = raw;
      outputs[`latents_after_step.${s.index}`] = s.next.data;
      r = await it.next();
    }
    outputs.ref_unet_sample = r.value.refLatents;
    outputs.videos = await decodeLatents(models.vae, r.value.latents);
    const run_s = (performance.now() - t1) / 1000;
    await models.release();
    return { outputs, build_s, session_s, run_s };
  },
};
