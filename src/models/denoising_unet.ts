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
 */
import { Graph, type Value, type WeightSource } from "../onnx/graph.ts";
import {
  add,
  attention,
  concat,
  conv2d,
  type Ctx,
  groupNorm,
  layerNorm,
  reshape,
  silu,
  slice,
  transpose,
  unsqueeze,
} from "../onnx/layers.ts";
import { DataType } from "../onnx/proto.ts";
import { type AudioConditioning, audioModule, maskColumn } from "./audio_module.ts";
import { bankSlots } from "./bank.ts";
import { motionModule } from "./motion_module.ts";
import type { BuildOptions } from "./reference_unet.ts";
import { downBlocks, type HalloUNetKwargs, type UNetConfig, upBlocks } from "./unet_config.ts";
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
}

/** Graph input names of the bank, in pairing order. */
export function denoisingBankInputs(cfg: UNetConfig): string[] {
  return bankSlots(cfg).map((s) => `bank.${s.path}`);
}

/** Builds the denoising UNet graph (see module doc); output `noise_pred` (B, 4, F, H, W). */
export function buildDenoisingUNet(
  cfg: UNetConfig,
  kw: HalloUNetKwargs,
  w: WeightSource,
  shape: DenoisingUNetShape,
  o: BuildOptions = {},
): Graph {
  const g = new Graph("denoising_unet", o.dtype ?? "float32");
  const c: Ctx = {
    g,
    w,
    prefix: o.prefix ?? "denoising_unet.",
    attention: o.attention ?? "fused",
    attentionProbes: o.attentionProbes,
  };
  const { batch: B, frames: F, motionFrames: M } = shape;
  const N = B * F;
  const levels = cfg.block_out_channels.length;
  const ch0 = cfg.block_out_channels[0];
  const fold = (x: Value, ch: number, h: number, wd: number, path: string) =>
    reshape(c, path, transpose(c, path, x, [0, 2, 1, 3, 4]), [N, ch, h, wd]);

  const sampleIn = g.input("sample", [B, cfg.in_channels, F, shape.height, shape.width]);
  const t = g.input("timestep", [1]);
  const ctxIn = g.input("encoder_hidden_states", [B, shape.contextTokens, cfg.cross_attention_dim]);
  const audioIn = g.input("audio_embedding", [B, F, shape.audioTokens, kw.audio_attention_dim]);
  const faceFea = g.input("mask_cond_fea", [B, ch0, F, shape.height, shape.width]);
  const masks = { full: [] as Value[], face: [] as Value[], lip: [] as Value[] };
  for (const kind of ["full", "face", "lip"] as const) {
    for (let l = 0; l < levels; l++) {
      const hw = Math.ceil(shape.height / 2 ** l) * Math.ceil(shape.width / 2 ** l);
      masks[kind].push(maskColumn(c, `${kind}_mask.${l}`, g.input(`${kind}_mask.${l}`, [N, hw])));
    }
  }
  const ms = g.input("motion_scale", [3]);
  const scale = [0, 1, 2].map((i) => slice(c, `motion_scale.${i}`, ms, [i], [i + 1], [0])) as [
    Value,
    Value,
    Value,
  ];
  const a: AudioConditioning = {
    audio: reshape(c, "audio_embedding", audioIn, [N, shape.audioTokens, kw.audio_attention_dim]),
    audioDim: kw.audio_attention_dim,
    ...masks,
    scale,
  };
  // Transformer3DModel repeats the context b-major over frames: "(b f) n c".
  const ctx = reshape(
    c,
    "encoder_hidden_states",
    c.g.op1("Expand", [
      unsqueeze(c, "encoder_hidden_states", ctxIn, [1]),
      c.g.ints("ctx_shape", [B, F, 1, 1]),
    ], {
      path: "encoder_hidden_states",
    }),
    [N, shape.contextTokens, cfg.cross_attention_dim],
  );

  // The bank as the reader sees it: (b*(1+M), l, c) viewed (b, 1+M, l, c).
  const bank = new Map<string, { ref: Value; motion: Value }>();
  for (const slot of bankSlots(cfg)) {
    const hw = Math.ceil(shape.height / slot.scale) * Math.ceil(shape.width / slot.scale);
    const name = `bank.${slot.path}`;
    const x = reshape(c, name, g.input(name, [B * (1 + M), hw, slot.channels]), [
      B,
      1 + M,
      hw,
      slot.channels,
    ]);
    const ref = reshape(c, name, slice(c, name, x, [0], [1], [1]), [B, hw, slot.channels]);
    const motion = slice(c, name, x, [1], [1 + M], [1]);
    bank.set(slot.path, { ref, motion });
  }

  /** TemporalBasicTransformerBlock in read mode; returns the block output and its motion-frame features. */
  const readerBlock = (path: string, x: Value, dim: number): Value => {
    const n1 = layerNorm(c, `${path}.norm1`, x, dim, 1e-5);
    const { ref } = bank.get(path)!;
    const hd = { queryDim: dim, ...heads(cfg, dim) };
    // Rows k read copy k % b ("(b s) l c" [:,0] .repeat(1, F, 1, 1) on a 3-D tensor interleaves).
    const condStart = B === 2 ? F : 0;
    const rows = Array.from({ length: N - condStart }, (_, i) => (condStart + i) % B);
    const bankRows = c.g.op1("Gather", [ref, c.g.ints(`${path}.bank_rows`, rows)], {
      path,
      attrs: { axis: 0 },
    });
    const nCond = condStart ? slice(c, path, n1, [condStart], [N], [0]) : n1;
    const kv = concat(c, path, [nCond, bankRows], 1);
    // Built first so a probe of attn1 names the reference-reading half `${path}.attn1.probs` (keys: own tokens,
    // then the bank's); the uncond half's probabilities, if probed, come out as `...probs#1`.
    const cond = attention(c, `${path}.attn1`, nCond, kv, hd);
    let h: Value;
    if (condStart) {
      // The uncond half gets plain self-attention, no reference tokens.
      const nU = slice(c, path, n1, [0], [condStart], [0]);
      h = add(c, path, concat(c, path, [attention(c, `${path}.attn1`, nU, nU, hd), cond], 0), x);
    } else {
      h = add(c, path, cond, x);
    }
    return crossAndFeedForward(c, cfg, path, h, dim, ctx);
  };

  const transformer = (path: string, x: Value, ch: number, s: HW) =>
    spatialTransformer(
      c,
      cfg,
      path,
      x,
      ch,
      ch,
      s,
      (tok) => readerBlock(`${path}.transformer_blocks.0`, tok, ch),
    );

  /** Motion frames of a reader block as (B, M, C, H, W), concatenated in front of the frames. */
  const withMotionFrames = (blockPath: string, h: Value, ch: number, s: HW): Value => {
    const { motion } = bank.get(blockPath)!;
    const m = reshape(c, blockPath, transpose(c, blockPath, motion, [0, 1, 3, 2]), [B, M, ch, s.h, s.w]);
    return reshape(
      c,
      blockPath,
      concat(c, blockPath, [m, reshape(c, blockPath, h, [B, F, ch, s.h, s.w])], 1),
      [
        B * (M + F),
        ch,
        s.h,
        s.w,
      ],
    );
  };
  const dropMotionFrames = (path: string, h: Value, ch: number, s: HW): Value =>
    reshape(c, path, slice(c, path, reshape(c, path, h, [B, M + F, ch, s.h, s.w]), [M], [M + F], [1]), [
      N,
      ch,
      s.h,
      s.w,
    ]);

  /** resnet -> attention (bank) -> audio module -> motion module, the checkpoint-branch order. */
  const crossLayer = (
    p: string,
    i: number,
    h: Value,
    ch: number,
    audioInner: number,
    s: HW,
    level: number,
    withMotion: boolean,
  ): Value => {
    h = transformer(`${p}.attentions.${i}`, h, ch, s);
    if (kw.use_audio_module) {
      h = audioModule(c, cfg, `${p}.audio_modules.${i}`, h, ch, audioInner, s, level, a);
    }
    if (withMotion) {
      const x = withMotionFrames(`${p}.attentions.${i}.transformer_blocks.0`, h, ch, s);
      const y = motionModule(c, kw, `${p}.motion_modules.${i}`, x, ch, s, B, M + F);
      h = dropMotionFrames(`${p}.motion_modules.${i}`, y, ch, s);
    }
    return h;
  };
  const hasMotion = (res: number) => kw.use_motion_module && kw.motion_module_resolutions.includes(res);
  const audioInnerOf = (inC: number) => cfg.attention_head_dim * Math.floor(inC / cfg.attention_head_dim);

  const temb = timeEmbedding(
    c,
    cfg,
    c.g.op1("Cast", [t], { path: "timestep", attrs: { to: DataType.FLOAT } }),
  );
  const tembAct = silu(c, "temb_act", temb);
  let s: HW = { h: shape.height, w: shape.width };
  let h = conv2d(c, "conv_in", fold(sampleIn, cfg.in_channels, s.h, s.w, "sample"), {
    inC: cfg.in_channels,
    outC: ch0,
    k: 3,
    pad: 1,
  });
  h = add(c, "conv_in", h, fold(faceFea, ch0, s.h, s.w, "mask_cond_fea"), "conv_in+mask_cond_fea");
  const skips: Value[] = [h];
  for (const d of downBlocks(cfg)) {
    const p = `down_blocks.${d.index}`;
    for (let i = 0; i < cfg.layers_per_block; i++) {
      const inC = i === 0 ? d.inC : d.outC;
      h = resnet(c, cfg, `${p}.resnets.${i}`, h, tembAct, inC, d.outC);
      if (d.cross) h = crossLayer(p, i, h, d.outC, audioInnerOf(inC), s, d.index, hasMotion(2 ** d.index));
      skips.push(h);
    }
    if (d.downsample) {
      h = downsample(c, cfg, `${p}.downsamplers.0`, h, d.outC);
      s = { h: Math.ceil(s.h / 2), w: Math.ceil(s.w / 2) };
      skips.push(h);
    }
  }
  const top = cfg.block_out_channels[levels - 1];
  h = resnet(c, cfg, "mid_block.resnets.0", h, tembAct, top, top);
  h = crossLayer(
    "mid_block",
    0,
    h,
    top,
    audioInnerOf(top),
    s,
    levels - 1,
    kw.use_motion_module && kw.motion_module_mid_block,
  );
  h = resnet(c, cfg, "mid_block.resnets.1", h, tembAct, top, top);
  for (const u of upBlocks(cfg)) {
    const p = `up_blocks.${u.index}`;
    for (let i = 0; i < cfg.layers_per_block + 1; i++) {
      const skipC = i === cfg.layers_per_block ? u.inC : u.outC;
      h = concat(c, p, [h, skips.pop()!], 1);
      h = resnet(c, cfg, `${p}.resnets.${i}`, h, tembAct, (i === 0 ? u.prevC : u.outC) + skipC, u.outC);
      if (u.cross) {
        const level = levels - 1 - u.index;
        h = crossLayer(p, i, h, u.outC, audioInnerOf(u.inC), s, level, hasMotion(2 ** level));
      }
    }
    if (u.upsample) {
      h = upsample(c, `${p}.upsamplers.0`, h, u.outC);
      s = { h: s.h * 2, w: s.w * 2 };
    }
  }
  h = groupNorm(c, "conv_norm_out", h, {
    channels: ch0,
    groups: cfg.norm_num_groups,
    eps: cfg.norm_eps,
    rank: 4,
  });
  h = conv2d(c, "conv_out", silu(c, "conv_act", h), { inC: ch0, outC: cfg.out_channels, k: 3, pad: 1 });
  const out = transpose(c, "noise_pred", reshape(c, "noise_pred", h, [B, F, cfg.out_channels, s.h, s.w]), [
    0,
    2,
    1,
    3,
    4,
  ]);
  g.output(out, "noise_pred");
  return g;
}
