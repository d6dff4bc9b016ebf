/**
 * Parity case `pipeline`: one FaceAnimatePipeline call with the tiny models (2 DDIM steps, CFG 3.5), the
 * recorded initial latents injected. Compares the reference-UNet input, every raw noise prediction, the
 * latents after every step and the decoded video.
 */
import { join } from "node:path";
import type { AudioProjConfig } from "../../models/audio_proj.ts";
import type { FaceLocatorConfig } from "../../models/face_locator.ts";
import type { ImageProjConfig } from "../../models/image_proj.ts";
import type { HalloUNetKwargs } from "../../models/unet_config.ts";
import { ddimConfig, makeDdimSchedule } from "../../sampling/ddim.ts";
import { loadHalloModels } from "../../stages/generate/models.ts";
import { denoiseClip } from "../../stages/generate/pipeline.ts";
import { decodeLatents } from "../../stages/networks/vae.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import type { CaseInput, CaseResult, ParityCase } from "../types.ts";

function tensor(input: CaseInput, name: string): F32Tensor {
  const t = input.tensors.get(name);
  if (!t) throw new Error(`reference tensor '${name}' is missing`);
  return t;
}

export const pipelineCase: ParityCase = {
  name: "pipeline",
  tolerance: 1e-3,
  async run(input: CaseInput): Promise<CaseResult> {
    const meta = input.meta as Record<string, unknown> & { motion_scale: number[]; guidance_scale: number };
    const configs = input.index.common?.configs ?? {};
    const ref = tensor(input, "ref_image");
    const [, n, , H, W] = ref.shape;
    const audio = tensor(input, "audio_tensor");
    const frames = audio.shape[1];
    const cfg = meta.guidance_scale;
    const t0 = performance.now();
    const models = await loadHalloModels(join(input.dir, "tiny_models"), {
      frames,
      height: H / 8,
      width: W / 8,
      guidance: cfg > 1,
    }, {
      ...input.network,
      configs: {
        imageProj: configs.image_proj as ImageProjConfig,
        audioProj: configs.audio_proj as AudioProjConfig,
        faceLocator: configs.face_locator as FaceLocatorConfig,
        unetKwargs: configs.unet_additional_kwargs as HalloUNetKwargs,
        nMotionFrames: n - 1,
      },
    });
    const t1 = performance.now();
    const build_s = Object.values(models.timings).reduce((a, t) => a + t.build_s, 0);
    const session_s = Object.values(models.timings).reduce((a, t) => a + t.session_s, 0);
    const levels = [0, 1, 2, 3].filter((l) => input.tensors.has(`full_mask.${l}`));
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
      steps: Number(meta.num_inference_steps),
      cfg,
      motionScale: [meta.motion_scale[0], meta.motion_scale[1], meta.motion_scale[2]],
      initialLatents: tensor(input, "initial_latents"),
      schedule: makeDdimSchedule(ddimConfig((meta.scheduler ?? {}) as Record<string, unknown>)),
    });
    const outputs: CaseResult["outputs"] = {};
    let r = await it.next();
    while (!r.done) {
      const s = r.value;
      const raw = s.uncond ? new Float32Array([...s.uncond, ...s.cond]) : s.cond;
      outputs[`noise_pred_per_step.${s.index}`] = raw;
      outputs[`latents_after_step.${s.index}`] = s.next;
      r = await it.next();
    }
    outputs.ref_unet_sample = r.value.refLatents;
    outputs.videos = await decodeLatents(models.vae, r.value.latents);
    const run_s = (performance.now() - t1) / 1000;
    await models.release();
    void t0;
    return { outputs, build_s, session_s, run_s };
  },
};
