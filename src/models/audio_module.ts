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
import type { UNetConfig } from "./unet_config.ts";
import { type HW, spatialTransformer } from "./unet_parts.ts";

/** Per-level masks, each (B*F, HW, 1), and the three motion-scale scalars. */
export interface AudioConditioning {
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

/** `x` (N, C, H, W) -> same; `innerC` = heads * (block input channels / heads). */
export function audioModule(
  c: Ctx,
  cfg: UNetConfig,
  path: string,
  x: Value,
  ch: number,
  innerC: number,
  s: HW,
  level: number,
  a: AudioConditioning,
): Value {
  const heads = cfg.attention_head_dim;
  const dimHead = innerC / heads;
  return spatialTransformer(c, cfg, path, x, ch, innerC, s, (h) => {
    const bp = `${path}.transformer_blocks.0`;
    const n1 = layerNorm(c, `${bp}.norm1`, h, innerC, 1e-5);
    h = add(c, bp, attention(c, `${bp}.attn1`, n1, n1, { queryDim: innerC, heads, dimHead }), h);
    const n2 = layerNorm(c, `${bp}.norm2`, h, innerC, 1e-5);
    const branch = (i: number, mask: Value, conv: string) => {
      const o = attention(c, `${bp}.attn2_${i}`, n2, a.audio, {
        queryDim: innerC,
        kvDim: a.audioDim,
        heads,
        dimHead,
      });
      return zeroConv(c, `${bp}.${conv}`, mul(c, `${bp}.attn2_${i}`, o, mask), innerC);
    };
    const full = branch(0, a.full[level], "zero_conv_full");
    const face = branch(1, a.face[level], "zero_conv_face");
    const lip = branch(2, a.lip[level], "zero_conv_lip");
    const mixed = add(
      c,
      bp,
      add(c, bp, mul(c, bp, full, a.scale[0]), mul(c, bp, face, a.scale[1])),
      mul(c, bp, lip, a.scale[2]),
    );
    h = add(c, bp, mixed, h);
    const n3 = layerNorm(c, `${bp}.norm3`, h, innerC, 1e-5);
    return add(c, bp, feedForward(c, `${bp}.ff`, n3, innerC), h, bp);
  });
}

/** A per-level mask input (B*F, HW) as (B*F, HW, 1). */
export function maskColumn(c: Ctx, path: string, m: Value): Value {
  return unsqueeze(c, path, m, [2]);
}
