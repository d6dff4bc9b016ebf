/**
 * diffusers `AutoencoderKL` (v0.27.2, the `sd-vae-ft-mse` layout) as two ONNX graphs: the encoder
 * (`encode(x).latent_dist` -> mean, clamped logvar) and the decoder (`decode(z).sample`). They are
 * separate graphs because the pipeline encodes a batch of reference images but decodes frame by frame.
 * Values are named by the upstream module path (`encoder.down_blocks.1.resnets.0`, ...).
 */
import { Graph, GraphBuildError, type GraphDType, type Value, type WeightSource } from "../onnx/graph.ts";
import {
  add,
  attention,
  type AttentionForm,
  type AttentionProbe,
  conv2d,
  type Ctx,
  groupNorm,
  reshape,
  scalar,
  shapeOf,
  silu,
  split,
  transpose,
  upsampleNearest2x,
} from "../onnx/layers.ts";

/** The parts of the VAE `config.json` the graphs depend on. */
export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  blockOutChannels: readonly number[];
  layersPerBlock: number;
  normNumGroups: number;
  /** `mid_block_add_attention` (diffusers default true). */
  midBlockAddAttention: boolean;
  /** `use_quant_conv` / `use_post_quant_conv` (later diffusers; default true). */
  useQuantConv: boolean;
  usePostQuantConv: boolean;
  /** `scaling_factor` as written in the config (Hallo's pipeline hard-codes 0.18215 instead). */
  scalingFactor: number;
}

/** Graph input and output names. */
export const VAE_ENCODER_INPUT = "x";
export const VAE_ENCODER_OUTPUTS = { mean: "mean", logvar: "logvar" } as const;
export const VAE_DECODER_INPUT = "z";
export const VAE_DECODER_OUTPUT = "sample";

/** diffusers builds every VAE GroupNorm (resnets, mid attention, conv_norm_out) with eps 1e-6. */
const VAE_NORM_EPS = 1e-6;

function field<T>(raw: Record<string, unknown>, key: string, file: string, check: (v: unknown) => v is T): T {
  const v = raw[key];
  if (!check(v)) {
    throw new GraphBuildError(`${file}: field '${key}' is missing or invalid (${JSON.stringify(v)})`);
  }
  return v;
}

const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
/** A positive integer field, or the diffusers default when absent. */
function intOr(raw: Record<string, unknown>, key: string, def: number, file: string): number {
  return raw[key] === undefined ? def : field(raw, key, file, isPosInt);
}

const isIntList = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every(isPosInt);

/** Reads a diffusers AutoencoderKL `config.json` object; `file` names it in errors. */
export function parseVaeConfig(raw: unknown, file = "config.json"): VaeConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new GraphBuildError(`${file}: not a JSON object`);
  }
  const r = raw as Record<string, unknown>;
  const boc = field(r, "block_out_channels", file, isIntList);
  const down = r.down_block_types ?? boc.map(() => "DownEncoderBlock2D");
  const up = r.up_block_types ?? boc.map(() => "UpDecoderBlock2D");
  const allAre = (v: unknown, t: string) =>
    Array.isArray(v) && v.length === boc.length && v.every((x) => x === t);
  if (!allAre(down, "DownEncoderBlock2D") || !allAre(up, "UpDecoderBlock2D")) {
    throw new GraphBuildError(
      `${file}: only DownEncoderBlock2D/UpDecoderBlock2D blocks, one per block_out_channels entry, are supported`,
    );
  }
  if ((r.act_fn ?? "silu") !== "silu") {
    throw new GraphBuildError(`${file}: act_fn '${r.act_fn}' is not supported`);
  }
  const groups = intOr(r, "norm_num_groups", 32, file);
  if (boc.some((c) => c % groups !== 0)) {
    throw new GraphBuildError(
      `${file}: norm_num_groups ${groups} does not divide every block_out_channels entry`,
    );
  }
  const bool = (k: string) => {
    const v = r[k] ?? true;
    if (typeof v !== "boolean") throw new GraphBuildError(`${file}: field '${k}' must be a boolean`);
    return v;
  };
  const sf = r.scaling_factor ?? 0.18215;
  if (typeof sf !== "number") throw new GraphBuildError(`${file}: field 'scaling_factor' must be a number`);
  return {
    inChannels: intOr(r, "in_channels", 3, file),
    outChannels: intOr(r, "out_channels", 3, file),
    latentChannels: intOr(r, "latent_channels", 4, file),
    blockOutChannels: boc,
    layersPerBlock: intOr(r, "layers_per_block", 1, file),
    normNumGroups: groups,
    midBlockAddAttention: bool("mid_block_add_attention"),
    useQuantConv: bool("use_quant_conv"),
    usePostQuantConv: bool("use_post_quant_conv"),
    scalingFactor: sf,
  };
}

/** Options of the VAE graph builders. */
export interface VaeBuildOptions {
  dtype?: GraphDType;
  /** Mid-block attention form (default fused). */
  attention?: AttentionForm;
  /** Mid-block attention paths (e.g. `encoder.mid_block.attentions.0`) whose probabilities to emit. */
  attentionProbes?: ReadonlyMap<string, AttentionProbe>;
  /** Key prefix inside the checkpoint (default none). */
  prefix?: string;
}

function context(g: Graph, w: WeightSource, o: VaeBuildOptions): Ctx {
  return {
    g,
    w,
    prefix: o.prefix ?? "",
    attention: o.attention ?? "fused",
    attentionProbes: o.attentionProbes,
  };
}

/** diffusers ResnetBlock2D without time embedding: norm1-SiLU-conv1-norm2-SiLU-conv2 plus (1x1) shortcut. */
function resnetBlock2D(c: Ctx, p: string, x: Value, inC: number, outC: number, groups: number): Value {
  let h = groupNorm(c, `${p}.norm1`, x, { channels: inC, groups, eps: VAE_NORM_EPS, rank: 4 });
  h = conv2d(c, `${p}.conv1`, silu(c, `${p}.nonlinearity`, h), { inC, outC, k: 3, pad: 1 });
  h = groupNorm(c, `${p}.norm2`, h, { channels: outC, groups, eps: VAE_NORM_EPS, rank: 4 });
  h = conv2d(c, `${p}.conv2`, silu(c, `${p}.nonlinearity`, h), { inC: outC, outC, k: 3, pad: 1 });
  const shortcut = inC === outC ? x : conv2d(c, `${p}.conv_shortcut`, x, { inC, outC: outC, k: 1 });
  // output_scale_factor is 1 in the VAE, so no division.
  return add(c, p, shortcut, h, p);
}

/** The two attention key spellings: diffusers' current names and the deprecated AttentionBlock ones. */
const NEW_NAMES = { q: "to_q", k: "to_k", v: "to_v", out: "to_out.0" };
const OLD_NAMES = { q: "query", k: "key", v: "value", out: "proj_attn" };

/**
 * The mid-block self-attention over H*W tokens: diffusers Attention with one head
 * (attention_head_dim = channels), GroupNorm eps 1e-6, residual connection, rescale factor 1.
 */
function vaeAttention(c: Ctx, p: string, x: Value, channels: number, groups: number): Value {
  const names = c.w.has(`${c.prefix}${p}.query.weight`) ? OLD_NAMES : NEW_NAMES;
  const normed = groupNorm(c, `${p}.group_norm`, x, { channels, groups, eps: VAE_NORM_EPS, rank: 4 });
  const tokens = transpose(c, p, reshape(c, p, normed, [0, 0, -1]), [0, 2, 1]);
  const attended = attention(
    c,
    p,
    tokens,
    tokens,
    { queryDim: channels, heads: 1, dimHead: channels, names, qkvBias: true },
    `${p}.${names.out}`,
  );
  const back = reshape(c, p, transpose(c, p, attended, [0, 2, 1]), shapeOf(c, p, x));
  return add(c, p, back, x, p);
}

/** UNetMidBlock2D as the VAE uses it: resnet, (attention, resnet) with no time embedding. */
function midBlock(c: Ctx, p: string, x: Value, channels: number, cfg: VaeConfig): Value {
  const groups = cfg.normNumGroups;
  let h = resnetBlock2D(c, `${p}.resnets.0`, x, channels, channels, groups);
  if (cfg.midBlockAddAttention) h = vaeAttention(c, `${p}.attentions.0`, h, channels, groups);
  return resnetBlock2D(c, `${p}.resnets.1`, h, channels, channels, groups);
}

/** conv_norm_out -> SiLU -> conv_out, shared by encoder and decoder. */
function head(c: Ctx, p: string, x: Value, inC: number, outC: number, groups: number): Value {
  const h = groupNorm(c, `${p}.conv_norm_out`, x, { channels: inC, groups, eps: VAE_NORM_EPS, rank: 4 });
  return conv2d(c, `${p}.conv_out`, silu(c, `${p}.conv_act`, h), { inC, outC, k: 3, pad: 1 });
}

/**
 * The encoder graph: `x` (N, in, H, W) -> `mean`, `logvar` (N, latent, H/f, W/f), logvar clamped
 * to [-30, 20] as DiagonalGaussianDistribution does. N, H, W are symbolic.
 */
export function buildVaeEncoder(w: WeightSource, cfg: VaeConfig, o: VaeBuildOptions = {}): Graph {
  const g = new Graph("vae_encoder", o.dtype);
  const c = context(g, w, o);
  const boc = cfg.blockOutChannels;
  const groups = cfg.normNumGroups;
  const x = g.input(VAE_ENCODER_INPUT, ["batch", cfg.inChannels, "height", "width"]);
  let h = conv2d(c, "encoder.conv_in", x, { inC: cfg.inChannels, outC: boc[0], k: 3, pad: 1 });
  let outC = boc[0];
  for (let i = 0; i < boc.length; i++) {
    const p = `encoder.down_blocks.${i}`;
    const inC = outC;
    outC = boc[i];
    for (let j = 0; j < cfg.layersPerBlock; j++) {
      h = resnetBlock2D(c, `${p}.resnets.${j}`, h, j === 0 ? inC : outC, outC, groups);
    }
    if (i < boc.length - 1) {
      // Downsample2D with padding=0: F.pad (0,1,0,1) then a stride-2 3x3 conv, i.e. pad bottom/right only.
      const d = `${p}.downsamplers.0`;
      h = conv2d(c, `${d}.conv`, h, { inC: outC, outC, k: 3, stride: 2, pad: [0, 0, 1, 1] }, d);
    }
  }
  const top = boc[boc.length - 1];
  h = midBlock(c, "encoder.mid_block", h, top, cfg);
  const L2 = 2 * cfg.latentChannels;
  let moments = head(c, "encoder", h, top, L2, groups);
  if (cfg.useQuantConv) moments = conv2d(c, "quant_conv", moments, { inC: L2, outC: L2, k: 1 });
  const [mean, logvar] = split(c, "latent_dist", moments, 1, 2);
  const clamped = g.op1(
    "Clip",
    [logvar, scalar(c, "latent_dist.min", -30), scalar(c, "latent_dist.max", 20)],
    {
      path: "latent_dist",
    },
  );
  g.output(mean, VAE_ENCODER_OUTPUTS.mean);
  g.output(clamped, VAE_ENCODER_OUTPUTS.logvar);
  return g;
}

/** The decoder graph: `z` (N, latent, h, w) (unscaled) -> `sample` (N, out, h*f, w*f). N, h, w are symbolic. */
export function buildVaeDecoder(w: WeightSource, cfg: VaeConfig, o: VaeBuildOptions = {}): Graph {
  const g = new Graph("vae_decoder", o.dtype);
  const c = context(g, w, o);
  const boc = cfg.blockOutChannels;
  const groups = cfg.normNumGroups;
  const L = cfg.latentChannels;
  const top = boc[boc.length - 1];
  let h = g.input(VAE_DECODER_INPUT, ["batch", L, "height", "width"]);
  if (cfg.usePostQuantConv) h = conv2d(c, "post_quant_conv", h, { inC: L, outC: L, k: 1 });
  h = conv2d(c, "decoder.conv_in", h, { inC: L, outC: top, k: 3, pad: 1 });
  h = midBlock(c, "decoder.mid_block", h, top, cfg);
  const rev = [...boc].reverse();
  let outC = rev[0];
  for (let i = 0; i < rev.length; i++) {
    const p = `decoder.up_blocks.${i}`;
    const prev = outC;
    outC = rev[i];
    for (let j = 0; j < cfg.layersPerBlock + 1; j++) {
      h = resnetBlock2D(c, `${p}.resnets.${j}`, h, j === 0 ? prev : outC, outC, groups);
    }
    if (i < rev.length - 1) {
      const u = `${p}.upsamplers.0`;
      h = conv2d(c, `${u}.conv`, upsampleNearest2x(c, u, h), { inC: outC, outC, k: 3, pad: 1 }, u);
    }
  }
  g.output(head(c, "decoder", h, boc[0], cfg.outChannels, groups), VAE_DECODER_OUTPUT);
  return g;
}
