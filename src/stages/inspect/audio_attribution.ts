/**
 * audio -> pixels, DAAM-style, for one audio-attention branch (full / face / lip = `attn2_0/1/2` of the audio
 * modules): where each audio token of each video frame lands on the latent grid, aggregated over layers,
 * heads and steps, and weighted by what the branch lets through (its mask and its motion_scale weight).
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import { condRowStart, meanHeads } from "./attention_mass.ts";
import { InspectError } from "./errors.ts";
import { levelGrid, upsampleIndex } from "./grid.ts";
import { dividedBy } from "./reduce.ts";

/** The three audio cross-attention branches, in `attn2_{i}` / `motion_scale` order. */
export const AUDIO_BRANCHES = ["full", "face", "lip"] as const;
export type AudioBranch = typeof AUDIO_BRANCHES[number];

/** The probe name of a branch of an audio module's block, e.g. `down_blocks.0.audio_modules.0.transformer_blocks.0`. */
export function audioBranchSite(block: string, branch: AudioBranch): string {
  return `${block}.attn2_${AUDIO_BRANCHES.indexOf(branch)}.probs`;
}

/** One layer's probe of the branch at one step. */
export interface AudioLayerProbe {
  /** `...attn2_{i}.probs`: (copies*F, [heads,] T, A); with guidance the cond rows are the last F. */
  probs: F32Tensor;
  /** The branch's mask at this layer's level, as the UNet is fed (`lip_mask.<level>`): (rows, T), (F, T) or (1, T). */
  mask: F32Tensor;
}

/** Where the maps go and what the branch is weighted by. */
export interface AudioAttributionOptions {
  frames: number;
  /** Latent grid the maps are upsampled to. */
  height: number;
  width: number;
  /** The branch's `motion_scale` entry (default 1). */
  weight?: number;
}

/** Where each audio token of each frame lands. */
export interface AudioAttribution {
  frames: number;
  tokens: number;
  height: number;
  width: number;
  /** (F, A, H, W): see `audioAttribution`. */
  maps: F32Tensor;
  /** (F, A): each token's map averaged over pixels: how much of the branch each token drives. */
  tokenShare: F32Tensor;
  /** Per frame, the sum of `tokenShare` over tokens: the branch's mean weighted mass on that frame. */
  total: number[];
}

function maskRow(
  name: string,
  mask: F32Tensor,
  rows: number,
  frames: number,
  row: number,
  f: number,
): number {
  const r = mask.shape.length === 2 ? mask.shape[0] : 0;
  if (r !== 1 && r !== rows && r !== frames) {
    throw new InspectError(
      `${name}: mask [${mask.shape}] is not (rows, T), (F, T) or (1, T) for ${rows} rows`,
    );
  }
  return r === 1 ? 0 : r === rows ? row : f;
}

/**
 * `M[f, a, y, x] = (1/N) sum_n w * m_n[f, u_n(y, x)] * mean_h P_n[f, h, u_n(y, x), a]` over the N layer-step
 * probes, with P_n the cond rows of probe n, m_n its branch mask, u_n the nearest-upsampling index from the
 * layer's grid to the latent grid and w the branch weight. Identical audio tokens give `M = w m / A`; a zero
 * mask or weight gives 0.
 */
export function audioAttribution(
  probes: readonly AudioLayerProbe[],
  o: AudioAttributionOptions,
): AudioAttribution {
  if (!probes.length) throw new InspectError("audio attribution: no probes given");
  const { frames: F, height: H, width: W } = o;
  const w = o.weight ?? 1;
  const A = probes[0].probs.shape[probes[0].probs.shape.length - 1];
  const HW = H * W;
  const acc = new Float64Array(F * A * HW);
  probes.forEach((p, n) => {
    const name = `audio attribution probe ${n}`;
    const P = meanHeads(name, p.probs);
    if (P.keys !== A) throw new InspectError(`${name}: ${P.keys} audio tokens, the first probe has ${A}`);
    const first = condRowStart(name, P.rows, F);
    const up = upsampleIndex(levelGrid(name, P.queries, H, W), H, W);
    if (p.mask.shape[p.mask.shape.length - 1] !== P.queries) {
      throw new InspectError(`${name}: mask [${p.mask.shape}] does not have ${P.queries} tokens`);
    }
    for (let f = 0; f < F; f++) {
      const row = first + f;
      const mrow = maskRow(name, p.mask, P.rows, F, row, f);
      for (let px = 0; px < HW; px++) {
        const q = up[px];
        const m = w * p.mask.data[mrow * P.queries + q];
        if (m === 0) continue;
        const base = (row * P.queries + q) * A;
        for (let a = 0; a < A; a++) acc[(f * A + a) * HW + px] += m * P.data[base + a];
      }
    }
  });
  const maps = f32([F, A, H, W], dividedBy(acc, probes.length));
  const share = new Float32Array(F * A);
  const total: number[] = [];
  for (let f = 0; f < F; f++) {
    let t = 0;
    for (let a = 0; a < A; a++) {
      let s = 0;
      for (let px = 0; px < HW; px++) s += acc[(f * A + a) * HW + px];
      share[f * A + a] = s / (HW * probes.length);
      t += s / (HW * probes.length);
    }
    total.push(t);
  }
  return { frames: F, tokens: A, height: H, width: W, maps, tokenShare: f32([F, A], share), total };
}
