/**
 * The reference UNet (hallo UNet2DConditionModel, eval): SD-1.5 2D UNet without conv_norm_out/conv_out,
 * run in ReferenceAttentionControl "write" mode. Its graph outputs are the bank: the norm1 output of every
 * BasicTransformerBlock, named `<block path>.norm1`, plus the last up-block features (`out_sample`).
 */
import { Graph, type GraphDType, type WeightSource } from "../onnx/graph.ts";
import { add, attention, concat, conv2d, type Ctx, layerNorm, silu, tile } from "../onnx/layers.ts";
import type { Value } from "../onnx/graph.ts";
import { downBlocks, type UNetConfig, upBlocks } from "./unet_config.ts";
import {
  crossAndFeedForward,
  downsample,
  heads,
  type HW,
  resnet,
  spatialTransformer,
  timeEmbedding,
  upsample,
} from "./unet_parts.ts";
import { bankSlots } from "./bank.ts";
import type { AttentionForm, AttentionProbe } from "../onnx/layers.ts";

export interface ReferenceUNetShape {
  /** Reference batch: 3 images x 2 CFG copies = 6, or 3 without CFG. */
  batch: number;
  /** Context batch (2 with CFG: [uncond, cond]; 1 without). */
  contextBatch: number;
  contextTokens: number;
  height: number;
  width: number;
}

export interface BuildOptions {
  prefix?: string;
  dtype?: GraphDType;
  attention?: AttentionForm;
  attentionProbes?: ReadonlyMap<string, AttentionProbe>;
}

/** Builds the reference UNet graph. Inputs: `sample`, `timestep` (1,), `encoder_hidden_states`. */
export function buildReferenceUNet(
  cfg: UNetConfig,
  w: WeightSource,
  shape: ReferenceUNetShape,
  o: BuildOptions = {},
): Graph {
  const g = new Graph("reference_unet", o.dtype ?? "float32");
  const c: Ctx = {
    g,
    w,
    prefix: o.prefix ?? "reference_unet.",
    attention: o.attention ?? "fused",
    attentionProbes: o.attentionProbes,
  };
  const B = shape.batch;
  if (B % shape.contextBatch !== 0) {
    throw new Error(`reference batch ${B} is not a multiple of context batch ${shape.contextBatch}`);
  }
  const sample = g.input("sample", [B, cfg.in_channels, shape.height, shape.width]);
  const t = g.input("timestep", [1]);
  const ctxIn = g.input("encoder_hidden_states", [
    shape.contextBatch,
    shape.contextTokens,
    cfg.cross_attention_dim,
  ]);
  // BasicTransformerBlock write path: ctx.repeat(B_h // B_ctx, 1, 1) => [u, c, u, c, u, c].
  const ctx = tile(c, "encoder_hidden_states", ctxIn, 3, 0, B / shape.contextBatch);
  const tembAct = silu(c, "temb_act", timeEmbedding(c, cfg, t));
  const ch0 = cfg.block_out_channels[0];

  const block = (path: string, x: Value, dim: number): Value => {
    const n1 = layerNorm(c, `${path}.norm1`, x, dim, 1e-5);
    g.output(n1);
    const hd = heads(cfg, dim);
    const h = add(c, path, attention(c, `${path}.attn1`, n1, n1, { queryDim: dim, ...hd }), x);
    return crossAndFeedForward(c, cfg, path, h, dim, ctx);
  };
  const transformer = (path: string, x: Value, ch: number, s: HW) =>
    spatialTransformer(c, cfg, path, x, ch, ch, s, (tok) => block(`${path}.transformer_blocks.0`, tok, ch));

  let s: HW = { h: shape.height, w: shape.width };
  let h = conv2d(c, "conv_in", sample, { inC: cfg.in_channels, outC: ch0, k: 3, pad: 1 });
  const skips: Value[] = [h];
  for (const d of downBlocks(cfg)) {
    for (let i = 0; i < cfg.layers_per_block; i++) {
      const p = `down_blocks.${d.index}`;
      h = resnet(c, cfg, `${p}.resnets.${i}`, h, tembAct, i === 0 ? d.inC : d.outC, d.outC);
      if (d.cross) h = transformer(`${p}.attentions.${i}`, h, d.outC, s);
      skips.push(h);
    }
    if (d.downsample) {
      h = downsample(c, cfg, `down_blocks.${d.index}.downsamplers.0`, h, d.outC);
      s = { h: Math.ceil(s.h / 2), w: Math.ceil(s.w / 2) };
      skips.push(h);
    }
  }
  const top = cfg.block_out_channels[cfg.block_out_channels.length - 1];
  h = resnet(c, cfg, "mid_block.resnets.0", h, tembAct, top, top);
  h = transformer("mid_block.attentions.0", h, top, s);
  h = resnet(c, cfg, "mid_block.resnets.1", h, tembAct, top, top);
  for (const u of upBlocks(cfg)) {
    const p = `up_blocks.${u.index}`;
    for (let i = 0; i < cfg.layers_per_block + 1; i++) {
      const skip = skips.pop()!;
      const skipC = i === cfg.layers_per_block ? u.inC : u.outC;
      h = concat(c, p, [h, skip], 1);
      h = resnet(c, cfg, `${p}.resnets.${i}`, h, tembAct, (i === 0 ? u.prevC : u.outC) + skipC, u.outC);
      if (u.cross) h = transformer(`${p}.attentions.${i}`, h, u.outC, s);
    }
    if (u.upsample) {
      h = upsample(c, `${p}.upsamplers.0`, h, u.outC);
      s = { h: s.h * 2, w: s.w * 2 };
    }
  }
  g.output(h, "out_sample");
  return g;
}

/** Bank output names in the reader's pairing order. */
export function referenceBankOutputs(cfg: UNetConfig): string[] {
  return bankSlots(cfg).map((b) => `${b.path}.norm1`);
}
