/**
 * The graph builder: values are names (strings), nodes are named after the upstream
 * module path that produced them, weights are bound by checkpoint key and become ONNX
 * external data pointing into the original checkpoint file (zero copy).
 */
import { relative, sep } from "node:path";
import {
  type AttrValue,
  DataType,
  type DataTypeCode,
  type Dim,
  encodeModel,
  type NodeInfo,
  type TensorInfo,
  type ValueInfo,
} from "./proto.ts";
import type { StorageDType, TensorRef } from "./tensor_ref.ts";

/** A value in the graph, identified by its unique name. */
export type Value = string;

/** What the builder needs from a weight store: key -> tensor reference. */
export interface WeightSource {
  get(key: string): TensorRef;
  has(key: string): boolean;
  markUsed?(key: string): void;
  /**
   * Told the shape the network expects for `key` before `has`/`get` are asked (only on a key's first
   * binding), so a source can record a network's checkpoint layout or synthesise matching tensors.
   */
  expect?(key: string, shape: readonly number[]): void;
}

/** Thrown when a checkpoint tensor does not have the shape the network expects. */
export class GraphBuildError extends Error {
  override name = "GraphBuildError";
}

const STORAGE_TO_ONNX: Partial<Record<StorageDType, DataTypeCode>> = {
  F32: DataType.FLOAT,
  F16: DataType.FLOAT16,
  BF16: DataType.BFLOAT16,
  F64: DataType.DOUBLE,
  I64: DataType.INT64,
  I32: DataType.INT32,
  U8: DataType.UINT8,
  I8: DataType.INT8,
  BOOL: DataType.BOOL,
};

/** Element type of the graph's float computation. */
export type GraphDType = "float32" | "float16";

export interface Binding {
  key: string;
  shape: readonly number[];
  ref: TensorRef;
}

type AttrInput = number | string | readonly number[] | { floats: readonly number[] } | { float: number };

function toAttr(v: AttrInput): AttrValue {
  if (typeof v === "string") return { kind: "string", v };
  if (typeof v === "number") return Number.isInteger(v) ? { kind: "int", v } : { kind: "float", v };
  if (Array.isArray(v)) return { kind: "ints", v: v as readonly number[] };
  if ("floats" in (v as object)) return { kind: "floats", v: (v as { floats: readonly number[] }).floats };
  return { kind: "float", v: (v as { float: number }).float };
}

/** Options of one node. */
export interface OpOptions {
  /** Module path the node belongs to; also the base of its output names. */
  path: string;
  domain?: string;
  attrs?: Record<string, AttrInput>;
  /** Number of outputs (default 1). */
  outputs?: number;
  /** Exact name for the (first) output, e.g. the module path itself for a module's result. */
  outName?: string;
}

export class Graph {
  readonly nodes: NodeInfo[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private readonly initializers = new Map<string, TensorInfo & { file?: string }>();
  private readonly bindings = new Map<string, Binding>();
  private readonly used = new Set<string>();
  private counter = 0;
  /** Float element type of activations (weights stored otherwise are cast on load). */
  readonly floatType: DataTypeCode;

  constructor(readonly name: string, readonly dtype: GraphDType = "float32") {
    this.floatType = dtype === "float16" ? DataType.FLOAT16 : DataType.FLOAT;
  }

  /** A fresh, unique value name derived from `base`. */
  fresh(base: string): Value {
    let name = base;
    if (this.used.has(name)) {
      let i = 1;
      while (this.used.has(`${base}#${i}`)) i++;
      name = `${base}#${i}`;
    }
    this.used.add(name);
    return name;
  }

  /** Declares a graph input. */
  input(name: string, dims: readonly Dim[], elemType: DataTypeCode = this.floatType): Value {
    if (this.used.has(name)) throw new GraphBuildError(`graph input '${name}' declared twice`);
    this.used.add(name);
    this.inputs.push({ name, elemType, dims });
    return name;
  }

  /** Marks a value as a graph output (optionally renaming it through an Identity). */
  output(value: Value, name = value, elemType: DataTypeCode = this.floatType, dims?: readonly Dim[]): Value {
    let v = value;
    if (name !== value) v = this.op("Identity", [value], { path: name, outName: name })[0];
    if (this.outputs.some((o) => o.name === v)) return v;
    this.outputs.push({ name: v, elemType, dims });
    return v;
  }

  /** True when `name` is a value of this graph. */
  hasValue(name: string): boolean {
    return this.used.has(name);
  }

  /** Adds a node; returns its output value names. */
  op(opType: string, inputs: readonly Value[], o: OpOptions): Value[] {
    const n = o.outputs ?? 1;
    const nodeName = `${o.path}/${opType}_${this.counter++}`;
    const outs: Value[] = [];
    for (let i = 0; i < n; i++) {
      outs.push(i === 0 && o.outName ? this.fresh(o.outName) : this.fresh(`${nodeName}:${i}`));
    }
    const attrs: Record<string, AttrValue> = {};
    for (const [k, v] of Object.entries(o.attrs ?? {})) attrs[k] = toAttr(v);
    this.nodes.push({ opType, domain: o.domain, name: nodeName, inputs, outputs: outs, attrs });
    return outs;
  }

  /** Single-output shorthand for `op`. */
  op1(opType: string, inputs: readonly Value[], o: OpOptions): Value {
    return this.op(opType, inputs, o)[0];
  }

  /** An inline constant kept in its own type (small tensors: shapes, axes, scales, precomputed tables). */
  constant(name: string, data: Float32Array | BigInt64Array | Int32Array, dims: readonly number[]): Value {
    const elemType = data instanceof Float32Array
      ? DataType.FLOAT
      : data instanceof BigInt64Array
      ? DataType.INT64
      : DataType.INT32;
    const v = this.fresh(name);
    const raw = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    this.initializers.set(v, { name: v, elemType, dims, raw });
    return v;
  }

  /** An int64 constant vector (shapes, axes, starts). */
  ints(name: string, values: readonly number[]): Value {
    return this.constant(name, BigInt64Array.from(values.map(BigInt)), [values.length]);
  }

  /** A float constant in the graph's float type. */
  floats(
    name: string,
    values: Float32Array | readonly number[],
    dims: readonly number[] = [values.length],
  ): Value {
    const v = this.constant(name, values instanceof Float32Array ? values : Float32Array.from(values), dims);
    if (this.floatType === DataType.FLOAT) return v;
    return this.op1("Cast", [v], { path: name, attrs: { to: this.floatType } });
  }

  /**
   * Binds checkpoint tensor `key` from `src`, checking its shape; the initializer refers to the
   * checkpoint file as external data. Weights stored in another float type are cast in-graph.
   */
  weight(src: WeightSource, key: string, shape: readonly number[]): Value {
    const existing = this.bindings.get(key);
    if (existing) {
      if (existing.shape.join() !== shape.join()) {
        throw new GraphBuildError(`weight '${key}' bound with shapes [${existing.shape}] and [${shape}]`);
      }
      return this.initializerValue(key);
    }
    src.expect?.(key, shape);
    if (!src.has(key)) {
      throw new GraphBuildError(`checkpoint has no tensor '${key}' (expected shape [${shape}])`);
    }
    const ref = src.get(key);
    if (ref.shape.length !== shape.length || ref.shape.some((d, i) => d !== shape[i])) {
      throw new GraphBuildError(
        `checkpoint tensor '${key}' in ${ref.file} has shape [${ref.shape}], the network expects [${shape}]`,
      );
    }
    const elemType = STORAGE_TO_ONNX[ref.dtype];
    if (elemType === undefined) {
      throw new GraphBuildError(`tensor '${key}' has unsupported dtype ${ref.dtype}`);
    }
    src.markUsed?.(key);
    this.bindings.set(key, { key, shape, ref });
    this.used.add(key);
    this.initializers.set(key, {
      name: key,
      elemType,
      dims: shape,
      file: ref.file,
      external: { location: ref.file, offset: ref.offset, length: ref.length },
    });
    return this.initializerValue(key);
  }

  private readonly castCache = new Map<string, Value>();

  private initializerValue(key: string): Value {
    const init = this.initializers.get(key)!;
    if (init.elemType === this.floatType || init.elemType === DataType.INT64) return key;
    let v = this.castCache.get(key);
    if (!v) {
      v = this.op1("Cast", [key], { path: key, attrs: { to: this.floatType }, outName: `${key}:cast` });
      this.castCache.set(key, v);
    }
    return v;
  }

  /** The initializer (checkpoint weight or inline constant) named `name`: type, dims, inline bytes. */
  initializer(name: string): Readonly<TensorInfo> | undefined {
    return this.initializers.get(name);
  }

  /** Every checkpoint key bound so far, with the expected shapes. */
  boundKeys(): Binding[] {
    return [...this.bindings.values()];
  }

  /** Files referenced as external data. */
  externalFiles(): string[] {
    return [...new Set([...this.initializers.values()].flatMap((t) => t.file ? [t.file] : []))];
  }

  /**
   * Serialises the graph. External data locations are written relative to `modelDir`
   * (the folder the .onnx will be loaded from), which must be an ancestor of every
   * checkpoint file: ORT refuses absolute paths and `..`.
   */
  encode(
    modelDir: string,
    extraOutputs: readonly string[] = [],
    metadata?: Record<string, string>,
  ): Uint8Array {
    const inits: TensorInfo[] = [];
    for (const t of this.initializers.values()) {
      if (!t.external || !t.file) {
        inits.push(t);
        continue;
      }
      const rel = relative(modelDir, t.file);
      if (rel.startsWith("..") || rel.startsWith(sep)) {
        throw new GraphBuildError(
          `checkpoint ${t.file} is not inside ${modelDir}: ORT needs the model beside or above it`,
        );
      }
      inits.push({ ...t, external: { ...t.external, location: rel.split(sep).join("/") } });
    }
    const outputs = [...this.outputs];
    for (const name of extraOutputs) {
      if (!this.used.has(name)) {
        throw new GraphBuildError(`probe '${name}' names no value of graph ${this.name}`);
      }
      if (!outputs.some((o) => o.name === name)) outputs.push({ name, elemType: this.floatType });
    }
    return encodeModel({
      graphName: this.name,
      nodes: this.nodes,
      inputs: this.inputs,
      outputs,
      initializers: inits,
      opsets: { "": 21, "com.microsoft": 1 },
      producer: "hallo-lab",
      metadata,
    });
  }
}
