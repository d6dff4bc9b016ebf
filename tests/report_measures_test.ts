/**
 * Known answers for the measures a run records while it samples and the report's sums of them: a clip's
 * guidance rows and bank shares from hand-made steps, the per-step mean over clips and the per-region mean,
 * identity drift over clips and per site, which resumes may continue a run's measures, and the two figures
 * carrying those numbers. The pipeline end of it (a real run, its report in Chromium) is in report_test.ts.
 */
import assert from "node:assert/strict";
import {
  ClipMeasurer,
  type ClipMeasures,
  describeMeasures,
  IDENTITY_SITES,
  identityProbes,
  measuresDifference,
  resolveMeasures,
} from "../src/stages/generate/clip_measures.ts";
import type { HalloModels } from "../src/stages/generate/models.ts";
import {
  guidanceFigure,
  identityFigure,
  summarizeGuidance,
  summarizeIdentity,
} from "../src/report/run_measures.ts";
import type { SamplerStep } from "../src/sampling/sampler.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";

const SITE = "down_blocks.2.attentions.0.transformer_blocks.0.attn1";

/** (1, 4, 1, 2, 2) with value(c, p). */
const lat = (value: (c: number, p: number) => number): F32Tensor =>
  f32([1, 4, 1, 2, 2], Float32Array.from({ length: 16 }, (_, i) => value(Math.floor(i / 4), i % 4)));

/** A step whose cond differs from uncond by 2 at pixel 0 and whose update is 0.5 at pixel 1. */
function step(index: number, probs?: F32Tensor): SamplerStep {
  const latents = lat((c, p) => c + p);
  const uncond = lat((c) => c);
  return {
    index,
    total: 2,
    timestep: 999 - index,
    latents,
    uncond,
    cond: lat((c, p) => c + (p === 0 ? 2 : 0)),
    guided: uncond,
    predOriginal: latents,
    next: lat((c, p) => c + p + (p === 1 ? -0.5 : 0)),
    probes: probs ? { [`${SITE}.probs`]: probs } : undefined,
  };
}

/** One frame, 2 query tokens, keys = 2 own + 2 bank: bank shares 0.5 and 0.8, mean 0.65. */
const PROBS = f32([1, 2, 4], Float32Array.from([0.25, 0.25, 0.3, 0.2, 0.1, 0.1, 0.4, 0.4]));

const REGIONS = {
  lip: Float32Array.from([1, 0, 0, 0]),
  face: Float32Array.from([1, 1, 0, 0]),
  background: new Float32Array(4),
};

const models = (guidance: boolean, probed: Record<string, string> = {}) =>
  ({ geometry: { guidance }, denoisingUNet: { probes: { attention: probed } } }) as unknown as HalloModels;

Deno.test("ClipMeasurer: guidance rows per step and region (null for an empty mask) and the bank share per site", () => {
  const settings = resolveMeasures(models(true, identityProbes([SITE])), { identity: [SITE] });
  assert.deepEqual(settings, { guidance: true, identity: [SITE] });
  const m = new ClipMeasurer(settings, REGIONS);
  m.step(step(0, PROBS));
  m.step(step(1, PROBS));
  const r = m.result()!;
  assert.equal(r.steps, 2);
  // lip: |cond - uncond| = 2 on its one pixel, no update there; face: half of each; background: no mask.
  assert.deepEqual(r.guidance!.slice(0, 3), [
    { step: 0, region: "lip", condDelta: 2, update: 0 },
    { step: 0, region: "face", condDelta: 1, update: 0.25 },
    { step: 0, region: "background", condDelta: null, update: null },
  ]);
  assert.deepEqual(r.guidance!.map((g) => g.step), [0, 0, 0, 1, 1, 1]);
  assert.equal(r.identity!.length, 2);
  for (const [i, s] of r.identity!.entries()) {
    assert.equal(s.layer, SITE);
    assert.equal(s.step, i);
    assert.ok(Math.abs(s.mean - 0.65) < 1e-7, `${s.mean}`);
  }
});

Deno.test("ClipMeasurer: nothing applies without guidance and sites; a missing probe is named", () => {
  assert.deepEqual(resolveMeasures(models(false)), { guidance: false, identity: [] });
  assert.deepEqual(resolveMeasures(models(true), { guidance: false }), { guidance: false, identity: [] });
  const none = new ClipMeasurer(resolveMeasures(models(false)), REGIONS);
  none.step(step(0));
  assert.equal(none.result(), undefined);
  assert.throws(
    () => resolveMeasures(models(true), { identity: IDENTITY_SITES }),
    /identity measure reads down_blocks\.2\..*, up_blocks\.1\..*, but the denoising UNet was loaded without those probes/,
  );
  const m = new ClipMeasurer({ guidance: false, identity: [SITE] }, REGIONS);
  assert.throws(
    () => m.step(step(3)),
    /step 3 has no probe down_blocks\.2\.attentions\.0\.transformer_blocks\.0\.attn1\.probs/,
  );
  assert.deepEqual(identityProbes(), Object.fromEntries(IDENTITY_SITES.map((s) => [s, "mean"])));
});

Deno.test("resume: measures continue only as the run measured them (a run from before measures may add guidance)", () => {
  const both = { guidance: true, identity: [SITE] }, guided = { guidance: true, identity: [] };
  assert.equal(measuresDifference(both, both), undefined);
  assert.equal(measuresDifference(undefined, guided), undefined);
  assert.equal(
    measuresDifference(guided, both),
    `was measured with guidance by region, this run with guidance by region and --measure identity (${SITE})`,
  );
  assert.equal(
    measuresDifference(undefined, { guidance: false, identity: [SITE] }),
    `was measured with no measures, this run with --measure identity (${SITE})`,
  );
  assert.equal(describeMeasures({ guidance: false, identity: [] }), "no measures");
});

const g = (step: number, region: string, condDelta: number | null, update: number | null) => ({
  step,
  region,
  condDelta,
  update,
});
const share = (layer: string, step: number, mean: number) => ({ layer, step, mean });

/** Three clips of two steps; clip 1 from before measures (none); the face mask empty in clip 0 only. */
const CLIPS: (ClipMeasures | undefined)[] = [
  {
    steps: 2,
    guidance: [g(0, "lip", 1, 0.5), g(0, "face", null, null), g(1, "lip", 3, 1.5), g(1, "face", null, null)],
    identity: [share("a", 0, 0.4), share("b", 0, 0.2), share("a", 1, 0.6), share("b", 1, 0.4)],
  },
  undefined,
  {
    steps: 2,
    guidance: [g(0, "lip", 2, 1), g(0, "face", 4, 2), g(1, "lip", 6, 3), g(1, "face", 8, 4)],
    identity: [share("a", 0, 0.1), share("b", 0, 0.1), share("a", 1, 0.1), share("b", 1, 0.1)],
  },
];

Deno.test("summarizeGuidance: per step the mean over the measured clips, per region the mean over all; empty masks skipped", () => {
  const s = summarizeGuidance(CLIPS)!;
  assert.deepEqual(s.clips, [0, 2]);
  assert.deepEqual(s.regions, ["lip", "face"]);
  assert.deepEqual(s.rows, [
    g(0, "lip", 1.5, 0.75),
    g(0, "face", 4, 2),
    g(1, "lip", 4.5, 2.25),
    g(1, "face", 8, 4),
  ]);
  assert.deepEqual(s.mean, { lip: { condDelta: 3, update: 1.5 }, face: { condDelta: 6, update: 3 } });
  assert.equal(summarizeGuidance([undefined, { steps: 2, identity: [share("a", 0, 1)] }]), undefined);
  const empty = summarizeGuidance([{ steps: 1, guidance: [g(0, "lip", null, null)] }])!;
  assert.deepEqual(empty.mean, { lip: { condDelta: null, update: null } });
});

Deno.test("summarizeIdentity: per clip the mean over steps and sites, its slope and change, and each site's series", () => {
  const clips = [CLIPS[0], { steps: 2, identity: [share("a", 0, 0.3), share("b", 0, 0.3)] }, CLIPS[2]];
  const d = summarizeIdentity(clips)!;
  assert.deepEqual(d.sites, ["a", "b"]);
  const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-12);
  // Clip means 0.4, 0.3, 0.1: slope = ((-1)(0.1) + 0 + (1)(-0.1)) / 2 = -0.15, change -0.3.
  assert.ok(near(d.perClip, [0.4, 0.3, 0.1]), `${d.perClip}`);
  assert.ok(Math.abs(d.slope + 0.15) < 1e-12 && Math.abs(d.change + 0.3) < 1e-12, `${d.slope} ${d.change}`);
  assert.ok(near(d.perSite.a, [0.5, 0.3, 0.1]) && near(d.perSite.b, [0.3, 0.3, 0.1]));
  assert.equal(summarizeIdentity([CLIPS[1], { steps: 1, guidance: [] }]), undefined);
});

Deno.test("report figures: guidance by region and identity drift carry the summed numbers", async () => {
  const gf = (await guidanceFigure(summarizeGuidance(CLIPS)!))!;
  assert.equal(gf.name, "guidance_regions");
  assert.deepEqual(gf.summary, {
    lip: { condDelta: [1.5, 4.5], update: [0.75, 2.25] },
    face: { condDelta: [4, 8], update: [2, 4] },
  });
  assert.match(JSON.stringify(gf.plotly.layout), /mean over clips 0, 2/);
  assert.equal(
    await guidanceFigure(summarizeGuidance([{ steps: 1, guidance: [g(0, "lip", null, null)] }])!),
    undefined,
  );
  const f = await identityFigure(summarizeIdentity([CLIPS[0], CLIPS[2]])!);
  assert.equal(f.name, "identity_drift");
  assert.deepEqual(f.summary, { perClip: [0.4, 0.1], slope: -0.3, change: -0.3 });
  assert.match(
    JSON.stringify(f.plotly.layout),
    /slope -0\.3 per clip; change -0\.3; mean over steps and 2 sites/,
  );
});
