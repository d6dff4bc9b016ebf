/**
 * The cost of inspection relative to a plain clip, through the front door (`Hallo`) on the tiny random weights:
 * best-of-3 seconds of a plain clip (bank, every step, decode; no probes), of the same clip with the probes the
 * measures read (every audio-attention branch, every bank-reading self-attention and every motion module of the
 * denoising UNet, heads averaged in the graph), with those probes recorded into an activation cache at mean
 * reductions (heads and steps) and at full reduction (every step kept), and of each measure over the recorded
 * data; occlusion as the clip runs it takes times the plain clip. Tiny weights have the real layout at small
 * widths, so the ratios are indicative only: the full-size figures need a full-size run.
 *
 * Usage: deno run -A bench/inspect.ts [--json] [--size 128] [--frames 16] [--steps 4] [--threads 2]
 */
import { loadavg } from "node:os";
import { ensureTinyWeights, fixture, Hallo, type HalloClip } from "../mod.ts";
import type { F32Tensor } from "../src/tensor.ts";
import type { SamplerStep } from "../src/sampling/sampler.ts";
import { resolveNetCheckpoint } from "../src/weights/locate.ts";
import { WeightStore } from "../src/weights/store.ts";
import { ActivationCache } from "../src/stages/inspect/cache.ts";
import type { SiteReduction } from "../src/stages/inspect/reduce.ts";
import { AUDIO_BRANCHES, audioAttribution } from "../src/stages/inspect/audio_attribution.ts";
import { bankShareSeries, identityDrift } from "../src/stages/inspect/identity.ts";
import { motionAttention, seamAttention, seamMeasure } from "../src/stages/inspect/temporal.ts";
import { guidanceByRegion } from "../src/stages/inspect/guidance_regions.ts";
import { table } from "./util.ts";

const args = Deno.args;
const flag = (name: string, dflt: number) =>
  args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt;
const json = args.includes("--json");
const size = flag("--size", 128), frames = flag("--frames", 16), steps = flag("--steps", 4);
const threads = flag("--threads", 2);
const REPEATS = 3;
const SEED = 42;

/** Best-of-`REPEATS` seconds of `f`, and its last result. */
async function best<T>(f: () => T | Promise<T>): Promise<[T, number]> {
  let out: T | undefined, s = Infinity;
  for (let i = 0; i < REPEATS; i++) {
    const t0 = performance.now();
    out = await f();
    s = Math.min(s, (performance.now() - t0) / 1000);
  }
  return [out as T, s];
}

/**
 * The attention sites the measures read, from the denoising UNet's checkpoint keys that its graph binds:
 * audio branches (`...audio_modules.N.transformer_blocks.0.attn2_{0,1,2}`), bank-reading self-attention
 * (`...attentions.N.transformer_blocks.0.attn1`) and motion attention (`...attention_blocks.N`).
 */
function measureSites(weightsDir: string, unused: readonly string[]) {
  const skip = new Set(unused);
  const paths = new Set<string>();
  for (const k of WeightStore.open(resolveNetCheckpoint(weightsDir)).keys()) {
    if (!k.startsWith("denoising_unet.") || skip.has(k) || !k.endsWith(".to_q.weight")) continue;
    paths.add(k.slice("denoising_unet.".length, -".to_q.weight".length));
  }
  const all = [...paths].sort();
  return {
    audio: all.filter((p) => /\.audio_modules\.\d+\.transformer_blocks\.\d+\.attn2_[012]$/.test(p)),
    bank: all.filter((p) => /\.attentions\.\d+\.transformer_blocks\.\d+\.attn1$/.test(p)),
    motion: all.filter((p) => /\.motion_modules\.\d+\..*\.attention_blocks\.\d+$/.test(p)),
  };
}

/** One clip as `animate` computes it: the bank, every step (kept when asked), the decode. */
async function clipRun(hallo: Hallo, clip: HalloClip, cache?: ActivationCache, keep = false) {
  const bank = await hallo.bank(clip);
  const kept: SamplerStep[] = [];
  const it = hallo.denoise(clip, { steps, seed: SEED, bank, cache });
  let r = await it.next();
  for (; !r.done; r = await it.next()) if (keep) kept.push(r.value);
  return { latents: r.value, video: await hallo.decode(r.value), steps: kept };
}

const { dir } = await ensureTinyWeights();
const work = await Deno.makeTempDir({ prefix: "hallo-bench-inspect-" });
const load = loadavg();
const plain = await Hallo.load(dir, { size, frames, threads });
let probed: Hallo | undefined;
try {
  const prepared = await plain.prepare(fixture("astronaut.png"), fixture("speech.wav"), { cacheDir: work });
  const sites = measureSites(dir, plain.models.denoisingUNet.unusedKeys);
  const paths = [...sites.audio, ...sites.bank, ...sites.motion];
  probed = await Hallo.load(dir, {
    size,
    frames,
    threads,
    probes: { attention: Object.fromEntries(paths.map((p) => [p, "mean" as const])) },
  });
  probed.image = prepared.image;
  probed.audio = prepared.audio;
  const clip = await plain.clip(0);
  /** A cache of every probed site with this reduction, and the seconds spent inside its `recordAll`. */
  const cacheOf = (mean: SiteReduction["mean"]) => {
    const cache = new ActivationCache({
      sites: Object.fromEntries(paths.map((p) => [`${p}.probs`, { mean }])),
      maxBytes: 2 ** 30,
      spillDir: work,
    });
    const recordAll = cache.recordAll.bind(cache);
    const timing = { cache, seconds: 0 };
    cache.recordAll = (step, outputs) => {
      const t0 = performance.now();
      const n = recordAll(step, outputs);
      timing.seconds += (performance.now() - t0) / 1000;
      return n;
    };
    return timing;
  };

  // Variants interleaved per repeat, so a change in the machine's load touches them alike.
  const times = { plain: Infinity, probes: Infinity, mean: Infinity, full: Infinity };
  const recording = { mean: Infinity, full: Infinity };
  let meanCache = cacheOf(["steps"]), fullCache = cacheOf([]);
  let base: Awaited<ReturnType<typeof clipRun>> | undefined;
  for (let i = 0; i < REPEATS; i++) {
    const timed = async (key: keyof typeof times, f: () => Promise<unknown>) => {
      const t0 = performance.now();
      await f();
      times[key] = Math.min(times[key], (performance.now() - t0) / 1000);
    };
    await timed("plain", async () => base = await clipRun(plain, clip, undefined, true));
    await timed("probes", () => clipRun(probed!, clip));
    meanCache = cacheOf(["steps"]);
    await timed("mean", () => clipRun(probed!, clip, meanCache.cache));
    fullCache = cacheOf([]);
    await timed("full", () => clipRun(probed!, clip, fullCache.cache));
    recording.mean = Math.min(recording.mean, meanCache.seconds);
    recording.full = Math.min(recording.full, fullCache.seconds);
  }
  const { video, steps: sampled } = base!;

  // The measures over the mean cache (and the plain clip's steps and video), each best of 3.
  const { frames: F, height: h, width: w, guidance } = plain.models.geometry;
  const M = plain.models.configs.nMotionFrames ?? 2;
  // Reading back is timed on its own: a step-mean site is divided by its step count on every read.
  const [read, readS] = await best(() => new Map(paths.map((p) => [p, meanCache.cache.get(`${p}.probs`)])));
  const probs = (p: string) => read.get(p)!;
  const maskAt = (masks: F32Tensor[], queries: number) => masks.find((m) => m.shape[1] === queries)!;
  const measures: [string, number, string][] = [];
  const [, audioS] = await best(() =>
    AUDIO_BRANCHES.map((branch, b) =>
      audioAttribution(
        sites.audio.filter((p) => p.endsWith(`.attn2_${b}`)).map((p) => {
          const t = probs(p);
          return { probs: t, mask: maskAt(clip.masks[branch], t.shape[t.shape.length - 2]) };
        }),
        { frames: F, height: h, width: w },
      )
    )
  );
  measures.push(["audio attribution", audioS, `3 branches x ${sites.audio.length / 3} layers`]);
  const [, bankS] = await best(() =>
    identityDrift([bankShareSeries(sites.bank.map((p) => ({ layer: p, step: 0, probs: probs(p) })))])
  );
  measures.push(["bank share + identity drift", bankS, `${sites.bank.length} layers`]);
  const [, motionS] = await best(() =>
    sites.motion.map((p) => {
      const t = probs(p);
      return seamAttention(motionAttention(p, t, t.shape[0] / (guidance ? 2 : 1), M).motionShare);
    })
  );
  measures.push(["motion attention + seam attention", motionS, `${sites.motion.length} layers`]);
  const [, seamS] = await best(() => seamMeasure(video, video));
  measures.push(["seam (frame difference)", seamS, "decoded frames"]);
  const regions = Object.fromEntries(
    (["full", "face", "lip"] as const).map((r) => [r, clip.inputs.masks[r][0].data.subarray(0, h * w)]),
  );
  const [, guidanceS] = await best(() =>
    guidanceByRegion(
      sampled.map((s) => ({
        index: s.index,
        latents: s.latents,
        uncond: s.uncond!,
        cond: s.cond,
        next: s.next,
      })),
      regions,
    )
  );
  measures.push(["guidance by region", guidanceS, `${steps} steps x 3 regions`]);

  const pct = (s: number) => {
    const p = 100 * s / times.plain;
    return `${Math.abs(p) < 1 ? p.toFixed(3) : p.toFixed(1)} %`;
  };
  // Measures take milliseconds: more digits than the table's default.
  const sec = (s: number) => Math.abs(s) >= 1 ? s.toFixed(2) : s.toFixed(4);
  const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const occlusionRuns = F + 1;
  const rows: [string, number, string, string][] = [
    ["plain clip (bank, steps, decode)", times.plain, pct(times.plain), "no probes"],
    [
      "clip with probes",
      times.probes,
      pct(times.probes),
      `${paths.length} sites, heads averaged in the graph`,
    ],
    ["  probes' own cost", times.probes - times.plain, pct(times.probes - times.plain), "with - without"],
    ["clip with probes + cache (mean)", times.mean, pct(times.mean), "mean over heads and steps"],
    [
      "  cache cost (mean): recording",
      recording.mean,
      pct(recording.mean),
      `inside recordAll; goal < 10 %; peak ${MiB(meanCache.cache.peakBytes)}`,
    ],
    [
      "  cache cost (mean): clip diff",
      times.mean - times.probes,
      pct(times.mean - times.probes),
      "with - without",
    ],
    ["clip with probes + cache (full)", times.full, pct(times.full), "every step kept"],
    [
      "  cache cost (full): recording",
      recording.full,
      pct(recording.full),
      `inside recordAll; peak ${MiB(fullCache.cache.peakBytes)}, ${fullCache.cache.spillFiles.length} spills`,
    ],
    [
      "  cache cost (full): clip diff",
      times.full - times.probes,
      pct(times.full - times.probes),
      "with - without",
    ],
    ["cache read-back (mean)", readS, pct(readS), `cache.get of all ${paths.length} sites`],
    ...measures.map(([n, s, note]) => [n, s, pct(s), note] as [string, number, string, string]),
    [
      "occlusion (every window)",
      occlusionRuns * times.plain,
      pct(occlusionRuns * times.plain),
      `${occlusionRuns} clip runs (base + ${F} windows) x plain clip`,
    ],
  ];
  const what = `${size} px, ${F} frames, ${steps} steps, ${threads} threads, tiny random weights`;
  if (json) {
    console.log(JSON.stringify({
      bench: "inspect",
      what,
      seconds: Object.fromEntries(rows.map(([n, s]) => [n.trim(), s])),
      of_plain: Object.fromEntries(rows.map(([n, s]) => [n.trim(), s / times.plain])),
      sites: { audio: sites.audio.length, bank: sites.bank.length, motion: sites.motion.length },
      cache_peak_bytes: { mean: meanCache.cache.peakBytes, full: fullCache.cache.peakBytes },
      load_before: load,
      load_after: loadavg(),
    }));
  } else {
    console.log(`\nInspection cost relative to a plain clip (CPU, ${what}; best of ${REPEATS})`);
    console.log(
      table(["what", "seconds", "of plain clip", "note"], rows.map(([n, s, p, x]) => [n, sec(s), p, x])),
    );
    console.log(
      `Tiny weights: the ratios are indicative only; the full-size figures need a full-size run. ` +
        `Load average before ${load.map((v) => v.toFixed(2)).join(" ")}, after ${
          loadavg().map((v) => v.toFixed(2)).join(" ")
        }.`,
    );
  }
} finally {
  await plain.release();
  await probed?.release();
  await Deno.remove(work, { recursive: true });
}
