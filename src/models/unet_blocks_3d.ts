/**
 * The 3D blocks of hallo's UNet3DConditionModel (unet_3d_blocks.py) as they run at inference, i.e. in the
 * gradient-checkpoint branch: CrossAttnDownBlock3D, DownBlock3D, UNetMidBlock3DCrossAttn, CrossAttnUpBlock3D,
 * UpBlock3D. After each resnet of a cross-attention block: the attention (reading the reference bank), the
 * audio module, and the motion module over the bank's motion frames + the frames. DownBlock3D / UpBlock3D run
 * their resnets only. Frames stay folded into the batch, `(b f) c h w`.
 */
import type { Value } from "../onnx/graph.ts";
import { concat, slice } from "../onnx/layers.ts";
import { rearrange } from "../onnx/rearrange.ts";
import { audioModule, type AudioModuleInputs } from "./audio_module.ts";
import { type BankEntry, readBank } from "./bank.ts";
import { motionModule } from "./motion_module.ts";
import type { HalloUNetKwargs, UNetConfig } from "./unet_config.ts";
import {
  type AttentionLayerArgs,
  downBlock,
  type DownBlockArgs,
  type DownBlockResult,
  midBlock,
  type MidBlockArgs,
  type UNetBlockSet,
  type UNetBlockTypes,
  upBlock,
  type UpBlockArgs,
  type UpBlockResult,
} from "./unet_blocks.ts";
import { basicTransformerBlock, chunked, type HW, transformer3DModel, type UNetCtx } from "./unet_parts.ts";

/** What the 3D cross-attention blocks read besides the UNet context. */
export interface UNet3DCtx extends UNetCtx {
  kw: HalloUNetKwargs;
  /** encoder_hidden_states repeated over frames, "(b f) n c". */
  context: Value;
  audio: AudioModuleInputs;
  /** The reference bank by transformer block path. */
  bank: ReadonlyMap<string, BankEntry>;
  /** CFG copies. */
  batch: number;
  frames: number;
  motionFrames: number;
  /** One CFG half of the batch-2 graph per call (batch 1): chunked into the batch-2 graph's parts. */
  cfgHalves?: boolean;
}

/** Where the layers after a resnet run: the mask level, the audio module's input channels, motion or not. */
interface LayerPlan {
  level: number;
  audioInC: number;
  motion: boolean;
}

/** The bank's motion frames of block `bp` put in front of the frames: (b*(m+f), c, h, w). */
function withMotionFrames(u: UNet3DCtx, bp: string, h: Value, c: number, s: HW): Value {
  const { batch: b, motionFrames: m, frames: f } = u;
  // Upstream: "b f (d1 d2) c -> b c f d1 d2" then cat on the frame axis; frames stay next to the batch here.
  const motion = rearrange(u, bp, u.bank.get(bp)!.motion, "b f (d1 d2) c -> b f c d1 d2", {
    b,
    f: m,
    d1: s.h,
    d2: s.w,
    c,
  });
  const frames = rearrange(u, bp, h, "(b f) c h w -> b f c h w", { b, f, c, h: s.h, w: s.w });
  const both = concat(u, bp, [motion, frames], 1);
  return rearrange(u, bp, both, "b f c h w -> (b f) c h w", { b, f: m + f, c, h: s.h, w: s.w });
}

/** `[:, :, m:]`: the frames without the motion frames. */
function dropMotionFrames(u: UNet3DCtx, path: string, h: Value, c: number, s: HW): Value {
  const { batch: b, motionFrames: m, frames: f } = u;
  const all = rearrange(u, path, h, "(b f) c h w -> b f c h w", { b, f: m + f, c, h: s.h, w: s.w });
  const frames = slice(u, path, all, [m], [m + f], [1]);
  return rearrange(u, path, frames, "b f c h w -> (b f) c h w", { b, f, c, h: s.h, w: s.w });
}

/** attentions.{i} (reading the bank) -> audio_modules.{i} -> motion_modules.{i}, the checkpoint-branch order. */
function attentionsAudioMotion(u: UNet3DCtx, a: AttentionLayerArgs, plan: LayerPlan): Value {
  const { block, index: i, channels: dim, size } = a;
  const path = `${block}.attentions.${i}`;
  const bp = `${path}.transformer_blocks.0`;
  const entry = u.bank.get(bp)!;
  const hw = size.h * size.w;
  // Per frame: the CFG halves each have `frames` rows, the fewest an attention of these modules sees. A
  // CFG-halves graph takes the batch-2 graph's part count, so each attention part is the batch-2 graph's size
  // (its bank-reading attention runs one half's rows in those parts), not twice it.
  const copies = u.cfgHalves ? 2 : u.batch;
  const uf = chunked(u, copies * u.frames, hw, dim, u.frames);
  const attn1 = (n1: Value) => readBank(uf, bp, n1, { dim, entry, batch: u.batch, frames: u.frames });
  let h = transformer3DModel(uf, path, a.h, {
    channels: dim,
    size,
    block: (tokens) => basicTransformerBlock(uf, bp, tokens, { dim, context: u.context, attn1 }),
  });
  if (u.kw.use_audio_module) {
    const innerChannels = u.cfg.attention_head_dim * Math.floor(plan.audioInC / u.cfg.attention_head_dim);
    const o = { channels: dim, innerChannels, size, level: plan.level, audio: u.audio };
    h = audioModule(uf, `${block}.audio_modules.${i}`, h, o);
  }
  if (plan.motion) {
    const mp = `${block}.motion_modules.${i}`;
    const x = withMotionFrames(u, bp, h, dim, size);
    const frames = u.motionFrames + u.frames;
    // Per spatial position: the temporal attention's batch is (b h w).
    const um = chunked(u, copies * hw, frames, dim, u.batch * hw);
    const y = motionModule(um, u.kw, mp, x, { channels: dim, size, batch: u.batch, frames });
    h = dropMotionFrames(u, mp, y, dim, size);
  }
  return h;
}

/** Motion modules run at the levels whose downscale factor is in `motion_module_resolutions`. */
const hasMotion = (kw: HalloUNetKwargs, level: number) =>
  kw.use_motion_module && kw.motion_module_resolutions.includes(2 ** level);

/** CrossAttnDownBlock3D: per layer resnet, attention, audio module, motion module; downsampler. */
export function crossAttnDownBlock3D(u: UNet3DCtx, a: DownBlockArgs): DownBlockResult {
  const level = a.spec.index;
  const motion = hasMotion(u.kw, level);
  return downBlock(u, a, (l) => attentionsAudioMotion(u, l, { level, audioInC: l.inC, motion }));
}

/** DownBlock3D: resnets (its motion modules are skipped by the checkpoint branch); downsampler. */
export function downBlock3D(u: UNetCtx, a: DownBlockArgs): DownBlockResult {
  return downBlock(u, a);
}

/** UNetMidBlock3DCrossAttn: resnet, attention, audio module, motion module, resnet. */
export function unetMidBlock3DCrossAttn(u: UNet3DCtx, a: MidBlockArgs): Value {
  const level = u.cfg.block_out_channels.length - 1;
  const motion = u.kw.use_motion_module && u.kw.motion_module_mid_block;
  return midBlock(u, a, (l) => attentionsAudioMotion(u, l, { level, audioInC: l.inC, motion }));
}

/** CrossAttnUpBlock3D: per layer cat skip, resnet, attention, audio module, motion module; upsampler. */
export function crossAttnUpBlock3D(u: UNet3DCtx, a: UpBlockArgs): UpBlockResult {
  const level = u.cfg.block_out_channels.length - 1 - a.spec.index;
  // The audio modules of an up block are built for the block's in_channels.
  const plan = { level, audioInC: a.spec.inC, motion: hasMotion(u.kw, level) };
  return upBlock(u, a, (l) => attentionsAudioMotion(u, l, plan));
}

/** UpBlock3D: cat skip, resnet per layer (motion modules skipped, as in DownBlock3D); upsampler. */
export function upBlock3D(u: UNetCtx, a: UpBlockArgs): UpBlockResult {
  return upBlock(u, a);
}

/** The 3D blocks by class name. */
export const UNET_3D_BLOCKS: UNetBlockSet<UNet3DCtx> = {
  down: { CrossAttnDownBlock3D: crossAttnDownBlock3D, DownBlock3D: downBlock3D },
  mid: unetMidBlock3DCrossAttn,
  up: { CrossAttnUpBlock3D: crossAttnUpBlock3D, UpBlock3D: upBlock3D },
};

/** hallo's `from_pretrained_2d` builds the 3D counterpart of each 2D block of the SD config. */
export function blockTypes3D(cfg: UNetConfig): UNetBlockTypes {
  const to3D = (t: string) => t.replace(/2D$/, "3D");
  return { down: cfg.down_block_types.map(to3D), up: cfg.up_block_types.map(to3D) };
}
