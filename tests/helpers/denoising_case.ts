/** The recorded denoising-UNet case `denoising_unet_read_cfg` as UNet inputs for the tiny model (tests only). */
import type { HalloUNetKwargs } from "../../src/models/unet_config.ts";
import type { DenoisingUNetShape } from "../../src/models/denoising_unet.ts";
import type { Bank, NoiseInputs, UNetSources } from "../../src/stages/networks/unets.ts";
import type { F32Tensor } from "../../src/tensor.ts";
import { readCase, readIndex } from "../../src/parity/reference.ts";
import { REFERENCE, shared, tinyModel } from "./shared.ts";

/** Where the tiny UNet comes from, the shape it is built for, and the recorded inputs of one call. */
export interface DenoisingCase {
  src: UNetSources;
  shape: DenoisingUNetShape;
  x: NoiseInputs;
}

/** Reads the `denoising_unet_read_cfg` reference case (guidance: batch 2, uncond first). */
export function denoisingCase(): DenoisingCase {
  shared("reference", "denoising_unet_read_cfg.json");
  const index = readIndex(REFERENCE);
  const input = readCase(REFERENCE, index, "denoising_unet_read_cfg");
  const t = (k: string) => input.tensors.get(k) as F32Tensor;
  const sample = t("sample");
  const [B, , F, h, w] = sample.shape;
  const shape: DenoisingUNetShape = {
    batch: B,
    frames: F,
    height: h,
    width: w,
    contextTokens: t("encoder_hidden_states").shape[1],
    audioTokens: t("audio_embedding").shape[2],
    motionFrames: 2,
  };
  const src = {
    weightsDir: tinyModel(),
    kwargs: index.common?.configs?.unet_additional_kwargs as HalloUNetKwargs,
  };
  const bank: Bank = (input.meta.pairing as { i: number; reader: string }[]).map((p) => ({
    path: p.reader,
    data: t(`bank_read.${String(p.i).padStart(2, "0")}`),
  }));
  const pyramid = (k: string) => [0, 1, 2, 3].map((l) => t(`${k}_mask.${l}`));
  const ms = t("motion_scale").data;
  const x: NoiseInputs = {
    sample,
    timestep: t("timestep").data[0],
    encoderHiddenStates: t("encoder_hidden_states"),
    audioEmbedding: t("audio_embedding"),
    maskCondFea: t("mask_cond_fea"),
    fullMask: pyramid("full"),
    faceMask: pyramid("face"),
    lipMask: pyramid("lip"),
    motionScale: [ms[0], ms[1], ms[2]],
    bank,
  };
  return { src, shape, x };
}
