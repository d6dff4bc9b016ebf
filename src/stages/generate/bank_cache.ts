/**
 * Reuse of the reference UNet's bank across runs whose reference inputs are identical. The bank depends
 * only on the reference latents (reference image + motion frames through the VAE), the image-proj context
 * and the timestep (0) — not on cfg, the motion scales or the noise — so in a sweep the first clip's bank
 * (motion frames = the reference image itself) is the same for every setting of one guidance mode.
 */
import { createHash } from "node:crypto";
import type { F32Tensor } from "../../tensor.ts";
import { type Bank, type ReferenceUNet, runReferenceUNet } from "../networks/unets.ts";

/** What `BankCache.run` hands back: the reader bank, and whether it came from the cache. */
export interface CachedBank {
  /** The bank as the reader sees it (fp16-rounded), in pairing order. */
  readerBank: Bank;
  cached: boolean;
}

function hashTensor(h: ReturnType<typeof createHash>, t: F32Tensor): void {
  h.update(`[${t.shape.join(",")}]`);
  h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

/**
 * A small cache of reader banks, keyed by a sha256 of the reference latents, the context and the timestep,
 * per reference-UNet instance (a bank never crosses model sets). A full-size guidance bank is ~280 MB, so
 * it keeps at most `maxEntries` (least recently used dropped); callers should offer it only clips whose
 * inputs can repeat (a sweep: clip 0).
 */
export class BankCache {
  private readonly byModel = new WeakMap<ReferenceUNet, Map<string, Bank>>();
  /** Banks served from the cache / computed, over the cache's life. */
  hits = 0;
  misses = 0;

  constructor(readonly maxEntries = 1) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`BankCache maxEntries must be a positive integer, got ${maxEntries}`);
    }
  }

  /** `runReferenceUNet(model, refLatents, context, timestep).readerBank`, computed once per distinct input. */
  async run(
    model: ReferenceUNet,
    refLatents: F32Tensor,
    context: F32Tensor,
    timestep = 0,
  ): Promise<CachedBank> {
    const h = createHash("sha256");
    hashTensor(h, refLatents);
    hashTensor(h, context);
    h.update(`t=${timestep}`);
    const key = h.digest("hex");
    let banks = this.byModel.get(model);
    if (!banks) this.byModel.set(model, banks = new Map());
    const hit = banks.get(key);
    if (hit) {
      // Re-insert: Map order is the recency order the eviction below relies on.
      banks.delete(key);
      banks.set(key, hit);
      this.hits++;
      return { readerBank: hit, cached: true };
    }
    const { readerBank } = await runReferenceUNet(model, refLatents, context, timestep);
    this.misses++;
    banks.set(key, readerBank);
    while (banks.size > this.maxEntries) banks.delete(banks.keys().next().value!);
    return { readerBank, cached: false };
  }
}
