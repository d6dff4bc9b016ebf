/**
 * Hallo's audio module: a Transformer3DModel wrapper around AudioTemporalBasicTransformerBlock
 * (attention.py). Three cross-attentions to the audio tokens are masked by the full/face/lip masks of
 * the block's level, passed through zero convs and mixed by `motion_scale`.
 */
import {
  add,
  attention,
  type Ctx,
  feedForward,
  layerNorm,
  mul,
  param,
  reshape,
  unsqueeze,
} from "../onnx/layers.ts";
import type { Value } from "../onnx/graph.ts";
import { type HW, transformer3DModel, type UNetCtx } from "./unet_parts.ts";

/** The audio tokens (B*F, tokens, dim), the per-level masks, each (B*F, HW, 1), and the motion-scale scalars. */
export interface AudioModuleInputs {
  audio: Value;
  audioDim: number;
  full: Value[];
  face: Value[];
  lip: Value[];
  scale: [Value, Value, Value];
}

/** zero_conv_*: a 1x1 Conv2d on the square token grid, i.e. a per-token linear with bias. */
function zeroConv(c: Ctx, path: string, x: Value, dim: number): Value {
  const w = reshape(c, path, param(c, path, "weight", [dim, dim, 1, 1]), [dim, dim]);
  const y = c.g.op1("MatMul", [x, c.g.op1("Transpose", [w], { path, attrs: { perm: [1, 0] } })], { path });
  return add(c, path, y, param(c, path, "bias", [dim]), path);
}

/** Where an audio module runs. */
export interface AudioModuleOptions {
  channels: number;
  /** heads * (block input channels / heads): proj_in's output channels. */
  innerChannels: number;
  size: HW;
  /** Index of the mask pyramid level (the block's depth). */
  level: number;
  audio: AudioModuleInputs;
}

/** The audio module: a Transformer3DModel around one AudioTemporalBasicTransformerBlock; `x` (N, C, H, W). */
export function audioModule(u: UNetCtx, path: string, x: Value, o: AudioModuleOptions): Value {
  const dim = o.innerChannels;
  return transformer3DModel(u, path, x, {
    channels: o.channels,
    innerChannels: dim,
    size: o.size,
    block: (tokens) =>
      audioTemporalBasicTransformerBlock(u, `${path}.transformer_blocks.0`, tokens, {
        dim,
        level: o.level,
        audio: o.audio,
      }),
  });
}

/**
 * AudioTemporalBasicTransformerBlock: `h = attn1(norm1(x)) + x`; the three masked audio cross-attentions of
 * norm2(h) through their zero convs, mixed by motion_scale, `+ h`; `ff(norm3(h)) + h`.
 */
export function audioTemporalBasicTransformerBlock(
  c: UNetCtx,
  bp: string,
  x: Value,
  o: { dim: number; level: number; audio: AudioModuleInputs },
): Value {
  const { dim, level, audio: a } = o;
  const heads = c.cfg.attention_head_dim;
  const dimHead = dim / heads;
  const n1 = layerNorm(c, `${bp}.norm1`, x, dim, 1e-5);
  let h = add(c, bp, attention(c, `${bp}.attn1`, n1, n1, { queryDim: dim, heads, dimHead }), x);
  const n2 = layerNorm(c, `${bp}.norm2`, h, dim, 1e-5);
  const branch = (i: number, mask: Value, conv: string) => {
    const o = attention(c, `${bp}.attn2_${i}`, n2, a.audio, {
      queryDim: dim,
      kvDim: a.audioDim,
      heads,
      dimHead,
    });
    return zeroConv(c, `${bp}.${conv}`, mul(c, `${bp}.attn2_${i}`, o, mask), dim);
  };
  const full = branch(0, a.full[level], "zero_conv_full");
  const face = branch(1, a.face[level], "zero_conv_face");
  const lip = branch(2, a.lip[level], "zero_conv_lip");
  const fullFace = add(c, bp, mul(c, bp, full, a.scale[0]), mul(c, bp, face, a.scale[1]));
  h = add(c, bp, add(c, bp, fullFace, mul(c, bp, lip, a.scale[2])), h);
  const n3 = layerNorm(c, `${bp}.norm3`, h, dim, 1e-5);
  return add(c, bp, feedForward(c, `${bp}.ff`, n3, dim), h, bp);
}

/** A per-level mask input (B*F, HW) as (B*F, HW, 1). */
export function maskColumn(c: Ctx, path: string, m: Value): Value {
  return unsqueeze(c, path, m, [2]);
}
