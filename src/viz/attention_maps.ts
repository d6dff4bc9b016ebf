/**
 * Reductions of the denoising UNet's attention probes (`${module}.probs`, probabilities over keys) to maps:
 *
 * - reference self-attention `...attn1.probs`, cond half (F, [heads,] T, 2T), keys = own frame's T tokens
 *   then the reference image's T tokens: per query location, the share of attention on the reference tokens;
 *   per reference location, the attention it receives;
 * - audio cross-attention `...attn2_{0,1,2}.probs` (B*F, [heads,] T, A): per audio token, its probability
 *   at every location (cond rows: the second half of the batch when guiding);
 * - motion modules `...attention_blocks.N.probs` (B*T, [heads,] M+F, M+F): the frame x frame matrix averaged
 *   over locations (cond rows: the second half).
 */
import type { Tensor } from "../tensor.ts";
import { VizError } from "./figure.ts";

/** "mean" averages the heads; a number picks one head (probes taken with "heads"). */
export type HeadChoice = "mean" | number;
/** "mean" averages the frames; a number picks one. */
export type FrameChoice = "mean" | number;

/** The probability rows of a probe as (rows, queries, keys) with the heads reduced. */
export interface Probs3 {
  rows: number;
  queries: number;
  keys: number;
  data: Float32Array;
  /** Heads the probe carried (1 when it was captured as the mean). */
  heads: number;
}

/** Reduces the head axis of a (rows, [heads,] queries, keys) probe. */
export function reduceHeads(name: string, t: Tensor, head: HeadChoice): Probs3 {
  if (t.dtype !== "float32") throw new VizError(`${name}: float32 probabilities expected, got ${t.dtype}`);
  const d = t.data as Float32Array;
  if (t.shape.length === 3) {
    const [rows, queries, keys] = t.shape;
    if (typeof head === "number" && head !== 0) {
      throw new VizError(`${name}: captured averaged over heads ("mean"), head ${head} is not available`);
    }
    return { rows, queries, keys, data: d, heads: 1 };
  }
  if (t.shape.length !== 4) {
    throw new VizError(`${name}: expected (rows, [heads,] queries, keys), got [${t.shape}]`);
  }
  const [rows, heads, queries, keys] = t.shape;
  if (typeof head === "number" && (head < 0 || head >= heads || !Number.isInteger(head))) {
    throw new VizError(`${name}: head ${head} out of range (${heads} heads)`);
  }
  const plane = queries * keys;
  const out = new Float32Array(rows * plane);
  for (let r = 0; r < rows; r++) {
    if (typeof head === "number") {
      out.set(d.subarray((r * heads + head) * plane, (r * heads + head + 1) * plane), r * plane);
      continue;
    }
    for (let h = 0; h < heads; h++) {
      const src = (r * heads + h) * plane;
      for (let i = 0; i < plane; i++) out[r * plane + i] += d[src + i] / heads;
    }
  }
  return { rows, queries, keys, data: out, heads };
}

function frameRange(name: string, frames: number, frame: FrameChoice, first = 0): number[] {
  if (frame === "mean") return Array.from({ length: frames }, (_, i) => first + i);
  if (!Number.isInteger(frame) || frame < 0 || frame >= frames) {
    throw new VizError(`${name}: frame ${frame} out of range (${frames} frames)`);
  }
  return [first + frame];
}

/** Reference self-attention maps: share on the reference per location, and attention received per reference location. */
export function referenceShare(
  name: string,
  p: Probs3,
  frame: FrameChoice,
): { share: Float32Array; received: Float32Array; tokens: number } {
  const T = p.queries;
  if (p.keys !== 2 * T) {
    throw new VizError(`${name}: keys ${p.keys} should be 2 x ${T} (own tokens, then the reference tokens)`);
  }
  const share = new Float32Array(T), received = new Float32Array(T);
  const rows = frameRange(name, p.rows, frame);
  for (const r of rows) {
    for (let q = 0; q < T; q++) {
      const base = (r * T + q) * p.keys;
      let s = 0;
      for (let k = 0; k < T; k++) {
        const v = p.data[base + T + k];
        s += v;
        received[k] += v;
      }
      share[q] += s;
    }
  }
  for (let i = 0; i < T; i++) {
    share[i] /= rows.length;
    // Summed over queries, averaged over frames: 1 would be one query's whole attention.
    received[i] /= rows.length;
  }
  return { share, received, tokens: T };
}

/** Audio cross-attention: one location map per audio token, over the cond rows (the last `frames` rows). */
export function audioTokenMaps(name: string, p: Probs3, frames: number, frame: FrameChoice): Float32Array[] {
  if (p.rows % frames !== 0) {
    throw new VizError(`${name}: ${p.rows} rows are not batches of ${frames} frames`);
  }
  const first = p.rows - frames; // with guidance the uncond half (zero audio) comes first
  const rows = frameRange(name, frames, frame, first);
  const maps = Array.from({ length: p.keys }, () => new Float32Array(p.queries));
  for (const r of rows) {
    for (let q = 0; q < p.queries; q++) {
      const base = (r * p.queries + q) * p.keys;
      for (let a = 0; a < p.keys; a++) maps[a][q] += p.data[base + a] / rows.length;
    }
  }
  return maps;
}

/** Motion-module attention: the (frames x frames) matrix averaged over the cond half's locations. */
export function motionMatrix(name: string, p: Probs3, tokens: number): Float32Array {
  if (p.queries !== p.keys) throw new VizError(`${name}: a square frame x frame matrix was expected`);
  if (p.rows % tokens !== 0) {
    throw new VizError(`${name}: ${p.rows} rows are not batches of ${tokens} locations`);
  }
  const first = p.rows - tokens;
  const n = p.queries * p.keys;
  const out = new Float32Array(n);
  for (let r = first; r < p.rows; r++) for (let i = 0; i < n; i++) out[i] += p.data[r * n + i] / tokens;
  return out;
}

/** Which kind of probe a graph output is, and the module it belongs to. */
export type ProbeKind =
  | { kind: "reference"; module: string }
  | { kind: "reference-uncond"; module: string }
  | { kind: "audio"; module: string; branch: number }
  | { kind: "motion"; module: string }
  | { kind: "other"; module: string };

/** Classifies a probe output name by its module path. */
export function classifyProbe(name: string): ProbeKind {
  let m = /^(.+\.attentions\.\d+\.transformer_blocks\.\d+\.attn1)\.probs(#1)?$/.exec(name);
  if (m) return { kind: m[2] ? "reference-uncond" : "reference", module: m[1] };
  m = /^(.+\.audio_modules\.\d+\.transformer_blocks\.\d+)\.attn2_(\d)\.probs$/.exec(name);
  if (m) return { kind: "audio", module: m[1], branch: Number(m[2]) };
  m =
    /^(.+\.motion_modules\.\d+\.temporal_transformer\.transformer_blocks\.\d+\.attention_blocks\.\d+)\.probs$/
      .exec(name);
  if (m) return { kind: "motion", module: m[1] };
  return { kind: "other", module: name.replace(/\.probs(#\d+)?$/, "") };
}
