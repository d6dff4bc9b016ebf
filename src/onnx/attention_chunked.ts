/**
 * Memory-bounded attention and feed-forward: the batch axis split into parts, each part run through the
 * same layers, the results concatenated. Every row of an attention or a feed-forward is independent of the
 * others (each frame attends over its own tokens and its own keys; each token's MLP reads that token), so
 * the parts compute exactly the rows the whole would, while the largest intermediates (the GEGLU's hidden and
 * gate activations, the key/value projections and their per-head copies) only ever exist for one part.
 * ORT's CPU MultiHeadAttention already streams the scores (its flash path never holds B x heads x S x L);
 * what the parts bound is everything around it.
 */
import type { Graph, Value } from "./graph.ts";

/** What `inChunks` reads of a layer context (layers.ts `Ctx`). */
export interface ChunkCtx {
  g: Graph;
  /** Parts the batch of attention and feed-forward is split into; unset or 1: not split. */
  chunks?: number;
}

/** Default budget of `partsFor`: the largest intermediate of one attention or feed-forward part. */
export const DEFAULT_CHUNK_BYTES = 128 * 2 ** 20;

/**
 * How many parts `rows` rows of `bytesPerRow` each are split into so one part stays within `budget` bytes:
 * the smallest divisor of `maxParts` (the smallest batch of the sites that share the count, which divides
 * every other) that is large enough, so every site splits into equal parts. 1 (no split) when the whole
 * fits, so small graphs are built exactly as before.
 */
export function partsFor(budget: number, rows: number, bytesPerRow: number, maxParts: number): number {
  if (!(budget > 0) || !Number.isFinite(budget)) return 1;
  const need = Math.ceil((rows * bytesPerRow) / budget);
  if (need <= 1) return 1;
  for (let p = need; p < maxParts; p++) if (maxParts % p === 0) return p;
  return maxParts;
}

/**
 * Splits every one of `inputs` along axis 0 into `parts` equal parts, runs `body` on
 * each part (with a context that does not split again) and concatenates the results along axis 0 as
 * `outName`. Part `i`'s result is named `${outName}/chunk${i}`; values inside a part keep their module
 * names, suffixed `#1`, `#2`... after the first part.
 */
export function inChunks<C extends ChunkCtx>(
  c: C,
  path: string,
  inputs: readonly Value[],
  parts: number,
  outName: string,
  body: (c: C, chunk: readonly Value[], name: string) => Value,
): Value {
  // The same value given twice (self-attention: q is kv) is split once.
  const pieces = new Map<Value, Value[]>();
  for (const x of inputs) {
    if (!pieces.has(x)) {
      pieces.set(x, c.g.op("Split", [x], { path, attrs: { axis: 0, num_outputs: parts }, outputs: parts }));
    }
  }
  const whole: C = { ...c, chunks: undefined };
  const outs = Array.from(
    { length: parts },
    (_, i) => body(whole, inputs.map((x) => pieces.get(x)![i]), `${outName}/chunk${i}`),
  );
  return c.g.op1("Concat", outs, { path, attrs: { axis: 0 }, outName });
}
