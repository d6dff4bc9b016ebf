/**
 * Classifier-free guidance one half at a time: the batch-2 denoising UNet call split into its uncond and cond
 * halves for a batch-1 graph built with `cfgHalves` (half the activations, so a step fits in less memory).
 * Every layer of the UNet is per batch element, so the halves give the batch-2 numbers up to float rounding.
 */
import { bankSlots } from "../../models/bank.ts";
import type { UNetConfig } from "../../models/unet_config.ts";
import { f32, type F32Tensor, type Tensor } from "../../tensor.ts";

/** Rows `[half * n, (half + 1) * n)` of a tensor whose axis 0 is `2 * n` rows, uncond first. */
export function halfRows(t: F32Tensor, half: 0 | 1): F32Tensor {
  if (t.shape[0] % 2 !== 0) throw new Error(`cannot split ${t.shape[0]} rows into two CFG halves`);
  const n = t.data.length / 2;
  return f32([t.shape[0] / 2, ...t.shape.slice(1)], t.data.slice(half * n, (half + 1) * n));
}

/** torch.cat([uncond, cond]) along axis 0. */
function catRows(u: Tensor, c: Tensor): Tensor {
  const data = new Float32Array(u.data.length + c.data.length);
  data.set(u.data as Float32Array, 0);
  data.set(c.data as Float32Array, u.data.length);
  return { dtype: "float32", shape: [u.shape[0] + c.shape[0], ...u.shape.slice(1)], data };
}

/**
 * The outputs of the two half calls as the batch-2 graph names and lays them out: every output concatenated
 * [uncond, cond] along axis 0, except the bank readers' self-attention probabilities, which the batch-2 graph
 * gives per half (the cond half's as `<block>.attn1.probs`, the uncond half's as `...probs#1`: their keys
 * differ, own and bank tokens vs own tokens).
 */
export function mergeHalves(
  cfg: UNetConfig,
  uncond: Readonly<Record<string, Tensor>>,
  cond: Readonly<Record<string, Tensor>>,
): Record<string, Tensor> {
  const readers = new Set(bankSlots(cfg).map((s) => `${s.path}.attn1.probs`));
  const out: Record<string, Tensor> = {};
  for (const [k, c] of Object.entries(cond)) {
    const u = uncond[k];
    if (readers.has(k)) {
      out[k] = c;
      if (u) out[`${k}#1`] = u;
    } else out[k] = u ? catRows(u, c) : c;
  }
  for (const [k, u] of Object.entries(uncond)) if (!(k in cond)) out[k] = u;
  return out;
}
