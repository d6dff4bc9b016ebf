/**
 * The reference-attention bank layout (mutual_self_attention.py): every spatial transformer block of
 * a UNet, in DFS order (down_blocks, up_blocks, mid_block), stably sorted by channels descending.
 * Writer and reader lists are sorted the same way and zipped, so entry i pairs same-position blocks.
 */
import { downBlocks, type UNetConfig, upBlocks } from "./unet_config.ts";

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
