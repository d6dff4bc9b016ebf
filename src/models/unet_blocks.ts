/**
 * The block structure both UNets share: the down, mid and up blocks of diffusers' UNet2DConditionModel and
 * hallo's UNet3DConditionModel, and the forward loop that runs them. A family (unet_blocks_2d.ts,
 * unet_blocks_3d.ts) names its blocks after upstream's classes and gives each cross-attention block the layers
 * that follow every resnet.
 */
import { GraphBuildError, type Value } from "../onnx/graph.ts";
import { concat } from "../onnx/layers.ts";
import { downBlocks, type DownSpec, upBlocks, type UpSpec } from "./unet_config.ts";
import { downsample2D, type HW, resnetBlock2D, type UNetCtx, upsample2D } from "./unet_parts.ts";

/** The input of a down block. */
export interface DownBlockArgs {
  spec: DownSpec;
  h: Value;
  size: HW;
}

/** A down block's output: `h`, its `output_states` (each layer's output, then the downsampler's) and size. */
export interface DownBlockResult {
  h: Value;
  skips: Value[];
  size: HW;
}

/** The input of the mid block. */
export interface MidBlockArgs {
  h: Value;
  size: HW;
}

/** The input of an up block; `resHiddenStates` is its `res_hidden_states_tuple`, consumed from the end. */
export interface UpBlockArgs {
  spec: UpSpec;
  h: Value;
  resHiddenStates: readonly Value[];
  size: HW;
}

/** An up block's output. */
export interface UpBlockResult {
  h: Value;
  size: HW;
}

/** Where the layers after resnet `index` of a cross-attention block run. */
export interface AttentionLayerArgs {
  /** Module path of the block: `down_blocks.1`, `mid_block`, `up_blocks.2`. */
  block: string;
  index: number;
  h: Value;
  /** Input channels of the resnet before. */
  inC: number;
  channels: number;
  size: HW;
}

/** The layers after each resnet of a cross-attention block (attention; in 3D, audio and motion modules too). */
export type AttentionLayer = (a: AttentionLayerArgs) => Value;

/** Down blocks: resnet (+ `attention`) per layer, then Downsample2D except at the last level. */
export function downBlock(u: UNetCtx, a: DownBlockArgs, attention?: AttentionLayer): DownBlockResult {
  const { spec } = a;
  const block = `down_blocks.${spec.index}`;
  let { h, size } = a;
  const skips: Value[] = [];
  for (let i = 0; i < u.cfg.layers_per_block; i++) {
    const inC = i === 0 ? spec.inC : spec.outC;
    h = resnetBlock2D(u, `${block}.resnets.${i}`, h, { inC, outC: spec.outC });
    if (attention) h = attention({ block, index: i, h, inC, channels: spec.outC, size });
    skips.push(h);
  }
  if (spec.downsample) {
    h = downsample2D(u, `${block}.downsamplers.0`, h, spec.outC);
    size = { h: Math.ceil(size.h / 2), w: Math.ceil(size.w / 2) };
    skips.push(h);
  }
  return { h, skips, size };
}

/** Mid blocks: resnets.0, the attention layer, resnets.1. */
export function midBlock(u: UNetCtx, a: MidBlockArgs, attention: AttentionLayer): Value {
  const top = u.cfg.block_out_channels[u.cfg.block_out_channels.length - 1];
  const io = { inC: top, outC: top };
  let h = resnetBlock2D(u, "mid_block.resnets.0", a.h, io);
  h = attention({ block: "mid_block", index: 0, h, inC: top, channels: top, size: a.size });
  return resnetBlock2D(u, "mid_block.resnets.1", h, io);
}

/** Up blocks: per layer cat([h, skip]), resnet (+ `attention`), then Upsample2D except at the last level. */
export function upBlock(u: UNetCtx, a: UpBlockArgs, attention?: AttentionLayer): UpBlockResult {
  const { spec } = a;
  const L = u.cfg.layers_per_block;
  const block = `up_blocks.${spec.index}`;
  const res = [...a.resHiddenStates];
  let { h, size } = a;
  for (let i = 0; i < L + 1; i++) {
    const inC = (i === 0 ? spec.prevC : spec.outC) + (i === L ? spec.inC : spec.outC);
    h = concat(u, block, [h, res.pop()!], 1);
    h = resnetBlock2D(u, `${block}.resnets.${i}`, h, { inC, outC: spec.outC });
    if (attention) h = attention({ block, index: i, h, inC, channels: spec.outC, size });
  }
  if (spec.upsample) {
    h = upsample2D(u, `${block}.upsamplers.0`, h, spec.outC);
    size = { h: size.h * 2, w: size.w * 2 };
  }
  return { h, size };
}

/** A family's blocks by upstream class name, as `get_down_block` / `get_up_block` pick them. */
export interface UNetBlockSet<U extends UNetCtx> {
  down: Readonly<Record<string, (u: U, a: DownBlockArgs) => DownBlockResult>>;
  mid: (u: U, a: MidBlockArgs) => Value;
  up: Readonly<Record<string, (u: U, a: UpBlockArgs) => UpBlockResult>>;
}

/** Block class names per level, as in the UNet config's `down_block_types` / `up_block_types`. */
export interface UNetBlockTypes {
  down: readonly string[];
  up: readonly string[];
}

function pick<F>(blocks: Readonly<Record<string, F>>, type: string | undefined, kind: string): F {
  const f = type === undefined ? undefined : blocks[type];
  if (!f) {
    throw new GraphBuildError(
      `UNet ${kind} block type '${type}' is not supported (supported: ${Object.keys(blocks).join(", ")})`,
    );
  }
  return f;
}

/**
 * The UNet forward from conv_in's output to the last up block's: the down blocks (conv_in's output and every
 * down block's output_states kept as skips), the mid block, the up blocks (each taking its resnets' count of
 * skips from the end).
 */
export function unetBlocks<U extends UNetCtx>(
  u: U,
  blocks: UNetBlockSet<U>,
  types: UNetBlockTypes,
  a: MidBlockArgs,
): { h: Value; size: HW } {
  const down = downBlocks(u.cfg).map((spec) => ({
    spec,
    block: pick(blocks.down, types.down[spec.index], "down"),
  }));
  const up = upBlocks(u.cfg).map((spec) => ({ spec, block: pick(blocks.up, types.up[spec.index], "up") }));
  let { h, size } = a;
  const skips: Value[] = [h];
  for (const { spec, block } of down) {
    const r = block(u, { spec, h, size });
    ({ h, size } = r);
    skips.push(...r.skips);
  }
  h = blocks.mid(u, { h, size });
  for (const { spec, block } of up) {
    const resHiddenStates = skips.splice(skips.length - (u.cfg.layers_per_block + 1));
    ({ h, size } = block(u, { spec, h, resHiddenStates, size }));
  }
  return { h, size };
}
