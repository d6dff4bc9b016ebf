/**
 * The reference-attention bank: every entry (a transformer block's norm1 output, (batch, tokens, channels))
 * as PCA-to-RGB images, one per batch item (the reference image and the motion frames, for each CFG copy),
 * with one PCA per entry so the colours of its items compare; and per-entry channel statistics.
 */
import type { Bank, ReferenceResult } from "../stages/networks/unets.ts";
import { drawFigure } from "./draw.ts";
import { VizError, type VizFigure } from "./figure.ts";
import type { FigureSpec, Layer, PanelRow } from "./panels.ts";
import { pcaRgb } from "./pca.ts";
import { round4 } from "./plotly.ts";
import type { RgbImage } from "./raster.ts";

export interface BankFigureOptions {
  /** Latent size of the clip (image size / 8); default: square token grids. */
  latentHeight?: number;
  latentWidth?: number;
  /** Motion frames per copy (2). */
  motionFrames?: number;
  /** Side of each PCA image in pixels, both renderings (default 96). */
  cellSize?: number;
}

/** Statistics of one batch item of one entry. */
export interface BankItemStats {
  mean: number;
  std: number;
  absMax: number;
  /** Largest per-channel standard deviation over tokens. */
  maxChannelStd: number;
}

/** Token grid (h, w) of `tokens` tokens at some power-of-two downscale of the latent size. */
export function tokenGrid(tokens: number, latentH?: number, latentW?: number): [number, number] {
  if (latentH && latentW) {
    for (let s = 1; s <= 64; s *= 2) {
      const h = Math.ceil(latentH / s), w = Math.ceil(latentW / s);
      if (h * w === tokens) return [h, w];
    }
    throw new VizError(`${tokens} tokens are no downscale of a ${latentH}x${latentW} latent`);
  }
  const s = Math.round(Math.sqrt(tokens));
  if (s * s !== tokens) throw new VizError(`${tokens} tokens are not a square grid; pass the latent size`);
  return [s, s];
}

/** Batch item names: `[ref, m1, m2]` per copy, copies named uncond/cond when there are two. */
export function bankItemLabels(batch: number, motionFrames = 2): string[] {
  const per = 1 + motionFrames;
  if (batch % per !== 0) {
    throw new VizError(`bank batch ${batch} is not a multiple of 1 + ${motionFrames} images`);
  }
  const copies = batch / per;
  const names = ["ref", ...Array.from({ length: motionFrames }, (_, i) => `m${i + 1}`)];
  const copyName = (c: number) => (copies === 2 ? ["uncond", "cond"][c] : copies === 1 ? "" : `copy ${c}`);
  return Array.from({ length: batch }, (_, b) => {
    const c = copyName(Math.floor(b / per));
    return c ? `${c} ${names[b % per]}` : names[b % per];
  });
}

function itemStats(d: Float32Array, off: number, tokens: number, ch: number): BankItemStats {
  let s = 0, s2 = 0, absMax = 0, maxChannelStd = 0;
  const cs = new Float64Array(ch), cs2 = new Float64Array(ch);
  for (let t = 0; t < tokens; t++) {
    for (let c = 0; c < ch; c++) {
      const v = d[off + t * ch + c];
      s += v;
      s2 += v * v;
      cs[c] += v;
      cs2[c] += v * v;
      absMax = Math.max(absMax, Math.abs(v));
    }
  }
  for (let c = 0; c < ch; c++) {
    maxChannelStd = Math.max(maxChannelStd, Math.sqrt(Math.max(0, cs2[c] / tokens - (cs[c] / tokens) ** 2)));
  }
  const n = tokens * ch;
  return { mean: s / n, std: Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2)), absMax, maxChannelStd };
}

/** Relative L2 difference between two batch items of an entry. */
function relDiff(d: Float32Array, a: number, b: number, n: number): number {
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    num += (d[a + i] - d[b + i]) ** 2;
    den += d[b + i] ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : 0;
}

/** A short name of a bank path: the attention module (the transformer block is always 0). */
export function shortPath(path: string): string {
  return path.replace(/\.transformer_blocks\.0$/, "");
}

/** The bank figure of a reference-UNet result or a bank, described. */
export function describeBank(bank: Bank | ReferenceResult, o: BankFigureOptions = {}): FigureSpec {
  const entries = Array.isArray(bank) ? bank : bank.readerBank;
  if (entries.length === 0) throw new VizError("the bank is empty");
  const M = o.motionFrames ?? 2;
  const batch = entries[0].data.shape[0];
  const labels = bankItemLabels(batch, M);
  const cell = o.cellSize ?? 96;
  const per = 1 + M;
  const copies = batch / per;
  const rows = entries.map((e) => {
    if (e.data.shape.length !== 3 || e.data.shape[0] !== batch) {
      throw new VizError(
        `bank entry ${e.path}: expected (${batch}, tokens, channels), got [${e.data.shape}]`,
      );
    }
    const [, tokens, ch] = e.data.shape;
    const [h, w] = tokenGrid(tokens, o.latentHeight, o.latentWidth);
    const pca = pcaRgb(e.data.data, batch * tokens, ch);
    const images: RgbImage[] = labels.map((_, b) => ({
      width: w,
      height: h,
      data: pca.rgb.slice(b * tokens * 3, (b + 1) * tokens * 3),
    }));
    const stats = labels.map((_, b) => itemStats(e.data.data, b * tokens * ch, tokens, ch));
    // How much the two CFG copies differ (their contexts differ: zero vs real face embedding).
    const copyDiff = copies === 2 ? relDiff(e.data.data, 0, per * tokens * ch, tokens * ch) : null;
    return { path: e.path, tokens, ch, h, w, pca, images, stats, copyDiff };
  });

  // Entries by index (their names are long, and in the row labels).
  const idx = rows.map((_, i) => i);
  const chartRow = (title: string, yTitle: string, layers: Layer[], heading?: string): PanelRow => ({
    heading,
    panels: [{
      kind: "chart",
      title,
      span: labels.length,
      size: [Math.max(500, labels.length * (cell + 6)), 150],
      x: { title: "entry" },
      y: { title: yTitle },
      layers,
    }],
  });
  return {
    name: "bank",
    caption: "Reference bank",
    title: `Reference bank: ${rows.length} entries, batch ${batch} (${labels.join(", ")})`,
    subtitle: "one PCA per entry over all items (colours compare within a row); reader bank (fp16-rounded)",
    rows: [
      ...rows.map((r, i): PanelRow => ({
        label: `${shortPath(r.path)} (${r.ch} ch, ${r.h}x${r.w})`,
        panels: r.images.map((image, b) => ({
          kind: "image",
          title: i === 0 ? labels[b] : undefined,
          size: cell,
          layers: [{ kind: "image", name: `${shortPath(r.path)} ${labels[b]}`, image }],
        })),
      })),
      chartRow(
        "std per entry and item",
        "std",
        labels.map((l, b) => ({
          kind: "lines",
          name: l,
          x: idx,
          y: rows.map((r) => r.stats[b].std),
          markers: true,
        })),
        "Channel statistics (x: entry index, in pairing order)",
      ),
      chartRow(
        "PCA explained variance",
        "share",
        [0, 1, 2].map((j) => ({
          kind: "bars",
          name: `PC${j + 1}`,
          x: idx,
          y: rows.map((r) => r.pca.explained[j] ?? 0),
        })),
      ),
    ],
    summary: {
      entries: rows.map((r) => ({
        path: r.path,
        shape: [batch, r.tokens, r.ch],
        grid: [r.h, r.w],
        explained: r.pca.explained.map((v) => round4(v)),
        std: r.stats.map((s) => round4(s.std)),
        absMax: r.stats.map((s) => round4(s.absMax)),
        maxChannelStd: r.stats.map((s) => round4(s.maxChannelStd)),
        copyRelDiff: r.copyDiff === null ? null : round4(r.copyDiff),
      })),
      items: labels,
    },
  };
}

/** The bank figure of a reference-UNet result (its reader bank, as the denoising UNet reads it) or a bank. */
export async function bankFigure(
  bank: Bank | ReferenceResult,
  o: BankFigureOptions = {},
): Promise<VizFigure> {
  return await drawFigure(describeBank(bank, o));
}
