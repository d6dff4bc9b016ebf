/**
 * The activation cache: reductions equal hand-computed means, values past the byte limit go to a safetensors
 * file in the given folder and read back bit for bit, and memory never exceeds the limit.
 */
import assert from "node:assert/strict";
import { ActivationCache } from "../src/stages/inspect/cache.ts";
import { InspectError } from "../src/stages/inspect/errors.ts";
import { readSafetensors } from "../src/weights/safetensors.ts";
import { withFileSource } from "../src/weights/source.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";

/** A tensor whose values are a fixed function of index and step (exactly representable). */
function ramp(shape: number[], step: number): F32Tensor {
  const n = shape.reduce((a, d) => a * d, 1);
  return f32(shape, Float32Array.from({ length: n }, (_, i) => (i * 7 + step * 3) % 17 - 8 + 0.25 * step));
}

const SITE = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2.probs";

Deno.test("cache: mean over heads equals the hand-computed head mean", () => {
  // (rows=2, heads=3, queries=2, keys=2)
  const t = ramp([2, 3, 2, 2], 0);
  const cache = new ActivationCache({
    sites: { [SITE]: { mean: ["heads"], headAxis: 1 } },
    maxBytes: 1 << 20,
  });
  cache.record({ site: SITE, step: 0, tensor: t });
  const got = cache.get(SITE, 0);
  assert.deepEqual(got.shape, [2, 2, 2]);
  for (let r = 0; r < 2; r++) {
    for (let i = 0; i < 4; i++) {
      const want = (t.data[(r * 3 + 0) * 4 + i] + t.data[(r * 3 + 1) * 4 + i] + t.data[(r * 3 + 2) * 4 + i]) /
        3;
      assert.equal(got.data[r * 4 + i], Math.fround(want));
    }
  }
});

Deno.test("cache: mean over folded (b f) frames keeps the batch and averages the frames", () => {
  // (b f)=2*3 rows of 2 values; frames are the inner factor.
  const t = ramp([6, 2], 1);
  const cache = new ActivationCache({
    sites: { out: { mean: ["frames"], frameAxis: 0, frames: 3 } },
    maxBytes: 1 << 20,
  });
  cache.record({ site: "out", step: 1, tensor: t });
  const got = cache.get("out", 1);
  assert.deepEqual(got.shape, [2, 2]);
  for (let b = 0; b < 2; b++) {
    for (let c = 0; c < 2; c++) {
      const want = (t.data[(b * 3) * 2 + c] + t.data[(b * 3 + 1) * 2 + c] + t.data[(b * 3 + 2) * 2 + c]) / 3;
      assert.equal(got.data[b * 2 + c], Math.fround(want));
    }
  }
});

Deno.test("cache: mean over heads, frames and steps equals the hand-computed mean of all three", () => {
  const cache = new ActivationCache({
    sites: { [SITE]: { mean: ["heads", "frames", "steps"], headAxis: 1, frameAxis: 0, frames: 2 } },
    maxBytes: 1 << 20,
  });
  const ts = [0, 1, 2].map((s) => ramp([2, 2, 3, 1], s)); // (b f)=1*2, heads=2, queries=3, keys=1
  ts.forEach((t, s) => cache.record({ site: SITE, step: s, tensor: t }));
  const got = cache.get(SITE);
  assert.deepEqual(got.shape, [1, 3, 1]);
  for (let q = 0; q < 3; q++) {
    let sum = 0;
    for (const t of ts) {
      for (let f = 0; f < 2; f++) for (let h = 0; h < 2; h++) sum += t.data[(f * 2 + h) * 3 + q];
    }
    assert.ok(Math.abs(got.data[q] - sum / 12) < 1e-6, `query ${q}: ${got.data[q]} vs ${sum / 12}`);
  }
  assert.deepEqual(cache.steps(SITE), [0, 1, 2]);
  assert.throws(() => cache.get(SITE, 0), InspectError);
});

Deno.test("cache: full sites past the byte limit spill to safetensors and read back bit-identical", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const shape = [4, 8, 8]; // 1 KiB per step
    const limit = 2500; // two steps fit, a third does not
    const cache = new ActivationCache({
      sites: { a: { mean: [] }, b: { mean: [] } },
      maxBytes: limit,
      spillDir: dir,
      prefix: "clip-0000.",
    });
    const written = new Map<string, F32Tensor>();
    for (let s = 0; s < 5; s++) {
      for (const site of ["a", "b"]) {
        const t = ramp(shape, s + (site === "b" ? 10 : 0));
        written.set(`${site}@${s}`, t);
        cache.record({ site, step: s, tensor: t });
        assert.ok(cache.bytesInMemory <= limit, `held ${cache.bytesInMemory} bytes`);
      }
    }
    assert.ok(cache.peakBytes <= limit, `peak ${cache.peakBytes} bytes over ${limit}`);
    assert.ok(cache.spillFiles.length >= 1);
    for (const f of cache.spillFiles) {
      assert.ok(f.startsWith(dir) && /clip-0000\.activations-\d{4}\.safetensors$/.test(f), f);
      const names = withFileSource(f, (src) => [...readSafetensors(src).tensors.keys()]);
      assert.ok(names.length >= 1 && names.every((n) => /^[ab]@\d$/.test(n)), names.join());
    }
    for (const [key, t] of written) {
      const [site, step] = key.split("@");
      const got = cache.get(site, Number(step));
      assert.deepEqual(got.shape, t.shape);
      assert.deepEqual(
        new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength),
        new Uint8Array(t.data.buffer),
      );
    }
    assert.deepEqual(cache.steps("a"), [0, 1, 2, 3, 4]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cache: a tensor larger than the limit goes straight to its own spill file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cache = new ActivationCache({ sites: { big: { mean: [] } }, maxBytes: 100, spillDir: dir });
    const t = ramp([64], 2);
    cache.record({ site: "big", step: 2, tensor: t });
    assert.equal(cache.bytesInMemory, 0);
    assert.equal(cache.spillFiles.length, 1);
    assert.deepEqual(cache.get("big", 2).data, t.data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cache: recordAll keeps declared sites only; bad input is a named error", () => {
  const cache = new ActivationCache({ sites: { [SITE]: { mean: ["heads"], headAxis: 1 } }, maxBytes: 10 });
  assert.equal(cache.recordAll(0, { other: ramp([2], 0) }), 0);
  assert.throws(
    () => cache.record({ site: "other", step: 0, tensor: ramp([2], 0) }),
    /other was not declared/,
  );
  assert.throws(
    () => cache.record({ site: SITE, step: 0, tensor: ramp([1, 2, 4, 4], 0) }),
    /over its 10 byte limit and no spill folder/,
  );
  const frames = new ActivationCache({
    sites: { x: { mean: ["frames"], frameAxis: 0, frames: 4 } },
    maxBytes: 99,
  });
  assert.throws(
    () => frames.record({ site: "x", step: 0, tensor: ramp([6, 1], 0) }),
    /not a multiple of 4 frames/,
  );
  const keep = new ActivationCache({ sites: { x: { mean: [] } }, maxBytes: 99 });
  keep.record({ site: "x", step: 0, tensor: ramp([2], 0) });
  assert.throws(() => keep.record({ site: "x", step: 0, tensor: ramp([2], 0) }), /recorded twice/);
  assert.throws(() => keep.record({ site: "x", step: 1, tensor: ramp([3], 0) }), /shape \[3\] at step 1/);
});
