/**
 * The inspection pieces wired through the front door, on tiny random weights (64x64, 4-frame clips, 2 steps):
 * an activation cache records every step of `Hallo.denoise` without changing a bit of its output (nor does
 * loading the probes), and `animate`'s frames are the same with its measures (guidance by region, identity at
 * `IDENTITY_SITES`) on and off; interventions are applied at their steps, patching with the same tensor changes
 * nothing, with lip weight 0 the lip mask's patch changes nothing, swapping two clips' audio swaps their audio
 * attributions; `animate` records its interventions in run.json and spills each clip's cache into the run dir.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fixture, Hallo, type HalloClip, type HalloDenoiseOptions } from "../mod.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";
import { ActivationCache } from "../src/stages/inspect/cache.ts";
import { audioAttribution } from "../src/stages/inspect/audio_attribution.ts";
import { clipActivationCache } from "../src/stages/generate/clip_cache.ts";
import { readRunMeasures, readRunRecord, runFiles } from "../src/stages/generate/run_dir.ts";
import { IDENTITY_SITES } from "../src/stages/generate/clip_measures.ts";
import { tinyWeightsDir } from "./helpers/tiny_temp.ts";

const STEPS = 2;
const LIP = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2.probs";
const SELF = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.probs";
const bytes = (t: F32Tensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

async function finalLatents(hallo: Hallo, clip: HalloClip, o: HalloDenoiseOptions): Promise<F32Tensor> {
  const it = hallo.denoise(clip, { steps: STEPS, seed: 42, ...o });
  let r = await it.next();
  while (!r.done) r = await it.next();
  return r.value;
}

async function setup(probes: boolean) {
  const dir = await tinyWeightsDir();
  const work = await Deno.makeTempDir({ prefix: "hallo-wiring-" });
  const hallo = await Hallo.load(dir, {
    size: 64,
    frames: 4,
    threads: 1,
    ...(probes
      ? {
        probes: { attention: { [LIP.slice(0, -6)]: "heads", [SELF.slice(0, -6)]: "mean" } },
        measureIdentity: true,
      }
      : {}),
  });
  const prepared = await hallo.prepare(fixture("astronaut.png"), fixture("speech.wav"), { cacheDir: work });
  return { hallo, work, prepared };
}

Deno.test("front door: the cache records every step; outputs are bit-identical with the cache (and probes) on and off, and animate's with its measures on and off", async () => {
  const plain = await setup(false);
  const probed = await setup(true);
  try {
    const clip = await probed.hallo.clip(0);
    const without = await finalLatents(plain.hallo, await plain.hallo.clip(0), {});
    const off = await finalLatents(probed.hallo, clip, {});
    // Room for the self-attention site's float64 step mean and no lip probe: every lip step spills.
    const cache = new ActivationCache({
      sites: { [LIP]: { mean: [] }, [SELF]: { mean: ["steps"] } },
      maxBytes: 262_144 + 16,
      spillDir: probed.work,
      prefix: "clip-0000.",
    });
    const seen: Record<string, unknown>[] = [];
    const it = probed.hallo.denoise(clip, { steps: STEPS, seed: 42, cache });
    let r = await it.next();
    for (; !r.done; r = await it.next()) seen.push(r.value.probes!);
    assert.deepEqual(bytes(r.value), bytes(off), "cache on vs off");
    assert.deepEqual(bytes(off), bytes(without), "probes loaded vs not");

    assert.deepEqual(cache.steps(LIP), [0, 1]);
    assert.ok(cache.spillFiles.length > 0, "the cache spilled");
    for (const s of [0, 1]) assert.deepEqual(bytes(cache.get(LIP, s)), bytes(seen[s][LIP] as F32Tensor));
    const a = seen[0][SELF] as F32Tensor, b = seen[1][SELF] as F32Tensor;
    const mean = cache.get(SELF);
    for (const i of [0, 7, a.data.length - 1]) {
      assert.ok(Math.abs(mean.data[i] - (a.data[i] + b.data[i]) / 2) < 1e-7);
    }

    // animate: the same first clip (frames and the motion frames handed on) with every measure off, and on.
    const first = async (x: typeof plain, measures?: { guidance: false }) => {
      const res = await x.hallo.animate("", "", {
        prepared: x.prepared,
        out: join(x.work, "m.mp4"),
        steps: STEPS,
        maxClips: 1,
        measures,
      });
      const files = [runFiles.frames, runFiles.motion].map((f) => Deno.readFileSync(f(res.runDir, 0)));
      return { files, measures: await readRunMeasures(res.runDir) };
    };
    const unmeasured = await first(plain, { guidance: false });
    const measured = await first(probed);
    assert.deepEqual(measured.files, unmeasured.files, "frames with measures on vs off");
    assert.deepEqual(unmeasured.measures, [undefined]);
    const m = measured.measures[0]!;
    assert.equal(m.steps, STEPS);
    assert.deepEqual(m.guidance!.map((r) => `${r.step} ${r.region}`), [
      "0 lip",
      "0 face",
      "0 background",
      "1 lip",
      "1 face",
      "1 background",
    ]);
    assert.deepEqual(
      m.identity!.map((s) => `${s.step} ${s.layer}`),
      [0, 1].flatMap((st) => IDENTITY_SITES.map((l) => `${st} ${l}`)),
    );
    assert.ok(m.identity!.every((s) => s.mean > 0 && s.mean < 1), JSON.stringify(m.identity));
  } finally {
    for (const x of [plain, probed]) {
      await x.hallo.release();
      await Deno.remove(x.work, { recursive: true });
    }
  }
});

Deno.test("front door interventions: same tensor and lip-weight-0 patches change nothing; audio swaps swap attributions; occlusion; animate records them", async () => {
  const { hallo, work } = await setup(true);
  try {
    const clip = await hallo.clip(0);
    const bank = await hallo.bank(clip);

    // Patching with the same tensor: the clip's own audio, the image's own face embedding.
    const same = await hallo.compare(clip, { steps: STEPS, bank }, {
      steps: STEPS,
      bank,
      interventions: [
        { kind: "audio-clip", clip: 0 },
        { kind: "face-embedding-image", image: fixture("astronaut.png") },
      ],
    });
    assert.equal(same.maxFrameDifference, 0);
    assert.deepEqual(bytes(same.a.latents), bytes(same.b.latents));

    // The lip branch's patch (its mask opened everywhere) has an effect at lip weight 1, exactly none at 0.
    const lipPatch = [{ kind: "mask" as const, region: "lip" as const, fill: 1 }];
    const on = await hallo.compare(clip, { steps: STEPS, bank }, {
      steps: STEPS,
      bank,
      interventions: lipPatch,
    });
    assert.ok(on.latents.every((v) => v > 0), `lip weight 1: ${on.latents}`);
    assert.ok(on.regions.lip.every((v) => v > 0));
    const w0 = { steps: STEPS, bank, motionScale: [1, 1, 0] as [number, number, number] };
    const off = await hallo.compare(clip, w0, { ...w0, interventions: lipPatch });
    assert.equal(off.maxFrameDifference, 0);
    assert.deepEqual(bytes(off.a.latents), bytes(off.b.latents));

    // A patch at step 1 only leaves step 0 alone.
    const steps: F32Tensor[] = [];
    const it = hallo.denoise(clip, {
      steps: STEPS,
      seed: 42,
      bank,
      interventions: [{ kind: "audio-silence", steps: [1] }],
    });
    for (let r = await it.next(); !r.done; r = await it.next()) steps.push(r.value.guided);
    const plainSteps: F32Tensor[] = [];
    const it2 = hallo.denoise(clip, { steps: STEPS, seed: 42, bank });
    for (let r = await it2.next(); !r.done; r = await it2.next()) plainSteps.push(r.value.guided);
    assert.deepEqual(bytes(steps[0]), bytes(plainSteps[0]));
    assert.notDeepEqual(bytes(steps[1]), bytes(plainSteps[1]));

    // Two clips that differ only in their audio (clip 0's and clip 1's tokens): patching each with the
    // other's audio gives exactly the other's audio attribution.
    const audio1 = (await hallo.sources({ kind: "audio-clip", clip: 1 })).audio!;
    const half = clip.audioTokens.data.length / 2;
    const tokens1 = clip.audioTokens.data.slice();
    tokens1.set(audio1.data, half);
    const clipB: HalloClip = { ...clip, audioTokens: f32(clip.audioTokens.shape, tokens1) };
    const attribution = async (c: HalloClip, o: HalloDenoiseOptions) => {
      const cache = new ActivationCache({
        sites: { [LIP]: { mean: ["heads", "steps"], headAxis: 1 } },
        maxBytes: 1e8,
      });
      await finalLatents(hallo, c, { bank, cache, ...o });
      return audioAttribution([{ probs: cache.get(LIP), mask: c.masks.lip[0] }], {
        frames: 4,
        height: 8,
        width: 8,
      }).maps;
    };
    const a = await attribution(clip, {});
    const b = await attribution(clipB, {});
    assert.notDeepEqual(bytes(a), bytes(b), "the two clips' audio differ");
    assert.deepEqual(
      bytes(await attribution(clip, { interventions: [{ kind: "audio-clip", clip: 1 }] })),
      bytes(b),
    );
    assert.deepEqual(
      bytes(await attribution(clipB, { interventions: [{ kind: "audio-clip", clip: 0 }] })),
      bytes(a),
    );

    // Occlusion through the front door: silencing a window moves the lip region; with every audio branch
    // weighted 0 the audio reaches nothing, and the change is exactly 0.
    const occ = await hallo.occlusion(clip, { steps: STEPS, bank, windows: [0, 2] });
    assert.deepEqual([occ.windows, occ.frames, occ.change.shape], [[0, 2], 4, [2, 4]]);
    assert.ok(occ.change.data.some((v) => v > 0));
    const mute = await hallo.occlusion(clip, { steps: STEPS, bank, windows: [0, 2], motionScale: [0, 0, 0] });
    assert.ok(mute.change.data.every((v) => v === 0), `${mute.change.data}`);

    // animate: the interventions in run.json, each clip's cache spilled into the run dir under its prefix.
    const caches: ActivationCache[] = [];
    const res = await hallo.animate(fixture("astronaut.png"), fixture("speech.wav"), {
      out: join(work, "v.mp4"),
      steps: STEPS,
      maxClips: 1,
      interventions: [{ kind: "audio-shift", by: 1, steps: [0] }],
      cache: (
        i,
        runDir,
      ) => (caches[i] = clipActivationCache(runDir, i, { sites: { [LIP]: { mean: [] } }, maxBytes: 0 })),
    });
    const rec = await readRunRecord(res.runDir);
    assert.deepEqual(rec.interventions, [{ kind: "audio-shift", by: 1, steps: [0] }]);
    assert.equal(caches.length, 1);
    assert.deepEqual(caches[0].steps(LIP), [0, 1]);
    assert.ok(caches[0].spillFiles.every((f) => f.startsWith(join(res.runDir, "clip-0000.activations-"))));
    // A resume must continue with the run's interventions: others are refused before any clip is computed.
    await assert.rejects(
      () =>
        hallo.animate(fixture("astronaut.png"), fixture("speech.wav"), {
          out: join(work, "v.mp4"),
          steps: STEPS,
          resume: true,
          interventions: [{ kind: "audio-silence" }],
        }),
      /was made with interventions \[\{"kind":"audio-shift","by":1,"steps":\[0\]\}\], this run has/,
    );
  } finally {
    await hallo.release();
    await Deno.remove(work, { recursive: true });
  }
});
