/**
 * wav2vec2 as Hallo runs it (`hallo/models/wav2vec.py` `Wav2VecModel.forward` over transformers 4.39
 * `Wav2Vec2Model`, eval mode): CNN feature encoder -> linear interpolation (align_corners) of the frames to
 * `seq_len` -> feature projection -> post-LN transformer encoder. Every hidden state is an output.
 */
import { DataType } from "../onnx/proto.ts";
import { Graph, type Value, type WeightSource } from "../onnx/graph.ts";
import {
  add,
  attention,
  type AttentionForm,
  conv1d,
  type Ctx,
  gelu,
  hasParam,
  layerNorm,
  linear,
  param,
  slice,
  transpose,
  unsqueeze,
} from "../onnx/layers.ts";

/** The `config.json` fields the graph depends on (names as transformers' `Wav2Vec2Config`). */
export interface Wav2Vec2Config {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  conv_dim: readonly number[];
  conv_kernel: readonly number[];
  conv_stride: readonly number[];
  conv_bias: boolean;
  num_conv_pos_embeddings: number;
  num_conv_pos_embedding_groups: number;
  layer_norm_eps: number;
}

/** A config.json this port cannot honour, named with the problem. */
export class Wav2Vec2ConfigError extends Error {
  override name = "Wav2Vec2ConfigError";
}

/** transformers' `Wav2Vec2Config` defaults, used for fields a config.json leaves out (as `from_pretrained` does). */
const DEFAULTS = {
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  conv_dim: [512, 512, 512, 512, 512, 512, 512],
  conv_kernel: [10, 3, 3, 3, 3, 2, 2],
  conv_stride: [5, 2, 2, 2, 2, 2, 2],
  conv_bias: false,
  num_conv_pos_embeddings: 128,
  num_conv_pos_embedding_groups: 16,
  layer_norm_eps: 1e-5,
  feat_extract_norm: "group",
  feat_extract_activation: "gelu",
  hidden_act: "gelu",
  do_stable_layer_norm: false,
  add_adapter: false,
} as const;

/**
 * Reads a parsed wav2vec2 `config.json`, applying transformers' defaults, and rejects the variants whose
 * graph differs from base-960h's (layer-norm feature encoder, stable-layer-norm encoder, adapters, other
 * activations) with a Wav2Vec2ConfigError naming `file`.
 */
export function parseWav2Vec2Config(json: unknown, file = "config.json"): Wav2Vec2Config {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new Wav2Vec2ConfigError(`${file}: not a JSON object`);
  }
  const raw = { ...DEFAULTS, ...(json as Record<string, unknown>) } as Record<string, unknown>;
  const bad = (what: string): never => {
    throw new Wav2Vec2ConfigError(`${file}: ${what}`);
  };
  const count = (k: string): number => {
    const v = raw[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) bad(`${k} must be a positive integer`);
    return v as number;
  };
  const counts = (k: string): number[] => {
    const v = raw[k];
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => Number.isSafeInteger(x) && x >= 1)) {
      bad(`${k} must be a non-empty list of positive integers`);
    }
    return [...(v as number[])];
  };
  const expect = (k: string, want: unknown) => {
    if (raw[k] !== want) {
      bad(`${k}=${JSON.stringify(raw[k])} is not supported (only ${JSON.stringify(want)})`);
    }
  };
  expect("feat_extract_norm", "group");
  expect("feat_extract_activation", "gelu");
  expect("hidden_act", "gelu");
  expect("do_stable_layer_norm", false);
  expect("add_adapter", false);
  const cfg: Wav2Vec2Config = {
    hidden_size: count("hidden_size"),
    num_hidden_layers: count("num_hidden_layers"),
    num_attention_heads: count("num_attention_heads"),
    intermediate_size: count("intermediate_size"),
    conv_dim: counts("conv_dim"),
    conv_kernel: counts("conv_kernel"),
    conv_stride: counts("conv_stride"),
    conv_bias: raw.conv_bias === true
      ? true
      : raw.conv_bias === false
      ? false
      : bad("conv_bias must be a boolean"),
    num_conv_pos_embeddings: count("num_conv_pos_embeddings"),
    num_conv_pos_embedding_groups: count("num_conv_pos_embedding_groups"),
    layer_norm_eps: typeof raw.layer_norm_eps === "number" && raw.layer_norm_eps > 0
      ? raw.layer_norm_eps
      : bad("layer_norm_eps must be a positive number"),
  };
  if (cfg.conv_kernel.length !== cfg.conv_dim.length || cfg.conv_stride.length !== cfg.conv_dim.length) {
    bad("conv_dim, conv_kernel and conv_stride must have the same length");
  }
  if (cfg.hidden_size % cfg.num_attention_heads !== 0) {
    bad(`hidden_size ${cfg.hidden_size} is not divisible by num_attention_heads ${cfg.num_attention_heads}`);
  }
  if (cfg.hidden_size % cfg.num_conv_pos_embedding_groups !== 0) {
    bad(`hidden_size is not divisible by num_conv_pos_embedding_groups ${cfg.num_conv_pos_embedding_groups}`);
  }
  return cfg;
}

/** Number of CNN frames the feature encoder makes of `samples` input samples (0 when too short). */
export function featureFrames(cfg: Wav2Vec2Config, samples: number): number {
  let t = samples;
  for (let i = 0; i < cfg.conv_dim.length; i++) {
    if (t < cfg.conv_kernel[i]) return 0;
    t = Math.floor((t - cfg.conv_kernel[i]) / cfg.conv_stride[i]) + 1;
  }
  return t;
}

/** Checkpoint keys (below the model prefix) that upstream loads but never executes in eval mode. */
export const WAV2VEC2_UNEXECUTED_KEYS: readonly string[] = ["masked_spec_embed"];

/** Graph input and output names. */
export const WAV2VEC2_IO = {
  /** (batch, samples) float32: the normalised, padded waveform. */
  inputValues: "input_values",
  /** int64 scalar: the number of frames the CNN features are interpolated to. */
  seqLen: "seq_len",
  /** `hidden_states.${i}`, i = 0..num_hidden_layers, each (batch, seq_len, hidden_size). */
  hiddenState: (i: number): string => `hidden_states.${i}`,
  /** Probe: the interpolated CNN features (batch, seq_len, conv_dim[-1]). */
  interpolated: "linear_interpolation",
} as const;

export interface Wav2Vec2BuildOptions {
  /** Key prefix of the model inside the checkpoint: `wav2vec2.` for Wav2Vec2ForCTC files, `` for Wav2Vec2Model. */
  prefix: string;
  attention?: AttentionForm;
}

/**
 * Key prefix of the wav2vec2 model in a checkpoint: `wav2vec2.` (Wav2Vec2ForCTC / Pretraining layout) when
 * its feature encoder is found there, else none (a bare Wav2Vec2Model state dict).
 */
export function wav2vec2Prefix(w: WeightSource): string {
  return w.has("wav2vec2.feature_extractor.conv_layers.0.conv.weight") ? "wav2vec2." : "";
}

/** Builds the wav2vec2 graph over the checkpoint tensors of `w` (shapes checked, weights bound as external data). */
export function buildWav2Vec2(w: WeightSource, cfg: Wav2Vec2Config, o: Wav2Vec2BuildOptions): Graph {
  const g = new Graph("wav2vec2", "float32");
  const c: Ctx = { g, w, prefix: o.prefix, attention: o.attention ?? "fused" };
  const x = g.input(WAV2VEC2_IO.inputValues, ["batch", "samples"]);
  const seqLen = g.input(WAV2VEC2_IO.seqLen, [], DataType.INT64);

  const cnn = featureEncoder(c, "feature_extractor", unsqueeze(c, "feature_extractor", x, [1]), cfg);
  const frames = transpose(c, "feature_extractor", cnn, [0, 2, 1]);
  const interp = linearInterpolation(c, WAV2VEC2_IO.interpolated, frames, seqLen);
  const cLast = cfg.conv_dim[cfg.conv_dim.length - 1];
  const normed = layerNorm(c, "feature_projection.layer_norm", interp, cLast, cfg.layer_norm_eps);
  const projected = linear(
    c,
    "feature_projection.projection",
    normed,
    cLast,
    cfg.hidden_size,
    true,
    "feature_projection",
  );
  const hidden = encoder(c, "encoder", projected, cfg);
  hidden.forEach((h, i) => g.output(h, WAV2VEC2_IO.hiddenState(i)));
  return g;
}

/** `Wav2Vec2FeatureEncoder` with feat_extract_norm "group": GroupNorm(C, C) after conv 0 only, GELU after each. */
function featureEncoder(c: Ctx, path: string, x: Value, cfg: Wav2Vec2Config): Value {
  let h = x;
  let inC = 1;
  for (let i = 0; i < cfg.conv_dim.length; i++) {
    const p = `${path}.conv_layers.${i}`;
    const outC = cfg.conv_dim[i];
    h = conv1d(
      c,
      `${p}.conv`,
      h,
      { inC, outC, k: cfg.conv_kernel[i], stride: cfg.conv_stride[i], bias: cfg.conv_bias },
    );
    // One group per channel is exactly InstanceNormalization with the GroupNorm affine (torch default eps 1e-5).
    if (i === 0) {
      h = c.g.op1("InstanceNormalization", [
        h,
        param(c, `${p}.layer_norm`, "weight", [outC]),
        param(c, `${p}.layer_norm`, "bias", [outC]),
      ], { path: `${p}.layer_norm`, attrs: { epsilon: { float: 1e-5 } }, outName: `${p}.layer_norm` });
    }
    h = gelu(c, `${p}.activation`, h, "none", i === cfg.conv_dim.length - 1 ? path : p);
    inC = outC;
  }
  return h;
}

/**
 * hallo `linear_interpolation`: `F.interpolate(mode="linear", align_corners=True)` over time, (B,T,C) -> (B,L,C).
 * The source positions and weights are computed in-graph in float32 exactly as torch's CPU kernel does
 * (scale = (T-1)/(L-1), src = scale*i, i0 = floor(src), i1 = min(i0+1, T-1), w1 = src-i0, w0 = 1-w1), so the
 * graph needs nothing but `seq_len` and stays linear in L (a dense (L,T) matrix would grow quadratically).
 */
export function linearInterpolation(c: Ctx, path: string, x: Value, seqLen: Value): Value {
  const g = c.g;
  const op = (t: string, ins: Value[], attrs?: Record<string, number>) => g.op1(t, ins, { path, attrs });
  const i64 = (v: number) => g.constant(`${path}/i64`, BigInt64Array.of(BigInt(v)), []);
  const f32 = (v: number) => g.constant(`${path}/f32`, Float32Array.of(v), []);
  const toF = (v: Value) => op("Cast", [v], { to: DataType.FLOAT });

  const t = op("Gather", [op("Shape", [x]), i64(1)], { axis: 0 });
  const tMax = op("Sub", [t, i64(1)]);
  const lMinus1 = op("Sub", [seqLen, i64(1)]);
  const scale = op("Where", [
    op("Greater", [seqLen, i64(1)]),
    op("Div", [toF(tMax), toF(op("Max", [lMinus1, i64(1)]))]),
    f32(0),
  ]);
  const src = op("Mul", [scale, toF(op("Range", [i64(0), seqLen, i64(1)]))]);
  const i0 = op("Min", [op("Cast", [op("Floor", [src])], { to: DataType.INT64 }), tMax]);
  const i1 = op("Min", [op("Add", [i0, i64(1)]), tMax]);
  const w1 = op("Clip", [op("Sub", [src, toF(i0)]), f32(0), f32(1)]);
  const w0 = op("Sub", [f32(1), w1]);
  const col = (v: Value) => unsqueeze(c, path, v, [1]);
  const x0 = op("Mul", [op("Gather", [x, i0], { axis: 1 }), col(w0)]);
  const x1 = op("Mul", [op("Gather", [x, i1], { axis: 1 }), col(w1)]);
  return add(c, path, x0, x1, path);
}

/** `Wav2Vec2Encoder` (post-LN); returns hidden_states[0..layers] as transformers collects them. */
function encoder(c: Ctx, path: string, x: Value, cfg: Wav2Vec2Config): Value[] {
  const pos = positionalConvEmbedding(c, `${path}.pos_conv_embed`, x, cfg);
  const summed = add(c, path, x, pos);
  let h = layerNorm(c, `${path}.layer_norm`, summed, cfg.hidden_size, cfg.layer_norm_eps);
  const states = [h];
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    h = encoderLayer(c, `${path}.layers.${i}`, h, cfg);
    states.push(h);
  }
  return states;
}

/**
 * `Wav2Vec2PositionalConvEmbedding`: grouped Conv1d with weight norm over dim 2 (`weight = g * v / ||v||`, the
 * norm taken over every dim but 2), computed in-graph so `weight_g`/`weight_v` stay zero-copy; SamePad drops
 * the last frame when the kernel is even; GELU. (B,L,H) -> (B,L,H).
 */
function positionalConvEmbedding(c: Ctx, path: string, x: Value, cfg: Wav2Vec2Config): Value {
  const H = cfg.hidden_size;
  const k = cfg.num_conv_pos_embeddings;
  const groups = cfg.num_conv_pos_embedding_groups;
  const conv = `${path}.conv`;
  // torch < 2.1 (and the HF files) store weight_g/weight_v; torch >= 2.1 parametrizations store original0/1.
  const legacy = hasParam(c, conv, "weight_g") || !hasParam(c, conv, "parametrizations.weight.original0");
  const gKey = legacy ? "weight_g" : "parametrizations.weight.original0";
  const vKey = legacy ? "weight_v" : "parametrizations.weight.original1";
  const wg = param(c, conv, gKey, [1, 1, k]);
  const wv = param(c, conv, vKey, [H, H / groups, k]);
  const norm = c.g.op1("ReduceL2", [wv, c.g.ints(`${conv}/axes`, [0, 1])], {
    path: conv,
    attrs: { keepdims: 1 },
  });
  const weight = c.g.op1("Mul", [wv, c.g.op1("Div", [wg, norm], { path: conv })], {
    path: conv,
    outName: `${conv}.weight`,
  });
  const ncl = transpose(c, path, x, [0, 2, 1]);
  let h = conv1d(c, conv, ncl, { inC: H, outC: H, k, pad: Math.floor(k / 2), groups, weight });
  if (k % 2 === 0) h = slice(c, `${path}.padding`, h, [0], [-1], [2]);
  h = gelu(c, `${path}.activation`, h);
  return transpose(c, path, h, [0, 2, 1]);
}

/** `Wav2Vec2EncoderLayer`: attention + residual, layer_norm, feed-forward + residual, final_layer_norm. */
function encoderLayer(c: Ctx, path: string, x: Value, cfg: Wav2Vec2Config): Value {
  const H = cfg.hidden_size;
  const heads = cfg.num_attention_heads;
  const attn = attention(c, `${path}.attention`, x, x, {
    queryDim: H,
    heads,
    dimHead: H / heads,
    names: { q: "q_proj", k: "k_proj", v: "v_proj", out: "out_proj" },
    qkvBias: true,
  });
  const h = layerNorm(c, `${path}.layer_norm`, add(c, path, x, attn), H, cfg.layer_norm_eps);
  const ff = `${path}.feed_forward`;
  const inter = gelu(
    c,
    `${ff}.intermediate_act_fn`,
    linear(c, `${ff}.intermediate_dense`, h, H, cfg.intermediate_size),
  );
  const out = linear(c, `${ff}.output_dense`, inter, cfg.intermediate_size, H, true, ff);
  return layerNorm(c, `${path}.final_layer_norm`, add(c, path, h, out), H, cfg.layer_norm_eps, path);
}
