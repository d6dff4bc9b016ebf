/**
 * Hallo's AudioProjModel (`hallo/models/audio_proj.py`): each frame's (window, layer, channel)
 * wav2vec features are flattened and projected to `context_tokens` audio tokens:
 * relu(proj1) -> relu(proj2) -> proj3 -> reshape -> LayerNorm.
 */
import { Graph, type GraphDType, type WeightSource } from "../onnx/graph.ts";
import { concat, type Ctx, layerNorm, linear, relu, reshape, shapeOf, slice } from "../onnx/layers.ts";
import { checkPositiveInts, LAYER_NORM_EPS } from "./image_proj.ts";

/** Constructor arguments of AudioProjModel. */
export interface AudioProjConfig {
  seq_len: number;
  blocks: number;
  channels: number;
  intermediate_dim: number;
  output_dim: number;
  context_tokens: number;
}

/** The full-size configuration of `scripts/inference.py`. */
export const AUDIO_PROJ_CONFIG: AudioProjConfig = {
  seq_len: 5,
  blocks: 12,
  channels: 768,
  intermediate_dim: 512,
  output_dim: 768,
  context_tokens: 32,
};

export const AUDIO_PROJ_PREFIX = "audioproj.";
export const AUDIO_PROJ_INPUT = "audio_embeds";
export const AUDIO_PROJ_OUTPUT = "context_tokens";

/**
 * Graph `audio_embeds` (B, F, seq_len, blocks, channels) -> `context_tokens` (B, F, context_tokens, output_dim);
 * B and F are symbolic.
 */
export function buildAudioProj(
  w: WeightSource,
  cfg: AudioProjConfig = AUDIO_PROJ_CONFIG,
  o: { dtype?: GraphDType; prefix?: string } = {},
): Graph {
  checkPositiveInts(
    cfg,
    ["seq_len", "blocks", "channels", "intermediate_dim", "output_dim", "context_tokens"],
    "AudioProjModel",
  );
  const g = new Graph("audio_proj", o.dtype);
  const c: Ctx = { g, w, prefix: o.prefix ?? AUDIO_PROJ_PREFIX, attention: "fused" };
  const inDim = cfg.seq_len * cfg.blocks * cfg.channels;
  const mid = cfg.intermediate_dim;
  const x = g.input(AUDIO_PROJ_INPUT, ["batch", "frames", cfg.seq_len, cfg.blocks, cfg.channels]);
  // "bz f w b c -> (bz f) (w b c)": row-major flattening keeps the window, layer, channel order.
  const flat = reshape(c, "audio_embeds", x, [-1, inDim]);
  let h = relu(c, "proj1", linear(c, "proj1", flat, inDim, mid));
  h = relu(c, "proj2", linear(c, "proj2", h, mid, mid));
  h = linear(c, "proj3", h, mid, cfg.context_tokens * cfg.output_dim);
  const tokens = reshape(c, "proj3", h, [-1, cfg.context_tokens, cfg.output_dim]);
  const normed = layerNorm(c, "norm", tokens, cfg.output_dim, LAYER_NORM_EPS);
  const bf = slice(c, "context_tokens", shapeOf(c, "context_tokens", x), [0], [2], [0]);
  const outShape = concat(c, "context_tokens", [
    bf,
    g.ints("context_tokens/tail", [cfg.context_tokens, cfg.output_dim]),
  ], 0);
  g.output(reshape(c, "context_tokens", normed, outShape), AUDIO_PROJ_OUTPUT);
  return g;
}
