/**
 * The real full-size configs of the files in `pretrained_models/` (stable-diffusion-v1-5/unet/config.json,
 * sd-vae-ft-mse/config.json, wav2vec2-base-960h/config.json), for shape-only builds and benchmarks when the
 * files themselves are not at hand. Loaders always read the config.json beside a checkpoint.
 */
export const SD15_UNET_CONFIG = {
  act_fn: "silu",
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  cross_attention_dim: 768,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  sample_size: 64,
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
};

export const SD_VAE_CONFIG = {
  act_fn: "silu",
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  in_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  out_channels: 3,
  sample_size: 256,
  up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
};

export const WAV2VEC2_BASE_CONFIG = {
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  conv_dim: [512, 512, 512, 512, 512, 512, 512],
  conv_kernel: [10, 3, 3, 3, 3, 2, 2],
  conv_stride: [5, 2, 2, 2, 2, 2, 2],
  conv_bias: false,
  feat_extract_norm: "group",
  feat_extract_activation: "gelu",
  do_stable_layer_norm: false,
  num_conv_pos_embeddings: 128,
  num_conv_pos_embedding_groups: 16,
  hidden_act: "gelu",
  layer_norm_eps: 1e-5,
  vocab_size: 32,
  architectures: ["Wav2Vec2ForCTC"],
};
