/**
 * AnimateDiff's VanillaTemporalModule as vendored in hallo (`motion_module.py`): per-frame GroupNorm(32),
 * proj_in, transformer blocks attending over the frame axis at every spatial position (sinusoidal PE added
 * to the normed input of each attention), proj_out, residual.
 */
import {
  add,
  attention,
  type Ctx,
  feedForward,
  groupNorm,
  layerNorm,
  linear,
  param,
  reshape,
  slice,
  transpose,
} from "../onnx/layers.ts";
import type { Value } from "../onnx/graph.ts";
import { rearrange } from "../onnx/rearrange.ts";
import type { HalloUNetKwargs } from "./unet_config.ts";
import type { HW } from "./unet_parts.ts";

/** Where a motion module runs. */
export interface MotionModuleOptions {
  channels: number;
  size: HW;
  batch: number;
  /** Frames along the attention axis, motion frames included. */
  frames: number;
}

/** `x` is (B, F, C, H, W) flattened as (B*F, C, H, W); returns the same layout. */
export function motionModule(
  c: Ctx,
  kw: HalloUNetKwargs,
  path: string,
  x: Value,
  o: MotionModuleOptions,
): Value {
  const { channels: ch, size: s, batch, frames } = o;
  const mk = kw.motion_module_kwargs;
  const heads = mk.num_attention_heads;
  const dimHead = ch / heads / mk.temporal_attention_dim_div;
  const inner = heads * dimHead;
  const hw = s.h * s.w;
  const tt = `${path}.temporal_transformer`;
  // The motion-module GroupNorm is hard-coded to 32 groups upstream.
  const n = groupNorm(c, `${tt}.norm`, x, { channels: ch, groups: 32, eps: 1e-6, rank: 4 });
  const tokens = reshape(c, tt, transpose(c, tt, n, [0, 2, 3, 1]), [batch * frames, hw, ch]);
  let h = linear(c, `${tt}.proj_in`, tokens, ch, inner);
  // VersatileAttention's layout, kept through the whole block: its per-token layers do not mind it.
  const dims = { b: batch, f: frames, d: hw, c: inner };
  h = rearrange(c, tt, h, "(b f) d c -> (b d) f c", dims);
  for (let b = 0; b < mk.num_transformer_block; b++) {
    const bp = `${tt}.transformer_blocks.${b}`;
    mk.attention_block_types.forEach((kind, i) => {
      if (kind !== "Temporal_Self") throw new Error(`motion module attention '${kind}' is not supported`);
      const ap = `${bp}.attention_blocks.${i}`;
      let q = layerNorm(c, `${bp}.norms.${i}`, h, inner, 1e-5);
      if (mk.temporal_position_encoding) {
        const pe = param(c, `${ap}.pos_encoder`, "pe", [1, mk.temporal_position_encoding_max_len, inner]);
        q = add(c, ap, q, slice(c, ap, pe, [0], [frames], [1]));
      }
      h = add(c, ap, attention(c, ap, q, q, { queryDim: inner, heads, dimHead }), h);
    });
    const f = layerNorm(c, `${bp}.ff_norm`, h, inner, 1e-5);
    h = add(c, bp, feedForward(c, `${bp}.ff`, f, inner), h, bp);
  }
  h = rearrange(c, tt, h, "(b d) f c -> (b f) d c", dims);
  const out = linear(c, `${tt}.proj_out`, h, inner, ch);
  const back = transpose(c, tt, reshape(c, tt, out, [batch * frames, s.h, s.w, ch]), [0, 3, 1, 2]);
  return add(c, path, back, x, path);
}
