/**
 * The denoising UNet (hallo UNet3DConditionModel) exactly as it runs at inference: in training mode with
 * gradient checkpointing, i.e. the checkpoint branch of the 3D blocks (spec 0.1, 4.6, 5):
 * - frames folded into the batch for every spatial layer;
 * - face-locator features added after conv_in;
 * - spatial self-attention reads the reference bank (keys/values = own tokens + the bank tokens of copy
 *   `k % b`, interleaved); the CFG-uncond half attends to itself only;
 * - audio modules (masked by the level's full/face/lip masks, weighted by `motion_scale`, a graph input);
 * - motion modules over motion frames (from the bank) + frames in the CrossAttn blocks and the mid block;
 *   DownBlock3D / UpBlock3D run their resnets only.
 * The blocks are in unet_blocks_3d.ts.
 */
import type { Graph, Value, WeightSource } from "../onnx/graph.ts";
import { add, conv2d, type Ctx, groupNorm, silu, slice } from "../onnx/layers.ts";
import { rearrange, repeat } from "../onnx/rearrange.ts";
import { DataType } from "../onnx/proto.ts";
import { type AudioModuleInputs, maskColumn } from "./audio_module.ts";
import { bankInputs, bankSlots } from "./bank.ts";
import type { HalloUNetKwargs, UNetConfig } from "./unet_config.ts";
import { unetBlocks } from "./unet_blocks.ts";
import { blockTypes3D, type UNet3DCtx, UNET_3D_BLOCKS } from "./unet_blocks_3d.ts";
import { type BuildOptions, timeEmbedding, unetGraph } from "./unet_parts.ts";

export interface DenoisingUNetShape {
  /** 2 with classifier-free guidance (uncond first), 1 without. */
  batch: number;
  frames: number;
  height: number;
  width: number;
  contextTokens: number;
  audioTokens: number;
  /** Motion frames taken from the reference bank (n_motion_frames, 2 upstream). */
  motionFrames: number;
  /**
   * Batch 1 running one CFG half of the batch-2 graph per call (memory: half the activations), picked by the
   * int64 input `cfg_half` (0 uncond, 1 cond); the bank inputs keep both copies (bank.ts `readBank`).
   */
  cfgHalves?: boolean;
}

/** Graph input names of the bank, in pairing order. */
export function denoisingBankInputs(cfg: UNetConfig): string[] {
  return bankSlots(cfg).map((s) => `bank.${s.path}`);
}

/** The graph inputs besides the bank, in the layouts the blocks read. */
interface DenoisingInputs {
  sample: Value;
  timestep: Value;
  maskCondFea: Value;
  context: Value;
  audio: AudioModuleInputs;
}

/** Declares the inputs: the latents, timestep, context, audio, face features, mask pyramids, motion_scale. */
function denoisingInputs(
  c: Ctx,
  cfg: UNetConfig,
  kw: HalloUNetKwargs,
  shape: DenoisingUNetShape,
): DenoisingInputs {
  const { g } = c;
  const { batch: b, frames: f, height, width } = shape;
  const dims = { b, f, h: height, w: width };
  const sample = g.input("sample", [b, cfg.in_channels, f, height, width]);
  const timestep = g.input("timestep", [1]);
  const ctxIn = g.input("encoder_hidden_states", [b, shape.contextTokens, cfg.cross_attention_dim]);
  const audioIn = g.input("audio_embedding", [b, f, shape.audioTokens, kw.audio_attention_dim]);
  const maskCondFea = g.input("mask_cond_fea", [b, cfg.block_out_channels[0], f, height, width]);
  const masks = { full: [] as Value[], face: [] as Value[], lip: [] as Value[] };
  for (const kind of ["full", "face", "lip"] as const) {
    for (let l = 0; l < cfg.block_out_channels.length; l++) {
      const hw = Math.ceil(height / 2 ** l) * Math.ceil(width / 2 ** l);
      masks[kind].push(maskColumn(c, `${kind}_mask.${l}`, g.input(`${kind}_mask.${l}`, [b * f, hw])));
    }
  }
  const ms = g.input("motion_scale", [3]);
  const scale = [0, 1, 2].map((i) => slice(c, `motion_scale.${i}`, ms, [i], [i + 1], [0]));
  const audio: AudioModuleInputs = {
    audio: rearrange(c, "audio_embedding", audioIn, "bs f margin dim -> (bs f) margin dim", {
      bs: b,
      f,
      margin: shape.audioTokens,
      dim: kw.audio_attention_dim,
    }),
    audioDim: kw.audio_attention_dim,
    ...masks,
    scale: scale as [Value, Value, Value],
  };
  // Transformer3DModel repeats the context over frames, b-major.
  const context = repeat(c, "encoder_hidden_states", ctxIn, "b n c -> (b f) n c", {
    ...dims,
    n: shape.contextTokens,
    c: cfg.cross_attention_dim,
  });
  return { sample, timestep, maskCondFea, context, audio };
}

/** Builds the denoising UNet graph (see module doc); output `noise_pred` (B, 4, F, H, W). */
export function buildDenoisingUNet(
  cfg: UNetConfig,
  kw: HalloUNetKwargs,
  w: WeightSource,
  shape: DenoisingUNetShape,
  o: BuildOptions = {},
): Graph {
  const c = unetGraph("denoising_unet", w, o);
  const { batch, frames, motionFrames } = shape;
  if (shape.cfgHalves && batch !== 1) {
    throw new Error(`a CFG-halves denoising UNet runs batch 1, not ${batch}`);
  }
  const x = denoisingInputs(c, cfg, kw, shape);
  const bank = bankInputs(c, cfg, shape);
  const timestep = c.g.op1("Cast", [x.timestep], { path: "timestep", attrs: { to: DataType.FLOAT } });
  const temb = silu(c, "temb_act", timeEmbedding(c, cfg, timestep));
  const u: UNet3DCtx = {
    ...c,
    cfg,
    kw,
    temb,
    context: x.context,
    audio: x.audio,
    bank,
    batch,
    frames,
    motionFrames,
    cfgHalves: shape.cfgHalves,
  };
  const ch0 = cfg.block_out_channels[0];
  const dims = { b: batch, f: frames, h: shape.height, w: shape.width };
  const fold = "b c f h w -> (b f) c h w";
  const sample = rearrange(c, "sample", x.sample, fold, { ...dims, c: cfg.in_channels });
  let h = conv2d(c, "conv_in", sample, { inC: cfg.in_channels, outC: ch0, k: 3, pad: 1 });
  const face = rearrange(c, "mask_cond_fea", x.maskCondFea, fold, { ...dims, c: ch0 });
  h = add(c, "conv_in", h, face, "conv_in+mask_cond_fea");
  const out = unetBlocks(u, UNET_3D_BLOCKS, blockTypes3D(cfg), {
    h,
    size: { h: shape.height, w: shape.width },
  });
  h = groupNorm(c, "conv_norm_out", out.h, {
    channels: ch0,
    groups: cfg.norm_num_groups,
    eps: cfg.norm_eps,
    rank: 4,
  });
  h = conv2d(c, "conv_out", silu(c, "conv_act", h), { inC: ch0, outC: cfg.out_channels, k: 3, pad: 1 });
  const noisePred = rearrange(c, "noise_pred", h, "(b f) c h w -> b c f h w", {
    ...dims,
    c: cfg.out_channels,
  });
  c.g.output(noisePred, "noise_pred");
  return c.g;
}
