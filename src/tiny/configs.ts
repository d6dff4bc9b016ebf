/**
 * Sizes of the tiny random weight set (`weights/tiny_pretrained_models/`), hard-coded so the demo works on a
 * fresh clone, and `tiny.json`, the file at its root that records them (upstream hard-codes the real sizes
 * in inference.py, so a loader has no other way to learn them). Sizes follow the shared tiny reference
 * models, except the face-embedding width, which stays ArcFace's 512 so the real face analysis can feed it.
 */
import { join } from "node:path";
import type { AudioProjConfig } from "../models/audio_proj.ts";
import type { FaceLocatorConfig } from "../models/face_locator.ts";
import type { ImageProjConfig } from "../models/image_proj.ts";
import type { HalloUNetKwargs } from "../models/unet_config.ts";
import type { HalloConfigs } from "../models/hallo_configs.ts";

/** Bumped whenever the values, sizes or file layout of the generated set change. */
export const TINY_GENERATOR_VERSION = 1;

/** Seed of the default set. */
export const TINY_SEED = 20240613;

/** Name of the record file at the root of a tiny set. */
export const TINY_JSON = "tiny.json";

/** Said wherever tiny weights are used: nothing they produce means anything. */
export const TINY_NOTICE =
  "TINY RANDOM WEIGHTS: these networks are untrained noise; every video made with them is noise";

const WAV2VEC2_LAYERS = 3;
const WAV2VEC2_HIDDEN = 16;
const CROSS_ATTENTION_DIM = 16;
const AUDIO_DIM = 32;
const UNET_CHANNELS = [32, 32, 64, 64];

/** SD-1.5 `unet/config.json`, shrunk (32 groups of the smallest width: one channel per group). */
export const TINY_UNET_CONFIG = {
  _class_name: "UNet2DConditionModel",
  act_fn: "silu",
  center_input_sample: false,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  out_channels: 4,
  layers_per_block: 1,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  block_out_channels: UNET_CHANNELS,
  attention_head_dim: 2,
  cross_attention_dim: CROSS_ATTENTION_DIM,
  sample_size: 8,
} as const;

/** `sd-vae-ft-mse/config.json`, shrunk. */
export const TINY_VAE_CONFIG = {
  _class_name: "AutoencoderKL",
  act_fn: "silu",
  block_out_channels: [16, 16, 32, 32],
  down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  force_upcast: true,
  in_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 8,
  out_channels: 3,
  sample_size: 64,
  scaling_factor: 0.18215,
} as const;

/** `wav2vec2-base-960h/config.json`, shrunk; the CNN strides are the real ones (320 samples per frame). */
export const TINY_WAV2VEC2_CONFIG = {
  architectures: ["Wav2Vec2ForCTC"],
  model_type: "wav2vec2",
  hidden_size: WAV2VEC2_HIDDEN,
  num_hidden_layers: WAV2VEC2_LAYERS,
  num_attention_heads: 2,
  intermediate_size: 32,
  conv_dim: [16, 16, 16, 16, 16, 16, 16],
  conv_kernel: [10, 3, 3, 3, 3, 2, 2],
  conv_stride: [5, 2, 2, 2, 2, 2, 2],
  conv_bias: false,
  feat_extract_norm: "group",
  feat_extract_activation: "gelu",
  do_stable_layer_norm: false,
  num_conv_pos_embeddings: 16,
  num_conv_pos_embedding_groups: 2,
  num_feat_extract_layers: 7,
  hidden_act: "gelu",
  layer_norm_eps: 1e-5,
  vocab_size: 32,
  add_adapter: false,
  apply_spec_augment: true,
  mask_time_prob: 0.05,
} as const;

/** `wav2vec2-base-960h/preprocessor_config.json` (the real one). */
export const TINY_WAV2VEC2_PREPROCESSOR = {
  do_normalize: true,
  feature_extractor_type: "Wav2Vec2FeatureExtractor",
  feature_size: 1,
  padding_side: "right",
  padding_value: 0.0,
  return_attention_mask: false,
  sampling_rate: 16000,
} as const;

/** ImageProjModel: ArcFace's 512-d embedding -> 4 tokens of the UNet's cross-attention width. */
export const TINY_IMAGE_PROJ: ImageProjConfig = {
  cross_attention_dim: CROSS_ATTENTION_DIM,
  clip_embeddings_dim: 512,
  clip_extra_context_tokens: 4,
};

/** AudioProjModel: blocks and channels are wav2vec2's layers and hidden size; output is the UNet's audio width. */
export const TINY_AUDIO_PROJ: AudioProjConfig = {
  seq_len: 5,
  blocks: WAV2VEC2_LAYERS,
  channels: WAV2VEC2_HIDDEN,
  intermediate_dim: 24,
  output_dim: AUDIO_DIM,
  context_tokens: 8,
};

/** FaceLocator: its features are added to the UNet's conv_in output, so they have its width. */
export const TINY_FACE_LOCATOR: Required<FaceLocatorConfig> = {
  conditioning_embedding_channels: UNET_CHANNELS[0],
  conditioning_channels: 3,
  block_out_channels: [8, 16, 16, 32],
};

/** Hallo's `unet_additional_kwargs` with 2 motion heads and the tiny audio width. */
export const TINY_UNET_KWARGS: HalloUNetKwargs = {
  use_motion_module: true,
  use_audio_module: true,
  motion_module_resolutions: [1, 2, 4, 8],
  motion_module_mid_block: true,
  motion_module_kwargs: {
    num_attention_heads: 2,
    num_transformer_block: 1,
    attention_block_types: ["Temporal_Self", "Temporal_Self"],
    temporal_position_encoding: true,
    temporal_position_encoding_max_len: 32,
    temporal_attention_dim_div: 1,
  },
  audio_attention_dim: AUDIO_DIM,
  stack_enable_blocks_name: ["up", "down", "mid"],
  stack_enable_blocks_depth: [0, 1, 2, 3],
};

/** Everything `loadHalloModels` needs beyond the folder's own config files. */
export const TINY_CONFIGS: Required<HalloConfigs> = {
  imageProj: TINY_IMAGE_PROJ,
  audioProj: TINY_AUDIO_PROJ,
  faceLocator: TINY_FACE_LOCATOR,
  unetKwargs: TINY_UNET_KWARGS,
  nMotionFrames: 2,
};

/** One generated file as recorded in tiny.json. */
export interface TinyFileRecord {
  bytes: number;
  /** Tensor count (0 for JSON files). */
  tensors: number;
}

/** The content of tiny.json. */
export interface TinyRecord {
  generator: "hallo-lab tiny_random";
  version: number;
  seed: number;
  /** Digest of every checkpoint key and shape the graph builders bound when the set was made. */
  layout: string;
  notice: string;
  configs: Required<HalloConfigs>;
  /** Every file of the set (paths relative to the set's root) with its size. */
  files: Record<string, TinyFileRecord>;
}

/** A tiny.json that is present but unreadable or not one of ours, named with the problem. */
export class TinyWeightsError extends Error {
  override name = "TinyWeightsError";
}

/** Reads `<dir>/tiny.json`: undefined when there is none, a TinyWeightsError when it is unusable. */
export function readTinyRecord(dir: string): TinyRecord | undefined {
  const file = join(dir, TINY_JSON);
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new TinyWeightsError(`${file}: cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TinyWeightsError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const r = raw as Partial<TinyRecord> | null;
  const c = r?.configs as Partial<HalloConfigs> | undefined;
  const ok = r !== null && typeof r === "object" && r.generator === "hallo-lab tiny_random" &&
    Number.isInteger(r.version) && Number.isInteger(r.seed) && typeof r.layout === "string" &&
    typeof r.files === "object" && r.files !== null && typeof c === "object" && c !== null &&
    typeof c.imageProj === "object" && typeof c.audioProj === "object" &&
    typeof c.faceLocator === "object" && typeof c.unetKwargs === "object" &&
    Number.isInteger(c.nMotionFrames);
  if (!ok) {
    throw new TinyWeightsError(`${file}: not a tiny weight record (expected generator, version, configs)`);
  }
  return r as TinyRecord;
}

/**
 * The sizes recorded in `<dir>/tiny.json` (undefined when the folder has none, i.e. real weights), for
 * `loadHalloModels`' `configs`.
 */
export function readTinyConfigs(dir: string): HalloConfigs | undefined {
  return readTinyRecord(dir)?.configs;
}
