/**
 * Hallo's FaceLocator (`hallo/models/face_locator.py`): a small conv stack turning the face-region
 * mask video into features added to the denoising UNet's conv_in output. InflatedConv3d is a Conv2d
 * applied to every frame, so frames are folded into the batch once around the whole stack.
 */
import { Graph, type GraphDType, type Value, type WeightSource } from "../onnx/graph.ts";
import { concat, conv2d, type Ctx, reshape, shapeOf, silu, slice, transpose } from "../onnx/layers.ts";
import { checkPositiveInts } from "./image_proj.ts";

/** Constructor arguments of FaceLocator. */
export interface FaceLocatorConfig {
  conditioning_embedding_channels: number;
  conditioning_channels?: number;
  block_out_channels?: readonly number[];
}

/** The full-size configuration of `scripts/inference.py`. */
export const FACE_LOCATOR_CONFIG: FaceLocatorConfig = { conditioning_embedding_channels: 320 };

/** The upstream constructor defaults for the optional arguments. */
const DEFAULT_CONDITIONING_CHANNELS = 3;
const DEFAULT_BLOCK_OUT_CHANNELS = [16, 32, 64, 128];

export const FACE_LOCATOR_PREFIX = "face_locator.";
export const FACE_LOCATOR_INPUT = "conditioning";
export const FACE_LOCATOR_OUTPUT = "embedding";

/** The config with upstream defaults applied and checked. */
export function resolveFaceLocatorConfig(cfg: FaceLocatorConfig): Required<FaceLocatorConfig> {
  const full = {
    conditioning_embedding_channels: cfg.conditioning_embedding_channels,
    conditioning_channels: cfg.conditioning_channels ?? DEFAULT_CONDITIONING_CHANNELS,
    block_out_channels: [...(cfg.block_out_channels ?? DEFAULT_BLOCK_OUT_CHANNELS)],
  };
  checkPositiveInts(full, ["conditioning_embedding_channels", "conditioning_channels"], "FaceLocator");
  checkPositiveInts(
    full.block_out_channels,
    full.block_out_channels.map((_, i) => i),
    "FaceLocator block_out_channels",
  );
  return full;
}

/**
 * Graph `conditioning` (B, C_in, F, H, W) -> `embedding` (B, C_emb, F, H/2^(n-1), W/2^(n-1)),
 * B, F, H, W symbolic.
 */
export function buildFaceLocator(
  w: WeightSource,
  config: FaceLocatorConfig = FACE_LOCATOR_CONFIG,
  o: { dtype?: GraphDType; prefix?: string } = {},
): Graph {
  const cfg = resolveFaceLocatorConfig(config);
  const g = new Graph("face_locator", o.dtype);
  const c: Ctx = { g, w, prefix: o.prefix ?? FACE_LOCATOR_PREFIX, attention: "fused" };
  const boc = cfg.block_out_channels;
  const inC = cfg.conditioning_channels;
  const x = g.input(FACE_LOCATOR_INPUT, ["batch", inC, "frames", "height", "width"]);
  // "b c f h w -> (b f) c h w"
  const bfchw = transpose(c, "fold", x, [0, 2, 1, 3, 4]);
  const bfShape = shapeOf(c, "fold", bfchw);
  const folded = reshape(
    c,
    "fold",
    bfchw,
    concat(c, "fold", [g.ints("fold/batch", [-1]), slice(c, "fold", bfShape, [2], [5], [0])], 0),
  );
  let h: Value = silu(c, "conv_in", conv2d(c, "conv_in", folded, { inC, outC: boc[0], k: 3, pad: 1 }));
  let k = 0;
  for (let i = 0; i < boc.length - 1; i++) {
    for (const [outC, stride] of [[boc[i], 1], [boc[i + 1], 2]]) {
      const p = `blocks.${k++}`;
      h = silu(c, p, conv2d(c, p, h, { inC: boc[i], outC, k: 3, pad: 1, stride }));
    }
  }
  const out = conv2d(c, "conv_out", h, {
    inC: boc[boc.length - 1],
    outC: cfg.conditioning_embedding_channels,
    k: 3,
    pad: 1,
  });
  // "(b f) c h w -> b c f h w"
  const unfoldShape = concat(c, "unfold", [
    slice(c, "unfold", bfShape, [0], [2], [0]),
    slice(c, "unfold", shapeOf(c, "unfold", out), [1], [4], [0]),
  ], 0);
  g.output(
    transpose(c, "unfold", reshape(c, "unfold", out, unfoldShape), [0, 2, 1, 3, 4]),
    FACE_LOCATOR_OUTPUT,
  );
  return g;
}
