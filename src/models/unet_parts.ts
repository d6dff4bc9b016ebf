/**
 * Building blocks shared by the reference UNet and the denoising UNet. Activations are NCHW with
 * frames folded into the batch (`(b f) c h w`), which is how every spatial layer of the 3D UNet runs.
 */
import {
  add,
  attention,
  conv2d,
  type Ctx,
  feedForward,
  groupNorm,
  layerNorm,
  linear,
  reshape,
  silu,
  timestepEmbedding,
  transpose,
  unsqueeze,
  upsampleNearest2x,
} from "../onnx/layers.ts";
import type { Value } from "../onnx/graph.ts";
import type { UNetConfig } from "./unet_config.ts";

/** Spatial size of an activation, fixed at build time. */
export interface HW {
  h: number;
  w: number;
}

/** `time_proj` + `time_embedding` (linear_1, SiLU, linear_2): timestep (1,) -> (1, 4*C0). */
export function timeEmbedding(c: Ctx, cfg: UNetConfig, t: Value): Value {
  const c0 = cfg.block_out_channels[0];
  const proj = timestepEmbedding(c, "time_proj", t, c0, {
    flipSinToCos: cfg.flip_sin_to_cos,
    freqShift: cfg.freq_shift,
  });
  const h = silu(c, "time_embedding.act", linear(c, "time_embedding.linear_1", proj, c0, 4 * c0));
  return linear(c, "time_embedding.linear_2", h, 4 * c0, 4 * c0, true, "time_embedding");
}

/**
 * ResnetBlock2D / ResnetBlock3D (the 3D one normalises per frame, which is the folded layout):
 * norm1, SiLU, conv1, + time_emb_proj(SiLU(temb)), norm2, SiLU, conv2, shortcut, sum.
 * `tembAct` is SiLU(temb), shared by every resnet.
 */
export function resnet(
  c: Ctx,
  cfg: UNetConfig,
  path: string,
  x: Value,
  tembAct: Value,
  inC: number,
  outC: number,
): Value {
  const groups = cfg.norm_num_groups;
  let h = groupNorm(c, `${path}.norm1`, x, { channels: inC, groups, eps: cfg.norm_eps, rank: 4 });
  h = conv2d(c, `${path}.conv1`, silu(c, path, h), { inC, outC, k: 3, pad: 1 });
  const tembC = 4 * cfg.block_out_channels[0];
  const t = unsqueeze(c, path, linear(c, `${path}.time_emb_proj`, tembAct, tembC, outC), [2, 3]);
  h = add(c, path, h, t);
  h = groupNorm(c, `${path}.norm2`, h, { channels: outC, groups, eps: cfg.norm_eps, rank: 4 });
  h = conv2d(c, `${path}.conv2`, silu(c, path, h), { inC: outC, outC, k: 3, pad: 1 });
  const skip = inC !== outC ? conv2d(c, `${path}.conv_shortcut`, x, { inC, outC: outC, k: 1 }) : x;
  return add(c, path, skip, h, path);
}

export function downsample(c: Ctx, cfg: UNetConfig, path: string, x: Value, ch: number): Value {
  return conv2d(c, `${path}.conv`, x, {
    inC: ch,
    outC: ch,
    k: 3,
    stride: 2,
    pad: cfg.downsample_padding ?? 1,
  }, path);
}

export function upsample(c: Ctx, path: string, x: Value, ch: number): Value {
  return conv2d(c, `${path}.conv`, upsampleNearest2x(c, path, x), { inC: ch, outC: ch, k: 3, pad: 1 }, path);
}

/** NCHW -> tokens (N, HW, C). */
export function toTokens(c: Ctx, path: string, x: Value, ch: number, s: HW): Value {
  return reshape(c, path, transpose(c, path, x, [0, 2, 3, 1]), [-1, s.h * s.w, ch]);
}

/** tokens (N, HW, C) -> NCHW. */
export function fromTokens(c: Ctx, path: string, x: Value, ch: number, s: HW): Value {
  return transpose(c, path, reshape(c, path, x, [-1, s.h, s.w, ch]), [0, 3, 1, 2]);
}

/**
 * Transformer2DModel / Transformer3DModel wrapper (use_linear_projection false): GroupNorm(eps 1e-6),
 * 1x1 proj_in, tokens, `block(tokens)`, proj_out, + residual. `innerC` may differ from `ch` (audio modules).
 */
export function spatialTransformer(
  c: Ctx,
  cfg: UNetConfig,
  path: string,
  x: Value,
  ch: number,
  innerC: number,
  s: HW,
  block: (tokens: Value) => Value,
): Value {
  const n = groupNorm(c, `${path}.norm`, x, {
    channels: ch,
    groups: cfg.norm_num_groups,
    eps: 1e-6,
    rank: 4,
  });
  const p = conv2d(c, `${path}.proj_in`, n, { inC: ch, outC: innerC, k: 1 });
  const h = block(toTokens(c, path, p, innerC, s));
  const o = conv2d(c, `${path}.proj_out`, fromTokens(c, path, h, innerC, s), { inC: innerC, outC: ch, k: 1 });
  return add(c, path, o, x, path);
}

/** Heads/dim of the SD attention blocks: `attention_head_dim` is the head count. */
export function heads(cfg: UNetConfig, dim: number): { heads: number; dimHead: number } {
  return { heads: cfg.attention_head_dim, dimHead: dim / cfg.attention_head_dim };
}

/** The cross-attention + feed-forward tail of a BasicTransformerBlock (norm2/attn2, norm3/ff). */
export function crossAndFeedForward(
  c: Ctx,
  cfg: UNetConfig,
  path: string,
  h: Value,
  dim: number,
  context: Value,
): Value {
  const hd = heads(cfg, dim);
  const n2 = layerNorm(c, `${path}.norm2`, h, dim, 1e-5);
  h = add(
    c,
    path,
    attention(c, `${path}.attn2`, n2, context, { queryDim: dim, kvDim: cfg.cross_attention_dim, ...hd }),
    h,
  );
  const n3 = layerNorm(c, `${path}.norm3`, h, dim, 1e-5);
  return add(c, path, feedForward(c, `${path}.ff`, n3, dim), h, path);
}
