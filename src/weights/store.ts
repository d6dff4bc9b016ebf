/**
 * `WeightStore`: the tensors of one or more checkpoint files under one key space, with prefixes stripped or
 * added (open net.pth, view it with `denoising_unet.` stripped), and a record of which keys a graph builder
 * bound so that keys never used can be reported.
 */
import { openCheckpoint } from "./checkpoint.ts";
import type { Checkpoint } from "./checkpoint_types.ts";
import { readTensorF32 } from "./convert.ts";
import { CheckpointError } from "./errors.ts";
import type { TensorRef } from "../onnx/tensor_ref.ts";

/** How keys of a checkpoint are mapped into a store. */
export interface KeyMapping {
  /** Keep only keys that start with this and drop it (e.g. `denoising_unet.`). */
  readonly strip?: string;
  /** Prepend this to every key kept (after `strip`). */
  readonly prefix?: string;
}

/** Maps `key` under `m`; undefined when `m.strip` excludes it. */
function mapKey(key: string, m: KeyMapping): string | undefined {
  if (m.strip && !key.startsWith(m.strip)) return undefined;
  return `${m.prefix ?? ""}${m.strip ? key.slice(m.strip.length) : key}`;
}

function describeMapping(m: KeyMapping): string {
  const parts = [m.strip ? `'${m.strip}' stripped` : "", m.prefix ? `'${m.prefix}' added` : ""].filter(
    Boolean,
  );
  return parts.length ? ` (prefix ${parts.join(", ")})` : "";
}

/** Tensors of several files in one key space, with usage tracking. */
export class WeightStore {
  readonly #refs = new Map<string, TensorRef>();
  /** Mapped key -> identity of the underlying tensor (file + original key), shared by views for usage. */
  readonly #origin = new Map<string, string>();
  readonly #used: Set<string>;
  readonly #sources: string[] = [];

  /** An empty store; `used` is shared with the store a view was made from. */
  constructor(used: Set<string> = new Set()) {
    this.#used = used;
  }

  /** Opens one or more checkpoint files (format auto-detected) into a new store, mapping keys by `mapping`. */
  static open(paths: string | readonly string[], mapping: KeyMapping = {}): WeightStore {
    const store = new WeightStore();
    for (const p of typeof paths === "string" ? [paths] : paths) store.add(p, mapping);
    return store;
  }

  /** Adds the tensors of a checkpoint (a path or an opened one); a key already present is an error. */
  add(source: string | Checkpoint, mapping: KeyMapping = {}): this {
    const ckpt = typeof source === "string" ? openCheckpoint(source) : source;
    for (const [key, ref] of ckpt.tensors) {
      const name = mapKey(key, mapping);
      if (name === undefined) continue;
      this.#put(name, { ...ref, name }, `${ckpt.file}\0${key}`);
    }
    this.#sources.push(`${ckpt.file}${describeMapping(mapping)}`);
    return this;
  }

  #put(name: string, ref: TensorRef, origin: string): void {
    const prev = this.#refs.get(name);
    if (prev) {
      throw new CheckpointError(ref.file, `tensor '${name}' is already in the store from ${prev.file}`);
    }
    this.#refs.set(name, ref);
    this.#origin.set(name, origin);
  }

  /**
   * A store of this one's keys under `mapping` (e.g. `{strip: "denoising_unet."}`). It shares usage tracking:
   * marking a key used in the view marks it used here too.
   */
  view(mapping: KeyMapping): WeightStore {
    const v = new WeightStore(this.#used);
    for (const [key, ref] of this.#refs) {
      const name = mapKey(key, mapping);
      if (name !== undefined) v.#put(name, { ...ref, name }, this.#origin.get(key)!);
    }
    v.#sources.push(...this.#sources.map((s) => `${s}${describeMapping(mapping)}`));
    return v;
  }

  /** Number of tensors. */
  get size(): number {
    return this.#refs.size;
  }

  /** Whether the store holds `name`. */
  has(name: string): boolean {
    return this.#refs.has(name);
  }

  /** All keys, in the order their files list them. */
  keys(): string[] {
    return [...this.#refs.keys()];
  }

  /** The reference for `name`; a missing key is a CheckpointError naming it and the file(s). */
  get(name: string): TensorRef {
    const ref = this.#refs.get(name);
    if (ref) return ref;
    const near = this.keys().filter((k) => k.endsWith(`.${name}`) || name.endsWith(`.${k}`)).slice(0, 2);
    const hint = near.length ? `; did you mean '${near.join("' or '")}'?` : "";
    throw new CheckpointError(this.#sources.join(" + ") || "(empty store)", `no tensor '${name}'${hint}`);
  }

  /** Records that a graph bound `name` (throws if it is missing). */
  markUsed(name: string): void {
    this.get(name);
    this.#used.add(this.#origin.get(name)!);
  }

  /** `get` + `markUsed`: the way graph builders should fetch a weight. */
  use(name: string): TensorRef {
    this.markUsed(name);
    return this.get(name);
  }

  /** Whether `name` was marked used (here or through another view of the same tensors). */
  isUsed(name: string): boolean {
    const o = this.#origin.get(name);
    return o !== undefined && this.#used.has(o);
  }

  /** Keys of this store never marked used, in key order. */
  unusedKeys(): string[] {
    return this.keys().filter((k) => !this.#used.has(this.#origin.get(k)!));
  }

  /** Reads `name` as float32 (F32/F16/BF16/F64), reading only its bytes. Does not mark it used. */
  readF32(name: string): Float32Array {
    return readTensorF32(this.get(name));
  }
}
