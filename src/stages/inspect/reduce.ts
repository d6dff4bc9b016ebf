/**
 * The reductions a cache site applies to each recorded tensor before keeping it: the mean over the heads axis,
 * and the mean over frames, where frames may be folded into an axis as `(b f)` (frames the inner factor, as
 * the UNet's `(b f) c h w` layout folds them).
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import { InspectError } from "./errors.ts";

/** What a site averages; `[]` keeps every value. "steps" averages over the steps of the clip. */
export type Mean = "heads" | "frames" | "steps";

/** How one site is reduced, chosen when the cache is built. */
export interface SiteReduction {
  mean: readonly Mean[];
  /** Axis holding the heads (1 for a probe taken per head: (rows, heads, queries, keys)). Needed for "heads". */
  headAxis?: number;
  /** Axis holding the frames, folded as `(b f)` when its size is a multiple of `frames`. Needed for "frames". */
  frameAxis?: number;
  /** Frames per copy along `frameAxis` (the clip's frame count). Needed for "frames". */
  frames?: number;
}

/**
 * `y[a, c] = (1/n) sum_i x[a, i, c]` with `x` viewed as (outer, n, inner) around `axis`; the axis is dropped.
 * float64 accumulation, one rounding to float32.
 */
export function meanAxis(x: F32Tensor, axis: number): F32Tensor {
  const s = x.shape;
  if (!Number.isInteger(axis) || axis < 0 || axis >= s.length) {
    throw new InspectError(`mean over axis ${axis} of a tensor of shape [${s}]`);
  }
  const n = s[axis];
  const outer = s.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = s.slice(axis + 1).reduce((a, d) => a * d, 1);
  const out = new Float32Array(outer * inner);
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let i = 0; i < n; i++) {
      const base = (o * n + i) * inner;
      for (let j = 0; j < inner; j++) acc[j] += x.data[base + j];
    }
    for (let j = 0; j < inner; j++) out[o * inner + j] = acc[j] / n;
  }
  return f32([...s.slice(0, axis), ...s.slice(axis + 1)], out);
}

/**
 * Mean over the frames of a `(b f)` axis: `y[.., b, ..] = (1/F) sum_f x[.., b*F + f, ..]`; the axis keeps
 * size b (1 when the axis holds exactly F frames).
 */
export function meanFrames(x: F32Tensor, axis: number, frames: number): F32Tensor {
  const n = x.shape[axis];
  if (n === undefined || !(frames > 0) || n % frames !== 0) {
    throw new InspectError(`mean over ${frames} frames: axis ${axis} of shape [${x.shape}] is not (b f)`);
  }
  const split = [...x.shape.slice(0, axis), n / frames, frames, ...x.shape.slice(axis + 1)];
  return meanAxis(f32(split, x.data), axis + 1);
}

/** Checks a reduction against the first tensor recorded for `site`; throws naming what is missing. */
export function checkReduction(site: string, r: SiteReduction, shape: readonly number[]): void {
  const need = (axis: number | undefined, what: string) => {
    if (axis === undefined || !Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
      throw new InspectError(`cache site ${site}: mean over ${what} needs a valid axis (shape [${shape}])`);
    }
  };
  if (r.mean.includes("heads")) need(r.headAxis, "heads");
  if (r.mean.includes("frames")) {
    need(r.frameAxis, "frames");
    if (!(r.frames! > 0) || shape[r.frameAxis!] % r.frames! !== 0) {
      throw new InspectError(
        `cache site ${site}: axis ${r.frameAxis} (size ${
          shape[r.frameAxis!]
        }) is not a multiple of ${r.frames} frames`,
      );
    }
  }
  if (r.mean.includes("heads") && r.mean.includes("frames") && r.headAxis === r.frameAxis) {
    throw new InspectError(`cache site ${site}: heads and frames cannot share axis ${r.headAxis}`);
  }
}

/** Applies the per-step part of a reduction (heads, frames), the higher axis first so the lower stays put. */
export function reduceStep(x: F32Tensor, r: SiteReduction): F32Tensor {
  const ops: { axis: number; run: (t: F32Tensor) => F32Tensor }[] = [];
  if (r.mean.includes("heads")) ops.push({ axis: r.headAxis!, run: (t) => meanAxis(t, r.headAxis!) });
  if (r.mean.includes("frames")) {
    ops.push({ axis: r.frameAxis!, run: (t) => meanFrames(t, r.frameAxis!, r.frames!) });
  }
  ops.sort((a, b) => b.axis - a.axis);
  return ops.reduce((t, op) => op.run(t), x);
}

/**
 * `acc[i] / n` rounded to float32 for every i: a mean from its running sum. A plain loop, because
 * `Float32Array.from(acc, mapper)` goes through V8's generic iteration (about 20x slower on millions of values).
 */
export function dividedBy(acc: ArrayLike<number>, n: number): Float32Array {
  const out = new Float32Array(acc.length);
  for (let i = 0; i < acc.length; i++) out[i] = acc[i] / n;
  return out;
}
