/**
 * `deno task demo`: animates the bundled portrait with the bundled speech clip. With Hallo's real weights in
 * the weights folder it is the real thing (512 px, 40 steps); otherwise it makes tiny random weights
 * (deterministic, git-ignored, generated once) and runs every stage at a size and step count chosen for them,
 * says so on screen, and says loudly that the video is noise. At the end it prints where the time went.
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { resolveWeightsDir } from "../src/weights/locate.ts";
import { checkWeights, missingFor } from "../src/weights/verify.ts";
import { ensureTinyWeights } from "../src/tiny/random.ts";
import { TINY_NOTICE } from "../src/tiny/configs.ts";
import { writeIdentityMdxModel } from "../src/tiny/mdx_identity.ts";
import { Hallo } from "../src/stages/generate/hallo.ts";
import { BankCache } from "../src/stages/generate/bank_cache.ts";
import { DEFAULT_SETTINGS } from "../src/stages/generate/run.ts";
import { SEPARATOR_MODEL } from "../src/stages/audio/prepare.ts";
import { progressEvents, StepProgress } from "../src/cli/progress.ts";
import { writeRunReport } from "../src/report/report.ts";
import { stageFigures } from "../src/report/stage_figures.ts";

/**
 * Size and steps for tiny random weights: their pictures are noise at any setting, so the demo keeps every
 * stage and every clip and spends as little as it can on the networks (256 px = 32x32 latents; two DDIM steps
 * still run the loop with its CFG pair).
 */
const TINY_SIZE = 256;
const TINY_STEPS = 2;

const root = fileURLToPath(new URL("..", import.meta.url));
const image = join(root, "fixtures", "astronaut.png");
const audio = join(root, "fixtures", "speech.wav");
const outDir = join(root, "out");
const out = join(outDir, "demo.mp4");
const runDir = join(outDir, "demo.run");
const cacheDir = join(outDir, "cache");

/** `line` cut at spaces into pieces of at most `width` characters. */
function wrap(line: string, width = 110): string[] {
  const out: string[] = [];
  let cur = "";
  for (const word of line.split(" ")) {
    if (cur && cur.length + 1 + word.length > width) {
      out.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  return [...out, cur];
}

function banner(lines: string[]): void {
  const wrapped = lines.flatMap((l) => wrap(l));
  const w = Math.max(...wrapped.map((l) => l.length));
  const bar = "!".repeat(w + 4);
  console.log([bar, ...wrapped.map((l) => `! ${l.padEnd(w)} !`), bar].join("\n"));
}

const since = (t: number) => (performance.now() - t) / 1000;
const s1 = (x: number) => x.toFixed(1);
/** Seconds per demo stage, in the order they ran; printed at the end. */
const spent: [string, string][] = [];

const realDir = resolveWeightsDir();
const checks = await checkWeights(realDir);
const missing = missingFor(checks, ["image", "audio", "networks"]);
let weightsDir = realDir;
let settings = { ...DEFAULT_SETTINGS };
let size = 512;
let tiny = false;
/** Said on screen and at the top of the report: what this run is, and what it does differently. */
const notices: string[] = [];
let separatorModel: string | undefined;
if (missing.length === 0) {
  console.log(`demo: Hallo's weights found in ${realDir}: running the real model (40 steps, CFG 3.5).`);
} else {
  tiny = true;
  const t0 = performance.now();
  const t = await ensureTinyWeights();
  spent.push([
    "tiny weights",
    `${s1(since(t0))} (${t.created ? "generated now" : "found, generated earlier"})`,
  ]);
  weightsDir = t.dir;
  size = TINY_SIZE;
  settings = { ...settings, steps: TINY_STEPS };
  notices.push(
    `tiny random weights: ${size} px, ${settings.steps} DDIM steps, CFG ${settings.cfg} - the video is noise; ` +
      "the stages are real",
  );
  // The tiny set has no separator; an identity stand-in keeps the separation stage running honestly.
  separatorModel = join(cacheDir, "mdx_identity", "Kim_Vocal_2.onnx");
  writeIdentityMdxModel(separatorModel);
  notices.push(
    `vocal separation: ${SEPARATOR_MODEL} is not in the tiny set, so the MDX path (chunks, STFT, session, ` +
      "iSTFT, vocals files) runs with an identity stand-in for it: the vocals are the speech as is",
  );
  banner([
    TINY_NOTICE,
    `Hallo's weights are not in ${realDir} (${missing.length} files missing),`,
    `so this demo uses tiny random weights ${t.created ? "generated now" : "generated earlier"} in ${t.dir}.`,
    ...notices,
    "Every stage runs: landmarks, masks, separation, wav2vec2 features, both UNets over every clip, the mp4.",
    "Get the real weights with: deno task hallo weights download   (about 10 GB; see weights/README.md)",
  ]);
}

const tStart = performance.now();
await Deno.remove(runDir, { recursive: true }).catch(() => {});
const progress = new StepProgress(Deno.stdout);
let t0 = performance.now();
// The identity measure probes two small reference self-attention sites: the report shows identity drift beside
// guidance by region (recorded by every guided run); the frames are the same with the probes as without.
const hallo = await Hallo.load(weightsDir, {
  size,
  guidance: settings.cfg > 1,
  cacheDir,
  measureIdentity: true,
});
const nets = Object.entries(hallo.models.timings).map(([k, v]) => `${k} ${s1(v.build_s + v.session_s)}`);
spent.push(["networks (build + session)", `${s1(since(t0))} (${nets.join(", ")})`]);
try {
  t0 = performance.now();
  const prepared = await hallo.prepare(image, audio, { separatorModel });
  for (const w of prepared.warnings) console.log(`warning: ${w}`);
  const it = prepared.image.timings, at = prepared.audio.timings;
  spent.push([
    "image: landmarks, masks",
    `${s1(prepared.timings.prepare_image_s)} (load ${s1(it.load)}, landmarks ${s1(it.landmarks)}, ` +
    `detection ${s1(it.detection)}, masks ${s1(it.masks)}, pixels ${s1(it.pixels)})`,
  ]);
  spent.push([
    "audio: separation, wav2vec2",
    `${s1(prepared.timings.prepare_audio_s)} (${
      Object.entries(at).filter(([k]) => k !== "total")
        .map(([k, v]) => `${k} ${s1(v)}`).join(", ")
    })`,
  ]);
  const clips = hallo.clips;
  console.log(
    `demo: ${size} px, ${settings.steps} steps, ${prepared.audio.audioLength} frames in ${clips} clips of ` +
      `${hallo.models.geometry.frames}${tiny ? " - the video is noise; the stages are real" : ""}`,
  );

  // Clip 0's bank, for the report's bank figure; the cache hands the same bank to clip 0 of the video.
  t0 = performance.now();
  const bankCache = new BankCache();
  const clip0 = await hallo.clip(0);
  const bank = await hallo.bank(clip0, bankCache);
  spent.push(["clip 0 conditioning + bank (reused by clip 0)", s1(since(t0))]);

  const clipSeconds: number[] = [];
  const onProgress = progressEvents(progress, console.log);
  t0 = performance.now();
  const res = await hallo.animate(image, audio, {
    ...settings,
    prepared,
    out,
    runDir,
    bankCache,
    record: { command: ["demo"], weightsDir, tiny, notices },
    onEvent: (e) => {
      if (e.kind === "clip") clipSeconds.push(e.seconds);
      onProgress(e);
    },
  });
  progress.done();
  spent.push([
    `${clips} clips x ${settings.steps} steps`,
    `${s1(res.timings.generate_s)} (${clipSeconds.map((s, i) => `clip ${i} ${s1(s)}`).join(", ")})`,
  ]);
  spent.push(["mp4 with the audio", s1(res.timings.write_mp4_s ?? 0)]);
  console.log(
    `demo: wrote ${res.out}: ${res.frames} frames at 25 fps with the original audio (run record: ${runDir}/run.json)`,
  );
  t0 = performance.now();
  const figures = await stageFigures({
    bank: bank.bank,
    latentHeight: hallo.models.geometry.height,
    latentWidth: hallo.models.geometry.width,
    motionFrames: hallo.models.configs.nMotionFrames,
  });
  const report = await writeRunReport(res, prepared, join(outDir, "demo.html"), { figures, notices });
  spent.push(["report (figures, bank PCA)", s1(since(t0))]);
  console.log(
    `demo: wrote ${report.html} (landmarks, masks, audio features, motion energy, guidance by region, ` +
      "identity drift, bank; open it in a browser)",
  );
  // CPU seconds and the load beside the wall time: on a shared machine the wall time says little alone.
  const cpu = process.cpuUsage();
  spent.push([
    "total after the weights",
    `${s1(since(tStart))} wall; process CPU ${s1((cpu.user + cpu.system) / 1e6)} s since start, ` +
    `load average ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`,
  ]);
  console.log("demo: where the time went (s):");
  const w = Math.max(...spent.map(([k]) => k.length));
  for (const [k, v] of spent) console.log(`  ${k.padEnd(w)}  ${v}`);
  if (tiny) console.log(`demo: ${TINY_NOTICE}`);
} finally {
  await hallo.release();
}
