/**
 * CFG halves (`cfgBatch: "halves"`): the denoising UNet built for batch 1 and run once per CFG half gives what the
 * batch-2 graph gives, on tiny random weights (64x64, 4-frame clips, 2 steps): every step's uncond, cond and
 * guided predictions and latents, the probes (a cross-attention site concatenated over the halves, a
 * bank-reading self-attention site for both halves), an activation cache, and interventions.
 */
import assert from "node:assert/strict";
import { fixture, Hallo, type HalloClip, type HalloDenoiseOptions } from "../mod.ts";
import type { SamplerStep } from "../src/sampling/sampler.ts";
import type { Tensor } from "../src/tensor.ts";
import { ActivationCache } from "../src/stages/inspect/cache.ts";
import { tinyWeightsDir } from "./helpers/tiny_temp.ts";
import { relL2 as relArrays } from "./helpers/tensors.ts";

const LIP = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2.probs";
const SELF = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.probs";
/** Relative L2 of a against b, same shapes. */
function relL2(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return relArrays(a.data as Float32Array, b.data as Float32Array);
}

async function load(cfgBatch: "joint" | "halves"): Promise<{ hallo: Hallo; clip: HalloClip }> {
  const hallo = await Hallo.load(await tinyWeightsDir(), {
    size: 64,
    frames: 4,
    threads: 1,
    cfgBatch,
    probes: { attention: { [LIP.slice(0, -6)]: "heads", [SELF.slice(0, -6)]: "mean" } },
  });
  const work = await Deno.makeTempDir({ prefix: "hallo-halves-" });
  try {
    await hallo.prepare(fixture("astronaut.png"), fixture("speech.wav"), { cacheDir: work });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  return { hallo, clip: await hallo.clip(0) };
}

async function steps(x: { hallo: Hallo; clip: HalloClip }, o: HalloDenoiseOptions = {}) {
  const it = x.hallo.denoise(x.clip, { steps: 2, seed: 42, ...o });
  const seen: SamplerStep[] = [];
  let r = await it.next();
  for (; !r.done; r = await it.next()) seen.push(r.value);
  return { seen, final: r.value };
}

/** Every step's predictions and latents, and the final latents, of `b` (halves) against `a` (joint). */
function assertSameSteps(
  a: Awaited<ReturnType<typeof steps>>,
  b: Awaited<ReturnType<typeof steps>>,
  what: string,
): number {
  let worst = relL2(b.final, a.final);
  assert.equal(b.seen.length, a.seen.length);
  a.seen.forEach((s, i) => {
    const h = b.seen[i];
    for (const k of ["uncond", "cond", "guided", "latents", "predOriginal"] as const) {
      worst = Math.max(worst, relL2(h[k]!, s[k]!));
    }
  });
  assert.ok(worst <= 1e-6, `${what}: halves vs joint rel L2 ${worst}`);
  return worst;
}

type Loaded = Awaited<ReturnType<typeof load>>;

/** `f` over both modes' networks, released after. */
async function both(f: (joint: Loaded, halves: Loaded) => Promise<void>): Promise<void> {
  const joint = await load("joint");
  try {
    const halves = await load("halves");
    try {
      await f(joint, halves);
    } finally {
      await halves.hallo.release();
    }
  } finally {
    await joint.hallo.release();
  }
}

Deno.test("CFG halves: the UNet is built for batch 1; a clip's steps equal the joint batch-2 run within 1e-6 relative", () =>
  both(async (joint, halves) => {
    assert.equal(halves.hallo.models.denoisingUNet.shape.batch, 1);
    assert.equal(halves.hallo.models.geometry.cfgBatch, "halves");
    assert.equal(joint.hallo.models.denoisingUNet.shape.batch, 2);
    const a = await steps(joint), b = await steps(halves);
    const worst = assertSameSteps(a, b, "plain");
    console.log(`halves vs joint: worst rel L2 ${worst}`);
    // The uncond and cond halves are distinct predictions (the split did not hand one half twice).
    assert.ok(relL2(b.seen[0].uncond!, b.seen[0].cond) > 1e-3);
  }));

Deno.test("CFG halves: probes come out as the batch-2 graph names and lays them out, both halves", () =>
  both(async (joint, halves) => {
    const a = (await steps(joint)).seen[0].probes as Record<string, Tensor>;
    const b = (await steps(halves)).seen[0].probes as Record<string, Tensor>;
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
    assert.ok(`${SELF}#1` in a, "the batch-2 graph probes the uncond half's self-attention as #1");
    for (const k of Object.keys(a)) {
      assert.ok(relL2(b[k], a[k]) <= 1e-6, `${k}: rel L2 ${relL2(b[k], a[k])}`);
    }
  }));

Deno.test("CFG halves: an activation cache records every step as in joint mode", () =>
  both(async (joint, halves) => {
    const cache = () =>
      new ActivationCache({
        sites: { [LIP]: { mean: [] }, [`${SELF}#1`]: { mean: ["steps"] } },
        maxBytes: 2 ** 26,
      });
    const ca = cache(), cb = cache();
    await steps(joint, { cache: ca });
    await steps(halves, { cache: cb });
    assert.deepEqual(cb.steps(LIP), [0, 1]);
    for (const s of [0, 1]) assert.ok(relL2(cb.get(LIP, s), ca.get(LIP, s)) <= 1e-6);
    assert.ok(relL2(cb.get(`${SELF}#1`), ca.get(`${SELF}#1`)) <= 1e-6);
  }));

Deno.test("CFG halves: interventions on the bank's motion frames and the audio act as in joint mode", () =>
  both(async (joint, halves) => {
    const o: HalloDenoiseOptions = {
      interventions: [{ kind: "motion-frames-zero", steps: [1] }, { kind: "audio-silence" }],
    };
    const a = await steps(joint, o), b = await steps(halves, o);
    assertSameSteps(a, b, "interventions");
    // ... and they did change the run.
    assert.ok(relL2(a.final, (await steps(joint)).final) > 1e-4);
  }));
