/**
 * `deno task demo`: animates the bundled portrait with the bundled speech clip. With Hallo's real weights in
 * the weights folder it is the real thing; otherwise it makes tiny random weights (deterministic, git-ignored)
 * and says loudly that the video is noise.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { resolveWeightsDir } from "../src/weights/locate.ts";
import { checkWeights, missingFor } from "../src/weights/verify.ts";
import { ensureTinyWeights } from "../src/tiny/random.ts";
import { TINY_NOTICE } from "../src/tiny/configs.ts";
import { Hallo } from "../src/stages/generate/hallo.ts";
import { DEFAULT_SETTINGS } from "../src/stages/generate/run.ts";
import { progressEvents, StepProgress } from "../src/cli/progress.ts";
import { writeRunReport } from "../src/report/report.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const image = join(root, "fixtures", "astronaut.png");
const audio = join(root, "fixtures", "speech.wav");
const outDir = join(root, "out");
const out = join(outDir, "demo.mp4");
const runDir = join(outDir, "demo.run");

function banner(lines: string[]): void {
  const w = Math.max(...lines.map((l) => l.length));
  const bar = "!".repeat(w + 4);
  console.log([bar, ...lines.map((l) => `! ${l.padEnd(w)} !`), bar].join("\n"));
}

const realDir = resolveWeightsDir();
const checks = await checkWeights(realDir);
const missing = missingFor(checks, ["image", "audio", "networks"]);
let weightsDir = realDir;
let settings = { ...DEFAULT_SETTINGS };
let tiny = false;
if (missing.length === 0) {
  console.log(`demo: Hallo's weights found in ${realDir}: running the real model (40 steps, CFG 3.5).`);
} else {
  tiny = true;
  const t = await ensureTinyWeights();
  weightsDir = t.dir;
  // Random networks make noise at any step count: a few steps keep the demo quick on a CPU.
  settings = { ...settings, steps: 4 };
  banner([
    TINY_NOTICE,
    `Hallo's weights are not in ${realDir} (${missing.length} files missing),`,
    `so this demo uses tiny random weights ${t.created ? "generated now" : "generated earlier"} in ${t.dir}`,
    `and ${settings.steps} DDIM steps. The pipeline, masks, audio features and mp4 are real; the pictures are noise.`,
    "Get the real weights with: deno task hallo weights download   (about 10 GB; see weights/README.md)",
  ]);
}

await Deno.remove(runDir, { recursive: true }).catch(() => {});
const progress = new StepProgress(Deno.stdout);
const hallo = await Hallo.load(weightsDir, { guidance: settings.cfg > 1, cacheDir: join(outDir, "cache") });
try {
  const prepared = await hallo.prepare(image, audio);
  for (const w of prepared.warnings) console.log(`warning: ${w}`);
  console.log(
    `demo: image prepared in ${prepared.timings.prepare_image_s.toFixed(1)} s, audio in ${
      prepared.timings.prepare_audio_s.toFixed(1)
    } s (${prepared.audio.audioLength} frames)`,
  );
  const res = await hallo.animate(image, audio, {
    ...settings,
    prepared,
    out,
    runDir,
    record: { command: ["demo"], weightsDir, tiny },
    onEvent: progressEvents(progress, console.log),
  });
  progress.done();
  console.log(
    `demo: wrote ${res.out}: ${res.frames} frames at 25 fps with the original audio (run record: ${runDir}/run.json)`,
  );
  const report = await writeRunReport(res, prepared, join(outDir, "demo.html"));
  console.log(`demo: wrote ${report.html} (figures and measures; open it in a browser)`);
  if (tiny) console.log(`demo: ${TINY_NOTICE}`);
} finally {
  await hallo.release();
}
