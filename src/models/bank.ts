/**
 * The reference-attention bank layout (mutual_self_attention.py): every spatial transformer block of
 * a UNet, in DFS order (down_blocks, up_blocks, mid_block), stably sorted by channels descending.
 * Writer and reader lists are sorted the same way and zipped, so entry i pairs same-position blocks.
 * Also the attn1 forwards ReferenceAttentionControl installs: `writeBank` (reference UNet) and `readBank`
 * (denoising UNet), and the reader's bank inputs.
 */
import type { Value } from "../onnx/graph.ts";
import { attention, concat, type Ctx, reshape, slice } from "../onnx/layers.ts";
import { rearrange } from "../onnx/rearrange.ts";
import { DataType } from "../onnx/proto.ts";
import { downBlocks, type UNetConfig, upBlocks } from "./unet_config.ts";
import { heads, type UNetCtx } from "./unet_parts.ts";

export interface BankSlot {
  /** Module path of the transformer block, e.g. `down_blocks.2.attentions.0.transformer_blocks.0`. */
  path: string;
  channels: number;
  /** Latent downscale factor of the block (1, 2, 4, 8): tokens = (H/f)*(W/f). */
  scale: number;
}

export function bankSlots(cfg: UNetConfig): BankSlot[] {
  const dfs: BankSlot[] = [];
  const L = cfg.layers_per_block;
  for (const d of downBlocks(cfg)) {
    if (!d.cross) continue;
    for (let i = 0; i < L; i++) {
      dfs.push({
        path: `down_blocks.${d.index}.attentions.${i}.transformer_blocks.0`,
        channels: d.outC,
        scale: 2 ** d.index,
      });
    }
  }
  const n = cfg.block_out_channels.length;
  for (const u of upBlocks(cfg)) {
    if (!u.cross) continue;
    for (let i = 0; i < L + 1; i++) {
      dfs.push({
        path: `up_blocks.${u.index}.attentions.${i}.transformer_blocks.0`,
        channels: u.outC,
        scale: 2 ** (n - 1 - u.index),
      });
    }
  }
  const top = cfg.block_out_channels[n - 1];
  dfs.push({ path: "mid_block.attentions.0.transformer_blocks.0", channels: top, scale: 2 ** (n - 1) });
  // Array.prototype.sort is stable, as torch's sorted() is.
  return dfs.map((s, i) => ({ s, i })).sort((a, b) => b.s.channels - a.s.channels || a.i - b.i).map((x) =>
    x.s
  );
}

// ---------------------------------------------------------------- ReferenceAttentionControl's attn1 forwards

/**
 * "write" (mutual_self_attention.py): the bank entry is norm1's output, a graph output named `<block>.norm1`;
 * attn1 is then plain self-attention.
 */
export function writeBank(u: UNetCtx, path: string, norm1: Value, dim: number): Value {
  u.g.output(norm1);
  return attention(u, `${path}.attn1`, norm1, norm1, { queryDim: dim, ...heads(u.cfg, dim) });
}

/** One bank entry as the reader sees it. */
export interface BankEntry {
  /** `[:, 0]`: the reference image's tokens per CFG copy, (b, l, c) (both copies in a CFG-halves graph). */
  ref: Value;
  /** `[:, 1:]`: the motion frames' tokens, (b, m, l, c) (the running half's copy in a CFG-halves graph). */
  motion: Value;
  /** CFG-halves graph: the `cfg_half` input (int64 (1,): 0 uncond, 1 cond). */
  half?: Value;
  /** Tokens per frame (l). */
  tokens: number;
}

/** Geometry of the reader's bank inputs. */
export interface BankShape {
  /** CFG copies (2 with CFG). */
  batch: number;
  motionFrames: number;
  height: number;
  width: number;
  /**
   * One CFG half of a batch-2 run per call: the graph runs batch 1, reads the whole 2-copy bank, and the graph
   * input `cfg_half` (int64 (1,): 0 uncond, 1 cond) picks the half (see `readBank`).
   */
  cfgHalves?: boolean;
}

/**
 * Declares the bank graph inputs `bank.<block path>`, each (b*(1+m), l, c) as the writer produced it, and splits
 * them into the reference tokens and the motion frames, keyed by block path.
 */
export function bankInputs(c: Ctx, cfg: UNetConfig, shape: BankShape): Map<string, BankEntry> {
  const { motionFrames: m } = shape;
  // A CFG-halves graph is fed the bank of both copies, as the batch-2 graph is.
  const b = shape.cfgHalves ? 2 : shape.batch;
  const half = shape.cfgHalves ? c.g.input("cfg_half", [1], DataType.INT64) : undefined;
  const bank = new Map<string, BankEntry>();
  for (const slot of bankSlots(cfg)) {
    const l = Math.ceil(shape.height / slot.scale) * Math.ceil(shape.width / slot.scale);
    const name = `bank.${slot.path}`;
    const input = c.g.input(name, [b * (1 + m), l, slot.channels]);
    const x = rearrange(c, name, input, "(b s) l c -> b s l c", { b, s: 1 + m, l, c: slot.channels });
    const ref = reshape(c, name, slice(c, name, x, [0], [1], [1]), [b, l, slot.channels]);
    const motion = slice(c, name, x, [1], [1 + m], [1]);
    if (!half) {
      bank.set(slot.path, { ref, motion, tokens: l });
      continue;
    }
    // The running half's motion frames: copy `cfg_half`, as the batch-2 graph gives that half.
    const own = c.g.op1("Gather", [motion, half], { path: name, attrs: { axis: 0 } });
    bank.set(slot.path, { ref, motion: own, half, tokens: l });
  }
  return bank;
}

/** What the reader's attn1 needs besides norm1's output. */
export interface ReadBankOptions {
  dim: number;
  entry: BankEntry;
  /** CFG copies; with 2 the first (uncond) half attends to itself only. */
  batch: number;
  frames: number;
}

/**
 * attn1 of a CFG-halves graph (batch 1, `entry.half` set): keys/values are the batch-2 graph's for the running
 * half, cut at run time by `cfg_half`: the cond half's own tokens then the bank rows the batch-2 graph's cond
 * rows read (copy `(f + i) % 2`, the interleave of `readBank`), the uncond half's own tokens alone (plain
 * self-attention). The same ops on the same values as the batch-2 graph's half, so the same numbers.
 */
function readBankHalf(u: UNetCtx, path: string, norm1: Value, o: ReadBankOptions, half: Value): Value {
  const f = o.frames;
  const rows = Array.from({ length: f }, (_, i) => (f + i) % 2);
  const bankRows = u.g.op1("Gather", [o.entry.ref, u.g.ints(`${path}.bank_rows`, rows)], {
    path,
    attrs: { axis: 0 },
  });
  const both = concat(u, path, [norm1, bankRows], 1);
  // Keys end after the own tokens (uncond, cfg_half 0) or after the bank's too (cond, cfg_half 1).
  const l = o.entry.tokens;
  const end = u.g.op1("Add", [
    u.g.op1("Mul", [half, u.g.ints(`${path}.bank_tokens`, [l])], { path }),
    u.g.ints(`${path}.own_tokens`, [l]),
  ], { path });
  const kv = u.g.op1("Slice", [
    both,
    u.g.ints(`${path}.kv_start`, [0]),
    end,
    u.g.ints(`${path}.kv_axis`, [1]),
  ], {
    path,
  });
  return attention(u, `${path}.attn1`, norm1, kv, { queryDim: o.dim, ...heads(u.cfg, o.dim) });
}

/**
 * "read": keys/values are the block's own tokens followed by the bank's. Row k reads copy `k % b` (upstream's
 * `[:, 0].repeat(1, f, 1, 1)` on a 3-D tensor interleaves); with CFG the uncond half gets plain self-attention.
 */
export function readBank(u: UNetCtx, path: string, norm1: Value, o: ReadBankOptions): Value {
  if (o.entry.half) return readBankHalf(u, path, norm1, o, o.entry.half);
  const { batch: b, frames: f } = o;
  const n = b * f;
  const hd = { queryDim: o.dim, ...heads(u.cfg, o.dim) };
  const condStart = b === 2 ? f : 0;
  const rows = Array.from({ length: n - condStart }, (_, i) => (condStart + i) % b);
  const bankRows = u.g.op1("Gather", [o.entry.ref, u.g.ints(`${path}.bank_rows`, rows)], {
    path,
    attrs: { axis: 0 },
  });
  const nCond = condStart ? slice(u, path, norm1, [condStart], [n], [0]) : norm1;
  const kv = concat(u, path, [nCond, bankRows], 1);
  // Built first so a probe of attn1 names the reference-reading half `${path}.attn1.probs` (keys: own tokens,
  // then the bank's); the uncond half's probabilities, if probed, come out as `...probs#1`.
  const cond = attention(u, `${path}.attn1`, nCond, kv, hd);
  if (!condStart) return cond;
  const nU = slice(u, path, norm1, [0], [condStart], [0]);
  return concat(u, path, [attention(u, `${path}.attn1`, nU, nU, hd), cond], 0);
}
