/**
 * An activation cache in the spirit of TransformerLens's `run_with_cache`, for one clip: named sites (probe
 * outputs, named by upstream module path as the UNet probes name them, e.g.
 * `down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2.probs`) are recorded step by step, reduced as
 * chosen when the cache is built, held in memory up to a byte limit and spilled to safetensors files in the
 * run dir past it; reading back is the same call wherever the values are.
 */
import { f32, type F32Tensor, type Tensor } from "../../tensor.ts";
import { join } from "node:path";
import { InspectError } from "./errors.ts";
import { checkReduction, dividedBy, reduceStep, type SiteReduction } from "./reduce.ts";
import { readSpill, writeSpill } from "./spill.ts";

/** The record contract: one site's tensor at one sampler step (0-based). */
export interface ActivationRecord {
  site: string;
  step: number;
  tensor: F32Tensor;
}

/** How the cache is built. */
export interface ActivationCacheOptions {
  /** The sites to record and each one's reduction; anything else offered to `recordAll` is ignored. */
  sites: Readonly<Record<string, SiteReduction>>;
  /** Bytes the cache may hold in memory (tensor data and step-mean accumulators). */
  maxBytes: number;
  /** Folder for spill files (the run dir). Without it, passing the limit is an error. */
  spillDir?: string;
  /** Spill file name prefix, e.g. `clip-0003.` (default none). */
  prefix?: string;
}

type Held = { site: string; step: number; tensor: F32Tensor } | { site: string; step: number; file: string };

interface StepMean {
  shape: readonly number[];
  sum: Float64Array;
  steps: number[];
}

const keyOf = (site: string, step: number) => `${site}@${step}`;

/** Records reduced activations per site and step; see the module doc. */
export class ActivationCache {
  readonly #o: ActivationCacheOptions;
  readonly #held = new Map<string, Held>();
  readonly #means = new Map<string, StepMean>();
  readonly #shapes = new Map<string, string>();
  readonly #files: string[] = [];
  #bytes = 0;
  #peak = 0;

  constructor(o: ActivationCacheOptions) {
    if (!(o.maxBytes >= 0)) throw new InspectError(`activation cache: maxBytes ${o.maxBytes} is not a size`);
    for (const [site, r] of Object.entries(o.sites)) {
      for (const m of r.mean) {
        if (m !== "heads" && m !== "frames" && m !== "steps") {
          throw new InspectError(`cache site ${site}: unknown reduction '${m}'`);
        }
      }
    }
    this.#o = o;
  }

  /** Bytes held in memory now. */
  get bytesInMemory(): number {
    return this.#bytes;
  }

  /** The most bytes ever held in memory at once. */
  get peakBytes(): number {
    return this.#peak;
  }

  /** Spill files written so far, in order. */
  get spillFiles(): readonly string[] {
    return this.#files;
  }

  /** Whether `site` was declared. */
  has(site: string): boolean {
    return Object.hasOwn(this.#o.sites, site);
  }

  /** Records one tensor: reduced over heads/frames now, summed over steps when the site averages steps. */
  record(r: ActivationRecord): void {
    const spec = this.#o.sites[r.site];
    if (!spec || !this.has(r.site)) {
      throw new InspectError(`activation cache: site ${r.site} was not declared`);
    }
    const t = r.tensor;
    if (t.dtype !== "float32") {
      throw new InspectError(`cache site ${r.site}: float32 expected, got ${t.dtype}`);
    }
    if (!Number.isInteger(r.step) || r.step < 0) {
      throw new InspectError(`cache site ${r.site}: bad step ${r.step}`);
    }
    const seen = this.#shapes.get(r.site);
    if (seen === undefined) {
      checkReduction(r.site, spec, t.shape);
      this.#shapes.set(r.site, t.shape.join());
    } else if (seen !== t.shape.join()) {
      throw new InspectError(`cache site ${r.site}: shape [${t.shape}] at step ${r.step}, earlier [${seen}]`);
    }
    const y = reduceStep(t, spec);
    if (spec.mean.includes("steps")) return this.#accumulate(r.site, r.step, y);
    const key = keyOf(r.site, r.step);
    if (this.#held.has(key)) throw new InspectError(`cache site ${r.site}: step ${r.step} recorded twice`);
    const copy = f32(y.shape, y === t ? t.data.slice() : y.data);
    const bytes = copy.data.byteLength;
    if (this.#bytes + bytes > this.#o.maxBytes) this.#spillHeld();
    if (bytes > this.#o.maxBytes) {
      const file = this.#spill([{ key, tensor: copy }]);
      this.#held.set(key, { site: r.site, step: r.step, file });
      return;
    }
    this.#held.set(key, { site: r.site, step: r.step, tensor: copy });
    this.#grow(bytes);
  }

  /** Records every declared site among `outputs` (a UNet call's probe outputs) at `step`; returns how many. */
  recordAll(step: number, outputs: Readonly<Record<string, Tensor>>): number {
    let n = 0;
    for (const [site, tensor] of Object.entries(outputs)) {
      if (!this.has(site)) continue;
      this.record({ site, step, tensor: tensor as F32Tensor });
      n++;
    }
    return n;
  }

  /** Steps recorded for `site`, ascending. */
  steps(site: string): number[] {
    const m = this.#means.get(site);
    if (m) return [...m.steps].sort((a, b) => a - b);
    return [...this.#held.values()].filter((h) => h.site === site).map((h) => h.step).sort((a, b) => a - b);
  }

  /**
   * The value of `site` at `step`, from memory or its spill file. A site averaging steps has one value,
   * `(1/S) sum_s x_s` over the S recorded steps, and takes no step.
   */
  get(site: string, step?: number): F32Tensor {
    if (!this.has(site)) throw new InspectError(`activation cache: site ${site} was not declared`);
    const m = this.#means.get(site);
    if (this.#o.sites[site].mean.includes("steps")) {
      if (step !== undefined) throw new InspectError(`cache site ${site} averages steps; ask without a step`);
      if (!m) throw new InspectError(`cache site ${site}: nothing recorded`);
      return f32(m.shape, dividedBy(m.sum, m.steps.length));
    }
    if (step === undefined) throw new InspectError(`cache site ${site} keeps every step; name one`);
    const h = this.#held.get(keyOf(site, step));
    if (!h) throw new InspectError(`cache site ${site}: step ${step} not recorded`);
    return "tensor" in h ? h.tensor : readSpill(h.file, keyOf(site, step));
  }

  #accumulate(site: string, step: number, y: F32Tensor): void {
    let m = this.#means.get(site);
    if (!m) {
      const bytes = y.data.length * 8;
      if (this.#bytes + bytes > this.#o.maxBytes) this.#spillHeld();
      if (this.#bytes + bytes > this.#o.maxBytes) {
        throw new InspectError(
          `cache site ${site}: its step mean needs ${bytes} bytes, over the cache's ${this.#o.maxBytes} byte limit`,
        );
      }
      m = { shape: y.shape, sum: new Float64Array(y.data.length), steps: [] };
      this.#means.set(site, m);
      this.#grow(bytes);
    }
    if (m.steps.includes(step)) throw new InspectError(`cache site ${site}: step ${step} recorded twice`);
    m.steps.push(step);
    for (let i = 0; i < y.data.length; i++) m.sum[i] += y.data[i];
  }

  #grow(bytes: number): void {
    this.#bytes += bytes;
    this.#peak = Math.max(this.#peak, this.#bytes);
  }

  /** Moves every tensor held in memory to one new spill file. */
  #spillHeld(): void {
    const moving = [...this.#held.entries()].filter(([, h]) => "tensor" in h) as [
      string,
      { site: string; step: number; tensor: F32Tensor },
    ][];
    if (!moving.length) return;
    const file = this.#spill(moving.map(([key, h]) => ({ key, tensor: h.tensor })));
    for (const [key, h] of moving) {
      this.#held.set(key, { site: h.site, step: h.step, file });
      this.#bytes -= h.tensor.data.byteLength;
    }
  }

  #spill(entries: { key: string; tensor: F32Tensor }[]): string {
    const dir = this.#o.spillDir;
    if (!dir) {
      throw new InspectError(
        `activation cache: over its ${this.#o.maxBytes} byte limit and no spill folder (spillDir) was given`,
      );
    }
    const file = join(
      dir,
      `${this.#o.prefix ?? ""}activations-${String(this.#files.length).padStart(4, "0")}.safetensors`,
    );
    writeSpill(file, entries);
    this.#files.push(file);
    return file;
  }
}
