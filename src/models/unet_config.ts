/**
 * UNet configuration: the SD-1.5 `unet/config.json` plus Hallo's `unet_additional_kwargs` (spec section 1),
 * and the per-block layout both UNets derive from it.
 */

/** The subset of diffusers' UNet2DConditionModel config the UNets read. */
export interface UNetConfig {
  in_channels: number;
  out_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  /** Used as the number of heads everywhere (SD-1.5 naming quirk). */
  attention_head_dim: number;
  cross_attention_dim: number;
  norm_num_groups: number;
  norm_eps: number;
  flip_sin_to_cos: boolean;
  freq_shift: number;
  down_block_types: string[];
  up_block_types: string[];
  downsample_padding?: number;
}

/** Hallo's `unet_additional_kwargs` (configs/inference/default.yaml). */
export interface HalloUNetKwargs {
  use_motion_module: boolean;
  use_audio_module: boolean;
  motion_module_resolutions: number[];
  motion_module_mid_block: boolean;
  motion_module_kwargs: {
    num_attention_heads: number;
    num_transformer_block: number;
    attention_block_types: string[];
    temporal_position_encoding: boolean;
    temporal_position_encoding_max_len: number;
    temporal_attention_dim_div: number;
  };
  audio_attention_dim: number;
  stack_enable_blocks_name: string[];
  stack_enable_blocks_depth: number[];
}

/** Upstream's defaults (configs/inference/default.yaml `unet_additional_kwargs`). */
export const HALLO_UNET_KWARGS: HalloUNetKwargs = {
  use_motion_module: true,
  use_audio_module: true,
  motion_module_resolutions: [1, 2, 4, 8],
  motion_module_mid_block: true,
  motion_module_kwargs: {
    num_attention_heads: 8,
    num_transformer_block: 1,
    attention_block_types: ["Temporal_Self", "Temporal_Self"],
    temporal_position_encoding: true,
    temporal_position_encoding_max_len: 32,
    temporal_attention_dim_div: 1,
  },
  audio_attention_dim: 768,
  stack_enable_blocks_name: ["up", "down", "mid"],
  stack_enable_blocks_depth: [0, 1, 2, 3],
};

/** One down block as both UNets lay it out. */
export interface DownSpec {
  index: number;
  inC: number;
  outC: number;
  cross: boolean;
  downsample: boolean;
}

/** One up block. `prevC` is the channel count arriving from below. */
export interface UpSpec {
  index: number;
  inC: number;
  outC: number;
  prevC: number;
  cross: boolean;
  upsample: boolean;
}

export function downBlocks(c: UNetConfig): DownSpec[] {
  const ch = c.block_out_channels;
  return c.down_block_types.map((t, i) => ({
    index: i,
    inC: i === 0 ? ch[0] : ch[i - 1],
    outC: ch[i],
    cross: t.startsWith("CrossAttn"),
    downsample: i < ch.length - 1,
  }));
}

export function upBlocks(c: UNetConfig): UpSpec[] {
  const rev = [...c.block_out_channels].reverse();
  return c.up_block_types.map((t, i) => ({
    index: i,
    inC: rev[Math.min(i + 1, rev.length - 1)],
    outC: rev[i],
    prevC: i === 0 ? rev[0] : rev[i - 1],
    cross: t.startsWith("CrossAttn"),
    upsample: i < rev.length - 1,
  }));
}

/** Validates a parsed unet config.json, naming the missing field. */
export function parseUNetConfig(raw: Record<string, unknown>, source = "unet config"): UNetConfig {
  const need = [
    "in_channels",
    "out_channels",
    "block_out_channels",
    "layers_per_block",
    "attention_head_dim",
    "cross_attention_dim",
    "norm_num_groups",
    "down_block_types",
    "up_block_types",
  ];
  for (const k of need) if (raw[k] === undefined) throw new Error(`${source}: missing '${k}'`);
  if (Array.isArray(raw.attention_head_dim)) {
    throw new Error(`${source}: per-block attention_head_dim is not supported`);
  }
  return {
    norm_eps: 1e-5,
    flip_sin_to_cos: true,
    freq_shift: 0,
    downsample_padding: 1,
    ...raw,
  } as unknown as UNetConfig;
}
