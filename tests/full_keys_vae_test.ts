/**
 * Shape-only check of the full-size sd-vae-ft-mse graphs: built over the key list of the real checkpoint
 * (full_keys.json, no weights read), encoder + decoder bind exactly its keys with their shapes, under both
 * the current and the deprecated attention key names.
 */
import assert from "node:assert/strict";
import { buildVaeDecoder, buildVaeEncoder, parseVaeConfig } from "../src/models/vae.ts";
import type { Checkpoint } from "../src/weights/checkpoint.ts";
import { WeightStore } from "../src/weights/store.ts";
import type { StorageDType, TensorRef } from "../src/weights/types.ts";

const FULL_KEYS = "/work/shared/reference/full_keys.json";
const VAE_FILE = "sd-vae-ft-mse/diffusion_pytorch_model.safetensors";
const haveKeys = (() => {
  try {
    return Deno.statSync(FULL_KEYS).isFile;
  } catch {
    return false;
  }
})();

interface KeyEntry {
  name: string;
  shape: number[];
}

interface FullKeys {
  configs: Record<string, unknown>;
  files: Record<string, { keys: KeyEntry[]; num_tensors: number }>;
}

/** A store over a key list: every tensor points at a dummy file, enough for a graph build. */
function fakeStore(keys: readonly KeyEntry[]): WeightStore {
  const file = "/nonexistent/sd-vae-ft-mse/diffusion_pytorch_model.safetensors";
  const tensors = new Map<string, TensorRef>();
  for (const k of keys) {
    const n = k.shape.reduce((a, b) => a * b, 1);
    tensors.set(k.name, {
      name: k.name,
      file,
      offset: 0,
      length: n * 4,
      dtype: "F32" as StorageDType,
      shape: k.shape,
    });
  }
  const ckpt: Checkpoint = { file, format: "safetensors", tensors, metadata: {} };
  return new WeightStore().add(ckpt);
}

/** Binds both graphs; returns key -> shape of every binding and the keys left unbound. */
function bindBoth(keys: readonly KeyEntry[], config: unknown) {
  const cfg = parseVaeConfig(config, "full_keys.json configs.vae");
  const store = fakeStore(keys);
  const enc = buildVaeEncoder(store, cfg);
  const dec = buildVaeDecoder(store, cfg);
  const bound = new Map<string, string>();
  for (const b of [...enc.boundKeys(), ...dec.boundKeys()]) {
    assert.ok(!bound.has(b.key), `${b.key} bound by both graphs`);
    bound.set(b.key, b.shape.join(","));
  }
  // Both graphs serialise with external data relative to the checkpoint folder.
  assert.ok(enc.encode("/nonexistent").length > 0 && dec.encode("/nonexistent").length > 0);
  return { cfg, bound, unused: store.unusedKeys() };
}

Deno.test({
  name: "full-size VAE encoder + decoder bind exactly the 248 sd-vae-ft-mse keys with their shapes",
  ignore: !haveKeys,
  fn() {
    const full: FullKeys = JSON.parse(Deno.readTextFileSync(FULL_KEYS));
    const entry = full.files[VAE_FILE];
    assert.ok(entry, `full_keys.json has no '${VAE_FILE}'`);
    const { cfg, bound, unused } = bindBoth(entry.keys, full.configs.vae);
    assert.deepEqual(cfg.blockOutChannels, [128, 256, 512, 512]);
    assert.equal(cfg.normNumGroups, 32);
    assert.deepEqual(unused, [], `keys left unbound: ${unused.join(", ")}`);
    assert.equal(bound.size, entry.num_tensors);
    assert.equal(bound.size, 248);
    for (const k of entry.keys) assert.equal(bound.get(k.name), k.shape.join(","), k.name);
    // 83.65 M parameters (spec section 9).
    const elements = entry.keys.reduce((s, k) => s + k.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(Math.round(elements / 1e4) / 100, 83.65);
  },
});

Deno.test({
  name: "full-size VAE over the deprecated attention names (query/key/value/proj_attn) binds every key",
  ignore: !haveKeys,
  fn() {
    const full: FullKeys = JSON.parse(Deno.readTextFileSync(FULL_KEYS));
    const old = full.files[VAE_FILE].keys.map((k) => ({
      ...k,
      name: k.name.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.")
        .replace(".to_out.0.", ".proj_attn."),
    }));
    assert.equal(old.filter((k) => k.name.includes(".proj_attn.")).length, 4);
    const { bound, unused } = bindBoth(old, full.configs.vae);
    assert.deepEqual(unused, []);
    for (const k of old) assert.equal(bound.get(k.name), k.shape.join(","), k.name);
  },
});
