/**
 * guidance by region: per sampler step, how far the conditional prediction is from the unconditional one
 * (`|cond - uncond|`) and how far the step moves the latents (`|next - latents|`, the guided update) inside
 * each region mask (lip = sep_lip, face = sep_face, background = sep_background: level 0 of the mask pyramids).
 */
import type { F32Tensor } from "../../tensor.ts";
import { InspectError } from "./errors.ts";
import { regionMeanAbsDiff } from "./region_mean.ts";

/** What one sampler step gives the measure (the sampler's step, with its latents shaped (1, 4, F, h, w)). */
export interface GuidanceStep {
  index: number;
  latents: F32Tensor;
  uncond: F32Tensor;
  cond: F32Tensor;
  next: F32Tensor;
}

/** One region at one step, each value averaged over the frames (per frame in `perFrame`). */
export interface GuidanceRegionRow {
  step: number;
  region: string;
  /** `sum w |cond - uncond| / (C sum w)`, mean over frames. */
  condDelta: number;
  /** `sum w |next - latents| / (C sum w)`, mean over frames. */
  update: number;
  perFrame: { condDelta: number[]; update: number[] };
}

/**
 * For every step and region: the mask-weighted mean |cond - uncond| and |next - latents| (NaN for an empty
 * mask). `regions` maps a name to its mask at the latent grid (h*w values, e.g. `lipMasks[0].data`).
 */
export function guidanceByRegion(
  steps: readonly GuidanceStep[],
  regions: Readonly<Record<string, Float32Array>>,
): GuidanceRegionRow[] {
  if (!Object.keys(regions).length) throw new InspectError("guidance by region: no regions given");
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rows: GuidanceRegionRow[] = [];
  for (const s of steps) {
    for (const [region, w] of Object.entries(regions)) {
      const name = `guidance by region, step ${s.index}, ${region}`;
      const condDelta = regionMeanAbsDiff(name, s.cond, s.uncond, w);
      const update = regionMeanAbsDiff(name, s.next, s.latents, w);
      rows.push({
        step: s.index,
        region,
        condDelta: mean(condDelta),
        update: mean(update),
        perFrame: { condDelta, update },
      });
    }
  }
  return rows;
}
