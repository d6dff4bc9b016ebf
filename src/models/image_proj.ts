/**
 * Hallo's ImageProjModel (`hallo/models/image_proj.py`): the face embedding becomes
 * `clip_extra_context_tokens` cross-attention tokens, `proj` Linear -> reshape -> `norm` LayerNorm.
 */
import { Graph, GraphBuildError, type GraphDType, type WeightSource } from "../onnx/graph.ts";
import { type Ctx, layerNorm, linear, reshape } from "../onnx/layers.ts";

/** Constructor arguments of ImageProjModel, as Hallo passes them. */
export interface ImageProjConfig {
  cross_attention_dim: number;
  clip_embeddings_dim: number;
  clip_extra_context_tokens: number;
}

/** The full-size configuration of `scripts/inference.py` (cross_attention_dim from the SD-1.5 UNet). */
export const IMAGE_PROJ_CONFIG: ImageProjConfig = {
  cross_attention_dim: 768,
  clip_embeddings_dim: 512,
  clip_extra_context_tokens: 4,
};

/** Key prefix of the module in `net.pth`. */
export const IMAGE_PROJ_PREFIX = "imageproj.";
export const IMAGE_PROJ_INPUT = "image_embeds";
export const IMAGE_PROJ_OUTPUT = "clip_extra_context_tokens";

/** torch.nn.LayerNorm's default epsilon, which Hallo's projection models keep. */
export const LAYER_NORM_EPS = 1e-5;

/** Validates a config object (e.g. from the reference index), filling nothing in. */
export function checkPositiveInts<T extends object>(cfg: T, keys: readonly (keyof T)[], what: string): T {
  for (const k of keys) {
    const v = cfg[k] as unknown;
    if (!Number.isInteger(v) || (v as number) <= 0) {
      throw new GraphBuildError(
        `${what} config: '${String(k)}' must be a positive integer, got ${JSON.stringify(v)}`,
      );
    }
  }
  return cfg;
}

/** Graph `image_embeds` (B, clip_embeddings_dim) -> `clip_extra_context_tokens` (B, tokens, cross_attention_dim). */
export function buildImageProj(
  w: WeightSource,
  cfg: ImageProjConfig = IMAGE_PROJ_CONFIG,
  o: { dtype?: GraphDType; prefix?: string } = {},
): Graph {
  checkPositiveInts(
    cfg,
    ["cross_attention_dim", "clip_embeddings_dim", "clip_extra_context_tokens"],
    "ImageProjModel",
  );
  const g = new Graph("image_proj", o.dtype);
  const c: Ctx = { g, w, prefix: o.prefix ?? IMAGE_PROJ_PREFIX, attention: "fused" };
  const d = cfg.cross_attention_dim;
  const n = cfg.clip_extra_context_tokens;
  const x = g.input(IMAGE_PROJ_INPUT, ["batch", cfg.clip_embeddings_dim]);
  const tokens = reshape(c, "proj", linear(c, "proj", x, cfg.clip_embeddings_dim, n * d), [-1, n, d]);
  g.output(layerNorm(c, "norm", tokens, d, LAYER_NORM_EPS), IMAGE_PROJ_OUTPUT);
  return g;
}
