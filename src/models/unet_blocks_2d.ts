/**
 * The 2D blocks of diffusers' UNet2DConditionModel (unet_2d_blocks.py), as the reference UNet uses them:
 * CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D, UpBlock2D.
 */
import type { Value } from "../onnx/graph.ts";
import {
  type AttentionLayerArgs,
  downBlock,
  type DownBlockArgs,
  type DownBlockResult,
  midBlock,
  type MidBlockArgs,
  type UNetBlockSet,
  upBlock,
  type UpBlockArgs,
  type UpBlockResult,
} from "./unet_blocks.ts";
import { basicTransformerBlock, transformer2DModel, type UNetCtx } from "./unet_parts.ts";

/** What the 2D cross-attention blocks read besides the UNet context. */
export interface UNet2DCtx extends UNetCtx {
  /** encoder_hidden_states as every attn2 reads it. */
  context: Value;
  /**
   * attn1 of the BasicTransformerBlock at `path` on its norm1 output (no residual): the forward that
   * ReferenceAttentionControl installs (bank.ts `writeBank` for the reference UNet).
   */
  attn1: (path: string, norm1: Value, dim: number) => Value;
}

/** `attentions.{index}`: a Transformer2DModel around one BasicTransformerBlock. */
function attentions(u: UNet2DCtx, a: AttentionLayerArgs): Value {
  const path = `${a.block}.attentions.${a.index}`;
  const bp = `${path}.transformer_blocks.0`;
  const dim = a.channels;
  return transformer2DModel(u, path, a.h, {
    channels: dim,
    size: a.size,
    block: (tokens) =>
      basicTransformerBlock(u, bp, tokens, { dim, context: u.context, attn1: (n1) => u.attn1(bp, n1, dim) }),
  });
}

/** CrossAttnDownBlock2D: resnet, attention per layer; downsampler. */
export function crossAttnDownBlock2D(u: UNet2DCtx, a: DownBlockArgs): DownBlockResult {
  return downBlock(u, a, (l) => attentions(u, l));
}

/** DownBlock2D: resnets; downsampler. */
export function downBlock2D(u: UNetCtx, a: DownBlockArgs): DownBlockResult {
  return downBlock(u, a);
}

/** UNetMidBlock2DCrossAttn: resnet, attention, resnet. */
export function unetMidBlock2DCrossAttn(u: UNet2DCtx, a: MidBlockArgs): Value {
  return midBlock(u, a, (l) => attentions(u, l));
}

/** CrossAttnUpBlock2D: cat skip, resnet, attention per layer; upsampler. */
export function crossAttnUpBlock2D(u: UNet2DCtx, a: UpBlockArgs): UpBlockResult {
  return upBlock(u, a, (l) => attentions(u, l));
}

/** UpBlock2D: cat skip, resnet per layer; upsampler. */
export function upBlock2D(u: UNetCtx, a: UpBlockArgs): UpBlockResult {
  return upBlock(u, a);
}

/** The 2D blocks by class name. */
export const UNET_2D_BLOCKS: UNetBlockSet<UNet2DCtx> = {
  down: { CrossAttnDownBlock2D: crossAttnDownBlock2D, DownBlock2D: downBlock2D },
  mid: unetMidBlock2DCrossAttn,
  up: { CrossAttnUpBlock2D: crossAttnUpBlock2D, UpBlock2D: upBlock2D },
};
