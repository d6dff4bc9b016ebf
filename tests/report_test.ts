/**
 * Everything drawn from a tiny random run (128 px, 2 DDIM steps, guidance, attention probes on
 * down_blocks.0), sharing one run to keep the suite fast:
 * - the measures the run recorded while sampling (guidance by region, identity drift at the probed reference
 *   self-attention) equal the measures of the captured first clip's steps, and the report shows their sums;
 * - the demo-like HTML report opened in headless Chromium: no console errors or failed loads, every Plotly
 *   figure drawn (marked by the page and visibly non-blank in the screenshot, kept in $HALLO_TEST_ARTIFACTS when
 *   that names a folder), one
 *   local plotly.js, the video linked; Chromium is required in CI (the test fails there without it) and
 *   skipped with a notice elsewhere when missing;
 * - the UNet-side visualisers: the captured first clip equals the run's, the bank figure's PCA images and
 *   statistics, attention maps that are probabilities where they must be, head and frame selection, the
 *   per-step strip with a VAE decode.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import sharp from "sharp";
import { bankSlots } from "../src/models/bank.ts";
import { readRunMeasures, runFiles, runFrame } from "../src/stages/generate/run_dir.ts";
import { measureRegions } from "../src/stages/generate/clip_measures.ts";
import { guidanceByRegion } from "../src/stages/inspect/guidance_regions.ts";
import { bankShare } from "../src/stages/inspect/identity.ts";
import { loadHalloModels } from "../src/stages/generate/models.ts";
import { prepareInputs, renderVideo } from "../src/stages/generate/run.ts";
import { decodeLatents } from "../src/stages/networks/vae.ts";
import type { F32Tensor } from "../src/tensor.ts";
import { videoToFrames } from "../src/stages/video/frames.ts";
import { ensureTinyWeights } from "../src/tiny/random.ts";
import { checkPageInChromium, findChromium } from "../src/report/headless.ts";
import { PLOTLY_FILE, plotlyBundlePath } from "../src/report/plotly_asset.ts";
import { writeRunReport } from "../src/report/report.ts";
import { stageFigures } from "../src/report/stage_figures.ts";
import { writeIdentityMdxModel } from "../src/tiny/mdx_identity.ts";
import { attentionFigure, attentionProbes, describeAttention, pickSteps } from "../src/viz/attention.ts";
import { bankFigure, bankItemLabels, describeBank, tokenGrid } from "../src/viz/bank.ts";
import { captureFirstClip } from "../src/stages/generate/capture.ts";
import { VizError } from "../src/viz/figure.ts";
import { describeSteps, stepsFigure } from "../src/viz/steps.ts";
import { assertRenderersAgree } from "./helpers/figure_agreement.ts";
import { testWithEnv, withEnv } from "./helpers/env.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Where the report screenshot is kept for a person to look at (nothing is written without it). */
const ARTIFACTS = Deno.env.get("HALLO_TEST_ARTIFACTS");
const CI = Boolean(Deno.env.get("CI"));
const chromium = findChromium();
if (!chromium && !CI) {
  console.warn("report_test: chromium not found; the browser checks are skipped (CI requires them)");
}

const SIZE = 128, LAT = SIZE / 8, F = 16;
const work = await Deno.makeTempDir({ prefix: "hallo-report-" });
globalThis.addEventListener("unload", () => Deno.removeSync(work, { recursive: true }));
// Probes leave the video bit-identical (unet_probes_test), so one set of networks renders and inspects.
const AUDIO_HEADS = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2";
const settings = { steps: 2, cfg: 3.5, motionScale: [1, 1, 1] as [number, number, number], seed: 42 };
const OUT = join(work, "out");
// Identity is measured at the reference self-attention the attention figure already probes (down_blocks.0).
const SELF = "down_blocks.0.attentions.0.transformer_blocks.0.attn1";
// Compiled graphs go to this run's scratch folder: set while the shared run is made and while each test runs,
// never for the other modules of the process (see testWithEnv).
const GRAPHS = { HALLO_GRAPH_CACHE: join(work, "graphs") };
const test = testWithEnv(GRAPHS);
const { prepared, models, render, clip } = await withEnv(GRAPHS, async () => {
  const tiny = (await ensureTinyWeights(join(work, "tiny"))).dir;
  const prepared = await prepareInputs(
    join(ROOT, "fixtures", "astronaut.png"),
    join(ROOT, "fixtures", "speech.wav"),
    {
      weightsDir: tiny,
      size: SIZE,
      allowMissingFaceModels: true,
      cacheDir: join(work, "cache"),
      // As the demo does it: the tiny set has no separator, the identity stand-in runs the separation stage.
      separatorModel: writeIdentityMdxModel(join(work, "sep", "Kim_Vocal_2.onnx")),
      threads: 1,
    },
  );
  const models = await loadHalloModels(tiny, {
    frames: F,
    size: 8 * LAT,
    guidance: true,
    threads: 1,
    probes: { attention: { ...attentionProbes("down_blocks.0"), [AUDIO_HEADS]: "heads" } },
  });
  const render = await renderVideo(
    models,
    prepared,
    { steps: 2, cfg: 3.5, poseWeight: 1, faceWeight: 1, lipWeight: 1, seed: 42 },
    {
      out: join(OUT, "demo.mp4"),
      record: { command: ["report_test"], tiny: true },
      measures: { identity: [SELF] },
    },
  );
  const clip = await captureFirstClip(models, prepared.image, prepared.audio, settings);
  return { prepared, models, render, clip };
});
const geometry = { frames: F, latentHeight: LAT, latentWidth: LAT };

type Heat = { name: string; z: number[][]; x?: string[]; zmin: number; zmax: number; type: string };
const heats = (d: { type: string }[]) => d.filter((t) => t.type === "heatmap") as unknown as Heat[];

test("captureFirstClip: the same first clip as animate, with every step and its probes", async () => {
  const frames = await Deno.readFile(runFiles.frames(render.runDir, 0));
  const mine = videoToFrames(clip.video!);
  assert.deepEqual(new Uint8Array(mine.flatMap((f) => [...f])), frames);
  assert.equal(clip.steps.length, 2);
  assert.deepEqual(clip.latents.shape, [1, 4, F, LAT, LAT]);
  assert.equal(Object.keys(clip.steps[0].probes ?? {}).length, 7, "1+1 reference, 3 audio, 2 motion probes");
});

test("prepareInputs hands separatorModel to the audio stage: the identity stand-in separates the speech", () => {
  assert.equal(prepared.audio.separated, true);
  assert.equal(prepared.audio.vocalsPath, join(work, "cache", "speech_(Vocals)_Kim_Vocal_2.wav"));
  assert.ok(!prepared.warnings.some((w) => w.includes("separation skipped")), prepared.warnings.join("; "));
});

test("stageFigures: the bank of clip 0, drawn as bankFigure draws it", async () => {
  const figs = await stageFigures({ bank: clip.bank, latentHeight: LAT, latentWidth: LAT });
  const direct = await bankFigure(clip.bank, { latentHeight: LAT, latentWidth: LAT });
  assert.deepEqual(figs.map((f) => f.name), ["bank"]);
  assert.deepEqual(figs[0].summary, direct.summary);
});

test("bankFigure: one PCA row per bank entry, items by CFG copy, statistics", async () => {
  const fig = await bankFigure(clip.bank, { latentHeight: LAT, latentWidth: LAT });
  const slots = bankSlots(models.referenceUNet.config);
  const labels = ["uncond ref", "uncond m1", "uncond m2", "cond ref", "cond m1", "cond m2"];
  assert.deepEqual(bankItemLabels(6), labels);
  const entries = fig.summary.entries as {
    path: string;
    shape: number[];
    grid: number[];
    explained: number[];
    std: number[];
    copyRelDiff: number;
  }[];
  assert.deepEqual(entries.map((e) => e.path), slots.map((s) => s.path));
  for (const [i, e] of entries.entries()) {
    const side = Math.ceil(LAT / slots[i].scale);
    assert.deepEqual(e.shape, [6, side * side, slots[i].channels]);
    assert.deepEqual(e.grid, [side, side]);
    assert.ok(e.explained[0] >= e.explained[1] && e.explained[1] >= e.explained[2] && e.explained[0] <= 1);
    // No face model: the uncond and cond contexts are both the projection of a zero embedding.
    assert.equal(e.copyRelDiff, 0);
    // Clip 0's motion frames are the reference image itself.
    assert.equal(e.std[0], e.std[1]);
  }
  const images = fig.plotly.data.filter((t) => t.type === "image");
  assert.equal(images.length, slots.length * 6);
  assert.equal(images[0].source, images[1].source, "ref and m1 identical in clip 0");
  assert.equal(images[3].name, `${slots[0].path.replace(".transformer_blocks.0", "")} cond ref`);
  const std = fig.plotly.data.filter((t) => t.type === "scatter");
  assert.deepEqual(std.map((t) => t.name), labels);
  assert.equal((std[0].x as number[]).length, slots.length);
  assert.equal(fig.plotly.data.filter((t) => t.type === "bar").length, 3);
  // The PNG shows the very PCA pixels of the Plotly images, and the same two charts.
  const agree = await assertRenderersAgree(describeBank(clip.bank, { latentHeight: LAT, latentWidth: LAT }));
  assert.deepEqual([agree.panels, agree.images, agree.charts], [slots.length * 6 + 2, slots.length * 6, 2]);
  assert.deepEqual(tokenGrid(16, 8, 8), [4, 4]);
  assert.throws(() => tokenGrid(15, 8, 8), VizError);
  await assert.rejects(() => bankFigure([]), /empty/);
});

test("attentionFigure: reference share, audio token maps per branch, motion matrices", async () => {
  const fig = await attentionFigure(clip.steps, geometry, { portrait: prepared.image.pixels });
  const s = fig.summary as {
    reference: { grid: number[]; meanShare: number[] }[];
    audio: { branch: string; audioTokens: number; heads: number }[];
    motion: { frames: number; motionFrames: number; locations: number }[];
    ignored: string[];
    steps: number[];
  };
  assert.deepEqual(s.steps, [0, 1]);
  assert.equal(s.reference.length, 1);
  assert.deepEqual(s.reference[0].grid, [LAT, LAT]);
  assert.ok(s.reference[0].meanShare.every((v) => v > 0 && v < 1));
  assert.deepEqual(s.audio.map((a) => a.branch), ["full", "face", "lip"]);
  assert.equal(s.audio[2].heads, 2, "the lip branch was captured per head");
  assert.deepEqual(s.motion.map((m) => [m.frames, m.motionFrames, m.locations]), [[18, 2, LAT * LAT], [
    18,
    2,
    LAT * LAT,
  ]]);
  assert.deepEqual(s.ignored, ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.probs#1"]);

  const h = heats(fig.plotly.data);
  const tokens = models.audioProj.config.context_tokens;
  // 2 steps + "received", 3 branches x audio tokens, 2 motion modules x 2 steps.
  assert.equal(h.length, 3 + 3 * tokens + 4);
  for (const m of h.slice(0, 2)) {
    assert.equal(m.z.length, LAT);
    assert.ok(m.z.flat().every((v) => v >= 0 && v <= 1), "shares are in [0, 1]");
    assert.deepEqual([m.zmin, m.zmax], [0, 1]);
  }
  // Audio: at every location the probabilities over audio tokens sum to 1, per branch.
  for (let b = 0; b < 3; b++) {
    const maps = h.slice(3 + b * tokens, 3 + (b + 1) * tokens);
    for (let y = 0; y < LAT; y++) {
      for (let x = 0; x < LAT; x++) {
        const sum = maps.reduce((a, m) => a + m.z[y][x], 0);
        assert.ok(Math.abs(sum - 1) < 5e-3, `branch ${b} at ${x},${y}: ${sum}`);
      }
    }
  }
  // Motion: 18 x 18 frame matrices, each query row a distribution, labelled m1 m2 f0..f15.
  for (const m of h.slice(3 + 3 * tokens)) {
    assert.equal(m.z.length, 18);
    assert.deepEqual(m.x!.slice(0, 3), ["m1", "m2", "f0"]);
    for (const row of m.z) assert.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 5e-3);
  }
  // Without a portrait every map is a heatmap alone: its PNG pixels are the colours of the trace's values.
  const bare = await assertRenderersAgree(describeAttention(clip.steps, geometry));
  assert.deepEqual([bare.panels, bare.heatmaps], [h.length, h.length]);
  // Portrait underneath every location map.
  assert.equal(fig.plotly.data.filter((t) => t.type === "image").length, 3 + 3 * tokens);
});

test("attentionFigure: one head, one frame; clear errors for what was not captured", async () => {
  const only = (s: (typeof clip.steps)[number]) => ({
    ...s,
    probes: { [`${AUDIO_HEADS}.probs`]: s.probes![`${AUDIO_HEADS}.probs`] },
  });
  const steps = clip.steps.map(only);
  const mean = heats((await attentionFigure(steps, geometry)).plotly.data);
  const h0 = heats((await attentionFigure(steps, geometry, { head: 0 })).plotly.data);
  const h1 = heats((await attentionFigure(steps, geometry, { head: 1 })).plotly.data);
  let diff = 0, worst = 0;
  mean.forEach((m, k) =>
    m.z.forEach((row, y) =>
      row.forEach((v, x) => {
        diff += Math.abs(h0[k].z[y][x] - h1[k].z[y][x]);
        worst = Math.max(worst, Math.abs(v - (h0[k].z[y][x] + h1[k].z[y][x]) / 2));
      })
    )
  );
  assert.ok(diff > 1e-3, "the two heads differ");
  assert.ok(worst < 2e-3, `mean of heads = average of the two heads (off by ${worst})`);
  const f3 = heats((await attentionFigure(steps, geometry, { frame: 3 })).plotly.data);
  assert.notDeepEqual(f3[0].z, mean[0].z);
  await assert.rejects(
    () => attentionFigure(steps, geometry, { head: 2 }),
    /head 2 out of range \(2 heads\)/,
  );
  await assert.rejects(() => attentionFigure(steps, geometry, { frame: F }), /frame 16 out of range/);
  await assert.rejects(
    () => attentionFigure(clip.steps, geometry, { head: 1 }),
    /captured averaged over heads/,
  );
  await assert.rejects(
    () => attentionFigure([{ index: 0, timestep: 1 }], geometry),
    /no step carries probes/,
  );
  assert.deepEqual(pickSteps(40, 6), [0, 8, 16, 23, 31, 39]);
});

test("stepsFigure: latents, decoded x0, cond-uncond difference and update per step", async () => {
  let decodes = 0;
  const fig = await stepsFigure(clip.steps, {
    latentShape: clip.latents.shape,
    frame: 5,
    decode: (x) => {
      decodes++;
      assert.deepEqual(x.shape, [1, 4, 1, LAT, LAT]);
      return decodeLatents(models.vae, x);
    },
  });
  assert.equal(decodes, 2);
  const s = fig.summary as { timesteps: number[]; guided: boolean; curves: Record<string, number[]> };
  assert.deepEqual(s.timesteps, clip.steps.map((x) => x.timestep));
  assert.equal(s.guided, true);
  const images = fig.plotly.data.filter((t) => t.type === "image");
  assert.equal(images.length, 4, "latents and x0 for two steps");
  const h = heats(fig.plotly.data);
  assert.equal(h.length, 4, "|cond-uncond| and |update| for two steps");
  for (const m of h) {
    assert.equal(m.z.length, LAT);
    assert.ok(m.z.flat().every((v) => v >= 0 && v <= m.zmax * 1.001));
  }
  // The update is next - latents: its mean matches the curve.
  const st = clip.steps[1];
  let u = 0;
  for (let i = 0; i < st.next.data.length; i++) u += Math.abs(st.next.data[i] - st.latents.data[i]);
  assert.ok(Math.abs(s.curves.update[1] - u / st.next.data.length) < 1e-3 * (u / st.next.data.length));
  const lines = fig.plotly.data.filter((t) => t.type === "scatter");
  assert.deepEqual(lines.map((t) => t.name), [
    "latents std",
    "x0 std",
    "mean |cond - uncond|",
    "mean |update|",
  ]);
  const labels = (fig.plotly.layout.annotations as { text: string }[]).map((a) => a.text);
  assert.ok(labels.includes("predicted x0 (VAE decode)"));
  // Both renderings: the same latent previews (pixel for pixel), heat colours and curve axes.
  const agree = await assertRenderersAgree(
    await describeSteps(clip.steps, { latentShape: clip.latents.shape }),
  );
  assert.deepEqual([agree.panels, agree.images, agree.heatmaps, agree.charts], [9, 4, 4, 1]);
  // Without a decoder the x0 row is a latent preview; bad shapes are refused.
  const preview = await stepsFigure(clip.steps, { latentShape: clip.latents.shape });
  assert.ok(
    (preview.plotly.layout.annotations as { text: string }[]).some((a) =>
      a.text === "predicted x0 (RGB preview)"
    ),
  );
  await assert.rejects(() => stepsFigure(clip.steps, { latentShape: [1, 4, F, LAT, LAT + 1] }), VizError);
  await assert.rejects(
    () => stepsFigure(clip.steps, { latentShape: clip.latents.shape, frame: F }),
    /frame 16/,
  );
});

test("report: the seam measure at every clip boundary, from the frames as written", async () => {
  const rep = await writeRunReport(render, prepared, join(OUT, "seams.html"));
  assert.ok(render.clips >= 2, `the run has ${render.clips} clips`);
  assert.equal(rep.seams.length, render.clips - 1);
  assert.deepEqual(rep.interventions, []);
  // Known answer for the first boundary: mean |a - b| / 255 over the pixels of clip 0's last and clip 1's first frame.
  const a = (await runFrame(render.runDir, F - 1)).data, b = (await runFrame(render.runDir, F)).data;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] / 255 - b[i] / 255);
  assert.ok(Math.abs(rep.seams[0].seam - s / a.length) < 1e-6, `${rep.seams[0].seam} vs ${s / a.length}`);
  assert.ok(rep.seams.every((m) => m.within > 0 && m.ratio === m.seam / m.within));
  assert.match(await Deno.readTextFile(rep.html), /Seams \(clip boundaries/);
});

test("report: the measures recorded while sampling are the first clip's own, and the report shows their sums", async () => {
  const recorded = await readRunMeasures(render.runDir);
  assert.equal(recorded.length, render.clips);
  // Clip 0 as captured: the same steps, so the same guidance rows and bank shares, bit for bit.
  const regions = measureRegions(prepared.image);
  const rows = guidanceByRegion(clip.steps.map((s) => ({ ...s, uncond: s.uncond! })), regions);
  assert.deepEqual(
    recorded[0]!.guidance,
    rows.map((r) => ({ step: r.step, region: r.region, condDelta: r.condDelta, update: r.update })),
  );
  assert.deepEqual(Object.keys(regions), ["lip", "face", "background"]);
  assert.deepEqual(
    recorded[0]!.identity,
    clip.steps.map((s) => ({
      layer: SELF,
      step: s.index,
      mean: bankShare(SELF, s.probes![`${SELF}.probs`] as F32Tensor).mean,
    })),
  );
  // The report: per region the mean over every step of every clip, per clip the mean bank share.
  const rep = await writeRunReport(render, prepared, join(OUT, "measures.html"));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const html = await Deno.readTextFile(rep.html);
  const fmt4 = (v: number) => String(Number(v.toPrecision(4)));
  assert.deepEqual(rep.guidance!.clips, recorded.map((_, i) => i));
  for (const region of ["lip", "face", "background"]) {
    const all = recorded.flatMap((c) => c!.guidance!.filter((r) => r.region === region));
    assert.equal(all.length, render.clips * 2);
    const cond = mean(all.map((r) => r.condDelta!)), upd = mean(all.map((r) => r.update!));
    assert.ok(cond > 0 && upd > 0, `${region}: ${cond} ${upd}`);
    assert.ok(Math.abs(rep.guidance!.mean[region].condDelta! - cond) < 1e-12 * cond);
    assert.ok(Math.abs(rep.guidance!.mean[region].update! - upd) < 1e-12 * upd);
    assert.ok(
      html.includes(`|cond - uncond| ${fmt4(cond)}, update |next - latents| ${fmt4(upd)}`),
      `${region} row with ${fmt4(cond)} and ${fmt4(upd)}`,
    );
  }
  const perClip = recorded.map((c) => mean(c!.identity!.map((s) => s.mean)));
  assert.deepEqual(rep.identity!.sites, [SELF]);
  assert.ok(rep.identity!.perClip.every((v, i) => Math.abs(v - perClip[i]) < 1e-12 && v > 0 && v < 1));
  assert.ok(Math.abs(rep.identity!.change - (perClip[perClip.length - 1] - perClip[0])) < 1e-12);
  for (const [i, v] of perClip.entries()) {
    assert.ok(html.includes(`<td>clip ${i}</td><td>${fmt4(v)}</td>`), `clip ${i}`);
  }
  assert.ok(html.includes(`Guidance by region (latent grid; mean over 2 steps x ${render.clips} clips)`));
  assert.match(html, /Identity drift \(share of self-attention on the reference bank/);
});

test({
  name: "report: the run's HTML report draws every figure in headless Chromium without errors",
  ignore: !chromium && !CI,
  fn: async () => {
    assert.ok(chromium, "chromium is required in CI (Debian package `chromium`, installed by .ci/run)");
    const figures = [
      ...await stageFigures({ bank: clip.bank, latentHeight: LAT, latentWidth: LAT }),
      await attentionFigure(clip.steps, geometry, { portrait: prepared.image.pixels }),
      await stepsFigure(clip.steps, {
        latentShape: clip.latents.shape,
        decode: (x) => decodeLatents(models.vae, x),
      }),
    ];
    const rep = await writeRunReport(render, prepared, join(OUT, "demo.html"), { figures });
    assert.deepEqual(rep.figures, [
      "portrait",
      "audio",
      "motion-energy",
      "guidance_regions",
      "identity_drift",
      "grid",
      "bank",
      "attention",
      "steps",
    ]);
    assert.equal(rep.motion.frames, render.frames);
    for (const k of ["lip", "face", "background"] as const) {
      assert.equal(rep.motion[k].length, render.frames - 1);
      assert.ok(rep.motion.mean[k] > 0 && rep.motion.mean[k] < 1, `${k} ${rep.motion.mean[k]}`);
    }
    // One local plotly.js next to the report, loaded once; the video linked relatively.
    assert.equal(rep.plotly, join(OUT, PLOTLY_FILE));
    assert.equal(Deno.statSync(rep.plotly).size, Deno.statSync(plotlyBundlePath()).size);
    const html = await Deno.readTextFile(rep.html);
    assert.equal(html.match(/<script src="[^"]*"/g)?.join(), `<script src="${PLOTLY_FILE}"`);
    assert.ok(html.includes('src="demo.mp4"'));
    assert.ok(!/https?:\/\/(?!www\.w3\.org)/.test(html.replace(/data:[^"]*/g, "")), "no remote resources");

    const page = await checkPageInChromium(pathToFileURL(rep.html).href, { width: 1280, height: 900 });
    if (ARTIFACTS) {
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      await Deno.writeFile(join(ARTIFACTS, "report_test.png"), page.screenshot);
    }
    assert.equal(page.status, "done", `page status ${page.status}: ${page.pageErrors.join("; ")}`);
    assert.deepEqual(page.errors, [], "browser errors");
    assert.deepEqual(page.pageErrors, [], "page errors");
    assert.deepEqual(page.plots.map((p) => p.id), rep.figures.map((f) => `plot-${f}`));
    const shot = sharp(page.screenshot);
    const meta = await shot.metadata();
    for (const p of page.plots) {
      assert.ok(p.drawn, `${p.id} not drawn`);
      assert.ok(p.width > 300 && p.height > 200, `${p.id} is ${p.width}x${p.height}`);
      const region = {
        left: Math.max(0, Math.round(p.x)),
        top: Math.max(0, Math.round(p.y)),
        width: Math.min(Math.round(p.width), meta.width! - Math.round(p.x)),
        height: Math.min(Math.round(p.height), meta.height! - Math.round(p.y)),
      };
      const stats = await sharp(page.screenshot).extract(region).stats();
      const stdev = Math.max(...stats.channels.slice(0, 3).map((c) => c.stdev));
      assert.ok(stdev > 15, `${p.id}: plot area looks blank (stdev ${stdev.toFixed(1)})`);
    }
  },
});

test({
  name: "report: the browser check sees console errors, exceptions and failed loads",
  ignore: !chromium && !CI,
  fn: async () => {
    assert.ok(chromium, "chromium is required in CI");
    const dir = await Deno.makeTempDir({ prefix: "hallo-page-" });
    try {
      const file = join(dir, "bad.html");
      await Deno.writeTextFile(
        file,
        `<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><div class="plot" id="plot-x"></div>
<img src="missing.png"><script>console.error("boom");</script><script>undefinedFunction();</script>
<script>setTimeout(() => { document.body.dataset.status = "done"; }, 50);</script></body></html>`,
      );
      const page = await checkPageInChromium(pathToFileURL(file).href, { width: 400, height: 300 });
      assert.equal(page.status, "done");
      const all = page.errors.join("\n");
      assert.match(all, /console\.error: boom/);
      assert.match(all, /undefinedFunction is not defined/);
      assert.match(all, /missing\.png|ERR_FILE_NOT_FOUND/);
      assert.deepEqual(page.plots.map((p) => [p.id, p.drawn]), [["plot-x", false]]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

test({
  name:
    "report: the browser check leaves nothing in TMPDIR (Chromium's org.chromium.Chromium.* folders included)",
  ignore: !chromium && !CI,
  fn: async () => {
    assert.ok(chromium, "chromium is required in CI");
    const dir = await Deno.makeTempDir({ prefix: "hallo-page-" });
    try {
      const file = join(dir, "ok.html");
      await Deno.writeTextFile(file, `<!DOCTYPE html><html><body data-status="done">ok</body></html>`);
      // In /tmp, not in `dir` or TMPDIR: Chromium puts its single-instance socket in TMPDIR, and a socket path
      // has at most 107 bytes (the test task's TMPDIR is already a folder inside the user's).
      const tmp = await Deno.makeTempDir({ dir: "/tmp", prefix: "hallo-" });
      try {
        const page = await withEnv({ TMPDIR: tmp }, () => checkPageInChromium(pathToFileURL(file).href));
        assert.equal(page.status, "done");
        assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), []);
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

test({
  name: "release models",
  fn: async () => {
    await models.release();
  },
});
