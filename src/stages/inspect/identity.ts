/**
 * reference -> identity: the bank-reading self-attention of the denoising UNet (`...attentions.N
 * .transformer_blocks.0.attn1.probs`, cond half) has as keys the frame's own T tokens followed by the
 * reference image's T bank tokens (`readBank` in src/models/bank.ts concatenates them in that order). How much
 * of each pixel's attention goes to the reference, which reference pixels are read, and how that share moves
 * over the clips of a long video (identity drift).
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import { meanHeads } from "./attention_mass.ts";
import { InspectError } from "./errors.ts";
import { dividedBy } from "./reduce.ts";

/** The bank share of one probe. */
export interface BankShare {
  frames: number;
  tokens: number;
  /** (F, T): `share[f, q] = sum_{k<T} P[f, q, T+k]`, the query pixel's mass on reference keys. */
  share: F32Tensor;
  /** (F, T): `received[f, k] = (1/T) sum_q P[f, q, T+k]`, so `sum_k received[f] = mean_q share[f]`. */
  received: F32Tensor;
  /** `mean_{f,q} share[f, q]`. */
  mean: number;
}

/** Bank share of a reference self-attention probe (F, [heads,] T, 2T), heads averaged. */
export function bankShare(name: string, probs: F32Tensor): BankShare {
  const P = meanHeads(name, probs);
  const T = P.queries;
  if (P.keys !== 2 * T) {
    throw new InspectError(`${name}: ${P.keys} keys, expected 2 x ${T} (own tokens, then the bank's)`);
  }
  const share = new Float32Array(P.rows * T), received = new Float64Array(P.rows * T);
  let total = 0;
  for (let f = 0; f < P.rows; f++) {
    for (let q = 0; q < T; q++) {
      const base = (f * T + q) * P.keys + T;
      let s = 0;
      for (let k = 0; k < T; k++) {
        s += P.data[base + k];
        received[f * T + k] += P.data[base + k];
      }
      share[f * T + q] = s;
      total += s;
    }
  }
  return {
    frames: P.rows,
    tokens: T,
    share: f32([P.rows, T], share),
    received: f32([P.rows, T], dividedBy(received, T)),
    mean: total / (P.rows * T),
  };
}

/** One probe of the series: a layer (module path) at a step. */
export interface BankProbe {
  layer: string;
  step: number;
  probs: F32Tensor;
}

/** The mean bank share per layer and step, in the order given. */
export function bankShareSeries(
  probes: readonly BankProbe[],
): { layer: string; step: number; mean: number }[] {
  return probes.map((p) => ({
    layer: p.layer,
    step: p.step,
    mean: bankShare(`${p.layer}@${p.step}`, p.probs).mean,
  }));
}

/** Identity drift over a long video. */
export interface IdentityDrift {
  /** Per clip: the mean of its layer-step bank shares. */
  perClip: number[];
  /** Least-squares slope of `perClip` against the clip index (share per clip); 0 for one clip. */
  slope: number;
  /** `perClip[last] - perClip[0]`. */
  change: number;
}

/** `perClip[c] = mean_n share_n(c)`, and its least-squares slope `sum (c - c̄)(y - ȳ) / sum (c - c̄)^2`. */
export function identityDrift(clips: readonly (readonly { mean: number }[])[]): IdentityDrift {
  if (!clips.length) throw new InspectError("identity drift: no clips given");
  const perClip = clips.map((c, i) => {
    if (!c.length) throw new InspectError(`identity drift: clip ${i} has no bank shares`);
    return c.reduce((a, x) => a + x.mean, 0) / c.length;
  });
  const n = perClip.length;
  const cx = (n - 1) / 2, cy = perClip.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  perClip.forEach((y, i) => {
    num += (i - cx) * (y - cy);
    den += (i - cx) ** 2;
  });
  return { perClip, slope: den ? num / den : 0, change: perClip[n - 1] - perClip[0] };
}
