/**
 * The masked mean both the guidance and the occlusion measures reduce to: per frame, the mask-weighted mean
 * absolute difference of two (1, C, F, H, W) tensors (latents or video), the mask given per pixel.
 */
import type { F32Tensor } from "../../tensor.ts";
import { InspectError } from "./errors.ts";

/**
 * `v[f] = sum_{c,p} w_p |a[c, f, p] - b[c, f, p]| / (C sum_p w_p)`, one value per frame; NaN when the mask
 * has no weight. `weights` has H*W values (e.g. a mask pyramid level, or `maskWeights(...).weights`).
 */
export function regionMeanAbsDiff(name: string, a: F32Tensor, b: F32Tensor, weights: Float32Array): number[] {
  if (a.shape.length !== 5 || a.shape[0] !== 1) {
    throw new InspectError(`${name}: expected (1, C, F, H, W), got [${a.shape}]`);
  }
  if (a.shape.join() !== b.shape.join()) {
    throw new InspectError(`${name}: shapes [${a.shape}] and [${b.shape}] differ`);
  }
  const [, C, F, H, W] = a.shape;
  const P = H * W;
  if (weights.length !== P) {
    throw new InspectError(`${name}: mask has ${weights.length} values, a frame ${P}`);
  }
  let wsum = 0;
  for (let p = 0; p < P; p++) wsum += weights[p];
  const out: number[] = [];
  for (let f = 0; f < F; f++) {
    let s = 0;
    for (let c = 0; c < C; c++) {
      const base = (c * F + f) * P;
      for (let p = 0; p < P; p++) {
        if (weights[p] !== 0) s += weights[p] * Math.abs(a.data[base + p] - b.data[base + p]);
      }
    }
    out.push(wsum > 0 ? s / (C * wsum) : NaN);
  }
  return out;
}
