/**
 * Modules shared by the reference UNet and the denoising UNet, named after upstream's classes: the time
 * embedding, ResnetBlock2D/3D, Downsample2D, Upsample2D, Transformer2DModel/3DModel and BasicTransformerBlock.
 * Activations are NCHW with frames folded into the batch (`(b f) c h w`), which is how every spatial layer of
 * the 3D UNet runs; in that layout hallo's 3D modules compute what the 2D ones do.
 */
import {
  add,
  attention,
  type AttentionForm,
  type AttentionProbe,
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
import { Graph, type GraphDType, type Value, type WeightSource } from "../onnx/graph.ts";
import { DEFAULT_CHUNK_BYTES, partsFor } from "../onnx/attention_chunked.ts";
import type { UNetConfig } from "./unet_config.ts";

/** Spatial size of an activation, fixed at build time. */
export interface HW {
  h: number;
  w: number;
}

/** Options of both UNet builders. */
export interface BuildOptions {
  /** Key prefix of the network in the checkpoint (default: the graph name and a dot). */
  prefix?: string;
  dtype?: GraphDType;
  attention?: AttentionForm;
  attentionProbes?: ReadonlyMap<string, AttentionProbe>;
  /**
   * Memory budget in bytes of one part of an attention or feed-forward (attention_chunked.ts): where the
   * GEGLU activation of a transformer block over the whole batch would be larger, the batch is split into
   * parts (default 128 MiB, which leaves every graph up to 32x32 latents with 8+2 frames unsplit; Infinity
   * never splits).
   */
  chunkBytes?: number;
}

/** What every UNet module reads besides the graph: the config and SiLU(temb), shared by every resnet. */
export interface UNetCtx extends Ctx {
  cfg: UNetConfig;
  /** SiLU of the time embedding: the input of every resnet's `time_emb_proj`. */
  temb: Value;
  /** BuildOptions.chunkBytes. */
  chunkBytes?: number;
}

/** The graph `name` and its layer context; weights are bound under `prefix` (default `${name}.`). */
export function unetGraph(name: string, w: WeightSource, o: BuildOptions): Ctx & { chunkBytes?: number } {
  return {
    chunkBytes: o.chunkBytes,
    g: new Graph(name, o.dtype ?? "float32"),
    w,
    prefix: o.prefix ?? `${name}.`,
    attention: o.attention ?? "fused",
    attentionProbes: o.attentionProbes,
  };
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
 * `u` whose attention and feed-forward run over `rows` (the batch of a transformer's tokens) in parts, so
 * that one part's GEGLU activation (`tokens` x 4*`dim` floats per row) stays within the build's chunkBytes;
 * at most `maxParts` parts (the smallest batch an attention of the block sees). `u` itself when one part fits.
 */
export function chunked<U extends UNetCtx>(
  u: U,
  rows: number,
  tokens: number,
  dim: number,
  maxParts: number,
): U {
  const parts = partsFor(u.chunkBytes ?? DEFAULT_CHUNK_BYTES, rows, tokens * 4 * dim * 4, maxParts);
  return parts > 1 ? { ...u, chunks: parts } : u;
}

/** Channels in and out of a resnet. */
export interface ResnetOptions {
  inC: number;
  outC: number;
}

/**
 * ResnetBlock2D: norm1, SiLU, conv1, + time_emb_proj(SiLU(temb)), norm2, SiLU, conv2, shortcut, sum.
 */
export function resnetBlock2D(u: UNetCtx, path: string, x: Value, o: ResnetOptions): Value {
  const { cfg } = u;
  const { inC, outC } = o;
  const groups = cfg.norm_num_groups;
  let h = groupNorm(u, `${path}.norm1`, x, { channels: inC, groups, eps: cfg.norm_eps, rank: 4 });
  h = conv2d(u, `${path}.conv1`, silu(u, path, h), { inC, outC, k: 3, pad: 1 });
  const tembC = 4 * cfg.block_out_channels[0];
  const t = unsqueeze(u, path, linear(u, `${path}.time_emb_proj`, u.temb, tembC, outC), [2, 3]);
  h = add(u, path, h, t);
  h = groupNorm(u, `${path}.norm2`, h, { channels: outC, groups, eps: cfg.norm_eps, rank: 4 });
  h = conv2d(u, `${path}.conv2`, silu(u, path, h), { inC: outC, outC, k: 3, pad: 1 });
  const skip = inC !== outC ? conv2d(u, `${path}.conv_shortcut`, x, { inC, outC: outC, k: 1 }) : x;
  return add(u, path, skip, h, path);
}

/**
 * ResnetBlock3D (hallo resnet.py): InflatedConv3d and InflatedGroupNorm fold the frames into the batch, so on
 * the folded layout it is ResnetBlock2D.
 */
export const resnetBlock3D: typeof resnetBlock2D = resnetBlock2D;

/** Downsample2D: a stride-2 3x3 conv. */
export function downsample2D(u: UNetCtx, path: string, x: Value, channels: number): Value {
  return conv2d(u, `${path}.conv`, x, {
    inC: channels,
    outC: channels,
    k: 3,
    stride: 2,
    pad: u.cfg.downsample_padding ?? 1,
  }, path);
}

/** Upsample2D: nearest 2x, then a 3x3 conv. */
export function upsample2D(u: UNetCtx, path: string, x: Value, channels: number): Value {
  const opts = { inC: channels, outC: channels, k: 3, pad: 1 };
  return conv2d(u, `${path}.conv`, upsampleNearest2x(u, path, x), opts, path);
}

/** NCHW -> tokens (N, HW, C). */
export function toTokens(c: Ctx, path: string, x: Value, ch: number, s: HW): Value {
  return reshape(c, path, transpose(c, path, x, [0, 2, 3, 1]), [-1, s.h * s.w, ch]);
}

/** tokens (N, HW, C) -> NCHW. */
export function fromTokens(c: Ctx, path: string, x: Value, ch: number, s: HW): Value {
  return transpose(c, path, reshape(c, path, x, [-1, s.h, s.w, ch]), [0, 3, 1, 2]);
}

/** What a Transformer2DModel wraps. */
export interface TransformerOptions {
  channels: number;
  /** proj_in's output channels (default `channels`; the audio modules differ). */
  innerChannels?: number;
  size: HW;
  /** The transformer block(s) on the tokens (N, HW, inner). */
  block: (tokens: Value) => Value;
}

/**
 * Transformer2DModel (use_linear_projection false): GroupNorm(eps 1e-6), 1x1 proj_in, tokens, the block,
 * proj_out, + residual.
 */
export function transformer2DModel(u: UNetCtx, path: string, x: Value, o: TransformerOptions): Value {
  const ch = o.channels;
  const innerC = o.innerChannels ?? ch;
  const n = groupNorm(u, `${path}.norm`, x, {
    channels: ch,
    groups: u.cfg.norm_num_groups,
    eps: 1e-6,
    rank: 4,
  });
  const p = conv2d(u, `${path}.proj_in`, n, { inC: ch, outC: innerC, k: 1 });
  const h = o.block(toTokens(u, path, p, innerC, o.size));
  const out = conv2d(u, `${path}.proj_out`, fromTokens(u, path, h, innerC, o.size), {
    inC: innerC,
    outC: ch,
    k: 1,
  });
  return add(u, path, out, x, path);
}

/**
 * Transformer3DModel (hallo transformer_3d.py) rearranges "b c f h w -> (b f) c h w" around the same
 * computation; on the folded layout it is Transformer2DModel.
 */
export const transformer3DModel: typeof transformer2DModel = transformer2DModel;

/** Heads/dim of the SD attention blocks: `attention_head_dim` is the head count. */
export function heads(cfg: UNetConfig, dim: number): { heads: number; dimHead: number } {
  return { heads: cfg.attention_head_dim, dimHead: dim / cfg.attention_head_dim };
}

/** What a BasicTransformerBlock reads. */
export interface BasicTransformerBlockOptions {
  dim: number;
  /** The encoder_hidden_states of attn2, (N, tokens, cross_attention_dim). */
  context: Value;
  /**
   * attn1 on norm1's output, without the residual: plain self-attention, or ReferenceAttentionControl's
   * write/read forward (bank.ts).
   */
  attn1: (norm1: Value) => Value;
}

/**
 * BasicTransformerBlock / TemporalBasicTransformerBlock (no temporal attention at inference):
 * `h = attn1(norm1(x)) + x`, `h = attn2(norm2(h), context) + h`, `ff(norm3(h)) + h`.
 */
export function basicTransformerBlock(
  u: UNetCtx,
  path: string,
  x: Value,
  o: BasicTransformerBlockOptions,
): Value {
  const { dim } = o;
  const hd = heads(u.cfg, dim);
  const n1 = layerNorm(u, `${path}.norm1`, x, dim, 1e-5);
  let h = add(u, path, o.attn1(n1), x);
  const n2 = layerNorm(u, `${path}.norm2`, h, dim, 1e-5);
  const attn2 = attention(u, `${path}.attn2`, n2, o.context, {
    queryDim: dim,
    kvDim: u.cfg.cross_attention_dim,
    ...hd,
  });
  h = add(u, path, attn2, h);
  const n3 = layerNorm(u, `${path}.norm3`, h, dim, 1e-5);
  return add(u, path, feedForward(u, `${path}.ff`, n3, dim), h, path);
}
