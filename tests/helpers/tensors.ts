/**
 * Test inputs and error measures: a seeded PRNG (so every run sees the same numbers), random float32 tensors,
 * relative L2 error, and tiny graphs whose weights reach ORT from a safetensors file (the external-data path).
 */
import { join } from "node:path";
import { Graph, type Value } from "../../src/onnx/graph.ts";
import type { AttentionForm, AttentionProbe, Ctx } from "../../src/onnx/layers.ts";
import { DataType, type DataTypeCode } from "../../src/onnx/proto.ts";
import { Session } from "../../src/runtime/session.ts";
import { f32, type F32Tensor, numel, type Tensor } from "../../src/tensor.ts";
import { writeSafetensors as writeSafetensorsFile } from "../../src/weights/safetensors_write.ts";
import { WeightStore } from "../../src/weights/store.ts";
import { prng } from "./prng.ts";

export { prng };

/** Standard normal samples (Box-Muller) scaled by `scale`, as float32. */
export function randn(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u)) * scale;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** A float32 tensor of normal samples. */
export function randTensor(rand: () => number, shape: readonly number[], scale = 1): F32Tensor {
  return f32(shape, randn(rand, numel(shape), scale));
}

/** ||a - b|| / ||b|| in float64; a length mismatch throws. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relL2: ${a.length} elements vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  if (!Number.isFinite(num)) return Infinity;
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}

/** A tensor-like value: output tensors of any dtype, or plain shaped numbers. */
export interface Shaped {
  readonly shape: readonly number[];
  readonly data: ArrayLike<number> | BigInt64Array;
}

function numbers(what: string, t: Shaped): ArrayLike<number> {
  if (t.data instanceof BigInt64Array) throw new Error(`${what}: int64 data where floats were expected`);
  return t.data;
}

/** Throws unless `got` has shape `ref.shape` and relative L2 error <= `tol`; returns the error. */
export function expectClose(what: string, got: Shaped, ref: Shaped, tol = 1e-5): number {
  if (got.shape.join() !== ref.shape.join()) {
    throw new Error(`${what}: shape [${got.shape}], reference [${ref.shape}]`);
  }
  const e = relL2(numbers(what, got), numbers(what, ref));
  if (!(e <= tol)) throw new Error(`${what}: relative L2 error ${e.toExponential(2)} > ${tol}`);
  return e;
}

/** Throws unless `got` equals `ref` bit for bit (same shape, same float32 values). */
export function expectIdentical(what: string, got: Shaped, ref: Shaped): void {
  if (got.shape.join() !== ref.shape.join()) {
    throw new Error(`${what}: shape [${got.shape}], reference [${ref.shape}]`);
  }
  const a = numbers(what, got), b = numbers(what, ref);
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} elements, reference ${b.length}`);
  for (let i = 0; i < b.length; i++) {
    if (!Object.is(a[i], b[i])) throw new Error(`${what}: element ${i} is ${a[i]}, expected ${b[i]}`);
  }
}

/** Writes float32 tensors as a safetensors file `name` in `dir` with the project's writer; returns its path. */
export function writeSafetensors(dir: string, name: string, tensors: Record<string, F32Tensor>): string {
  const path = join(dir, name);
  writeSafetensorsFile(
    path,
    Object.entries(tensors).map(([key, t]) => ({ name: key, dtype: "F32", shape: t.shape, data: t.data })),
  );
  return path;
}

/** A fresh temp folder for one test (removed by the caller with `Deno.removeSync(dir, {recursive: true})`). */
export function tempDir(prefix = "hallo-test-"): string {
  return Deno.makeTempDirSync({ prefix });
}

// ---------------------------------------------------------------- running a tiny graph

/** What a tiny-graph build gets: the layer context and the graph inputs by name. */
export type TinyBuild = (c: Ctx, inputs: Record<string, Value>) => Record<string, Value>;

export interface TinyOptions {
  attention?: AttentionForm;
  attentionProbes?: ReadonlyMap<string, AttentionProbe>;
  /** Named values requested as extra outputs. */
  extra?: readonly string[];
  /** Key prefix of the layers inside the checkpoint (default `net.`: proves `Ctx.prefix` is applied). */
  prefix?: string;
}

export interface TinyResult {
  outputs: Record<string, Tensor>;
  graph: Graph;
  store: WeightStore;
  /** The safetensors file the weights were written to. */
  file: string;
}

const ELEM: Record<string, DataTypeCode> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
};

/**
 * Writes `weights` (keys without the prefix) to a safetensors file in a temp folder, builds a graph whose inputs
 * are `feeds` (same names, shapes and dtypes) over a WeightStore of that file, so every weight reaches ORT as
 * external data, runs it on CPU with one thread and returns every output.
 */
export async function runTiny(
  weights: Record<string, F32Tensor>,
  feeds: Record<string, Tensor>,
  build: TinyBuild,
  o: TinyOptions = {},
): Promise<TinyResult> {
  const dir = tempDir("hallo-layers-");
  try {
    const prefix = o.prefix ?? "net.";
    const prefixed: Record<string, F32Tensor> = {};
    for (const [k, v] of Object.entries(weights)) prefixed[`${prefix}${k}`] = v;
    const file = writeSafetensors(dir, "weights.safetensors", prefixed);
    const store = WeightStore.open(file);
    const g = new Graph("tiny");
    const c: Ctx = {
      g,
      w: store,
      prefix,
      attention: o.attention ?? "fused",
      attentionProbes: o.attentionProbes,
    };
    const ins: Record<string, Value> = {};
    for (const [name, t] of Object.entries(feeds)) ins[name] = g.input(name, t.shape, ELEM[t.dtype]);
    for (const [name, v] of Object.entries(build(c, ins))) g.output(v, name);
    const bytes = g.encode(dir, o.extra ?? []);
    const session = await Session.create(bytes, dir, { threads: 1 });
    try {
      return { outputs: await session.run(feeds), graph: g, store, file };
    } finally {
      await session.release();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
