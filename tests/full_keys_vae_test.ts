/**
 * Shape-only check of the full-size sd-vae-ft-mse graphs: built over the key list of the real checkpoint
 * (full_keys.json, no weights read), encoder + decoder bind exactly its keys with their shapes, under both
 * the current and the deprecated attention key names.
 */
import assert from "node:assert/strict";
import { buildVaeDecoder, buildVaeEncoder, parseVaeConfig } from "../src/models/vae.ts";
import { fakeStore, fullKeys, type KeyEntry } from "./helpers/shared.ts";

const VAE_FILE = "sd-vae-ft-mse/diffusion_pytorch_model.safetensors";

/** Binds both graphs; returns key -> shape of every binding and the keys left unbound. */
function bindBoth(keys: readonly KeyEntry[], config: unknown) {
  const cfg = parseVaeConfig(config, "full_keys.json configs.vae");
  const store = fakeStore(keys, `/nonexistent/${VAE_FILE}`);
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
  fn() {
    const full = fullKeys();
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
  fn() {
    const full = fullKeys();
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
