/**
 * The reference UNet (hallo UNet2DConditionModel, eval): SD-1.5 2D UNet without conv_norm_out/conv_out,
 * run in ReferenceAttentionControl "write" mode. Its graph outputs are the bank: the norm1 output of every
 * BasicTransformerBlock, named `<block path>.norm1`, plus the last up-block features (`out_sample`).
 */
import type { Graph, WeightSource } from "../onnx/graph.ts";
import { conv2d, silu, tile } from "../onnx/layers.ts";
import { bankSlots, writeBank } from "./bank.ts";
import type { UNetConfig } from "./unet_config.ts";
import { unetBlocks } from "./unet_blocks.ts";
import { type UNet2DCtx, UNET_2D_BLOCKS } from "./unet_blocks_2d.ts";
import { type BuildOptions, timeEmbedding, unetGraph } from "./unet_parts.ts";

export type { BuildOptions } from "./unet_parts.ts";

export interface ReferenceUNetShape {
  /** Reference batch: 3 images x 2 CFG copies = 6, or 3 without CFG. */
  batch: number;
  /** Context batch (2 with CFG: [uncond, cond]; 1 without). */
  contextBatch: number;
  contextTokens: number;
  height: number;
  width: number;
}

/** Builds the reference UNet graph. Inputs: `sample`, `timestep` (1,), `encoder_hidden_states`. */
export function buildReferenceUNet(
  cfg: UNetConfig,
  w: WeightSource,
  shape: ReferenceUNetShape,
  o: BuildOptions = {},
): Graph {
  const c = unetGraph("reference_unet", w, o);
  const { g } = c;
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
  const context = tile(c, "encoder_hidden_states", ctxIn, 3, 0, B / shape.contextBatch);
  const u: UNet2DCtx = {
    ...c,
    cfg,
    temb: silu(c, "temb_act", timeEmbedding(c, cfg, t)),
    context,
    attn1: (path, norm1, dim) => writeBank(u, path, norm1, dim),
  };
  const h = conv2d(c, "conv_in", sample, {
    inC: cfg.in_channels,
    outC: cfg.block_out_channels[0],
    k: 3,
    pad: 1,
  });
  const types = { down: cfg.down_block_types, up: cfg.up_block_types };
  const out = unetBlocks(u, UNET_2D_BLOCKS, types, { h, size: { h: shape.height, w: shape.width } });
  g.output(out.h, "out_sample");
  return g;
}

/** Bank output names in the reader's pairing order. */
export function referenceBankOutputs(cfg: UNetConfig): string[] {
  return bankSlots(cfg).map((b) => `${b.path}.norm1`);
}
