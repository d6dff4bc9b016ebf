/**
 * Shape-only check of the full-size wav2vec2-base-960h graph: built over the key list of the real checkpoint
 * (full_keys.json, no weights read), it binds exactly the `wav2vec2.` keys with their shapes; the keys upstream
 * loads but never executes are reported unused by name.
 */
import assert from "node:assert/strict";
import { buildWav2Vec2, parseWav2Vec2Config, wav2vec2Prefix } from "../src/models/wav2vec2.ts";
import { fakeStore, fullKeys, type FullKeysFile } from "./helpers/shared.ts";

type FullKeys = ReturnType<typeof fullKeys>;

function fileEntry(full: FullKeys, startsWith: string): FullKeysFile {
  const name = Object.keys(full.files).find((f) => f.startsWith(startsWith));
  assert.ok(name, `full_keys.json has no file '${startsWith}...'`);
  return full.files[name];
}

Deno.test({
  name:
    "full-size wav2vec2 (Wav2Vec2ForCTC layout) binds exactly the wav2vec2. keys; lm_head + masked_spec_embed unused",
  fn() {
    const full = fullKeys();
    const cfg = parseWav2Vec2Config(full.configs.wav2vec2, "full_keys.json configs.wav2vec2");
    assert.equal(cfg.hidden_size, 768);
    assert.equal(cfg.num_hidden_layers, 12);
    const entry = fileEntry(full, "wav2vec2-base-960h/model.safetensors");
    const store = fakeStore(entry.keys, "/nonexistent/wav2vec2/model.safetensors");
    assert.equal(wav2vec2Prefix(store), "wav2vec2.");
    const g = buildWav2Vec2(store, cfg, { prefix: "wav2vec2." });

    const bound = new Map(g.boundKeys().map((b) => [b.key, b.shape.join(",")]));
    const unexecuted = ["wav2vec2.masked_spec_embed"];
    const expected = entry.keys.filter((k) => k.name.startsWith("wav2vec2.") && !unexecuted.includes(k.name));
    assert.equal(bound.size, expected.length);
    for (const k of expected) assert.equal(bound.get(k.name), k.shape.join(","), k.name);
    assert.deepEqual(store.unusedKeys(), ["wav2vec2.masked_spec_embed", "lm_head.weight", "lm_head.bias"]);
    // 211 wav2vec2 tensors less masked_spec_embed; 94.37 M elements less its 768.
    assert.equal(bound.size, 210);
    const elements = expected.reduce((s, k) => s + k.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(elements, 94_371_712 - 768);
    // The graph serialises (external data relative to the checkpoint folder).
    assert.ok(g.encode("/nonexistent").length > 0);
  },
});

Deno.test({
  name: "full-size wav2vec2 as hallo loads it (bare Wav2Vec2Model keys) binds all keys but masked_spec_embed",
  fn() {
    const full = fullKeys();
    const cfg = parseWav2Vec2Config(full.configs.wav2vec2);
    const entry = fileEntry(full, "wav2vec2-base-960h (as loaded by hallo");
    const store = fakeStore(entry.keys, "/nonexistent/wav2vec2/model.safetensors");
    assert.equal(wav2vec2Prefix(store), "");
    const g = buildWav2Vec2(store, cfg, { prefix: "" });
    const bound = new Map(g.boundKeys().map((b) => [b.key, b.shape.join(",")]));
    for (const k of entry.keys) {
      if (k.name === "masked_spec_embed") continue;
      assert.equal(bound.get(k.name), k.shape.join(","), k.name);
    }
    assert.deepEqual(store.unusedKeys(), ["masked_spec_embed"]);
  },
});
