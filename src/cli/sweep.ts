/**
 * `deno task hallo sweep --image I --audio A --out DIR --cfg 1,2,3.5 --lip-weight 0.5,1,1.5 [options]`: one
 * video per combination of the listed values, sharing preparation, loaded networks and the first clip's
 * reference-UNet work; a labelled grid video, sweep.json and report.html in DIR. Every option is checked
 * before any heavy work.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { resolveWeightsDir } from "../weights/locate.ts";
import { readTinyConfigs } from "../tiny/configs.ts";
import { checkRunCost } from "../stages/generate/cost.ts";
import { checkWeightsFor } from "../stages/generate/weights.ts";
import { runSweep, type SweepAxes, sweepSettings } from "../stages/generate/sweep.ts";
import { RunPathError } from "../stages/generate/run_dir.ts";
import { probeDevice } from "../runtime/probe.ts";
import {
  cfgBatchOption,
  checkAudioFile,
  GENERATION_OPTIONS,
  joinNegativeValues,
  num,
  numList,
  readableFile,
  runOptions,
  seedOption,
  UsageError,
} from "./options.ts";
import { writeSweepReport } from "../report/sweep.ts";
import { progressEvents, StepProgress } from "./progress.ts";

const USAGE = `usage: deno task hallo sweep --image I --audio A --out DIR [lists] [options]

Lists (comma-separated; the grid is their Cartesian product; an absent flag holds the default):
  --cfg S,S,..            guidance scales (3.5); 1 or less runs the conditional branch alone
  --pose-weight W,..      motion scales of the full/background branch (1)
  --face-weight W,..      motion scales of the face branch (1)
  --lip-weight W,..       motion scales of the lip branch (1)
Options:
  --weights DIR           pretrained_models folder (default: $HALLO_WEIGHTS, then weights/pretrained_models)
  --steps N               DDIM steps (40)
  --seed N                noise seed, the same for every run (42)
  --size N                video size, a multiple of 64 (512)
  --face-expand-ratio R   face box expansion (1.2)
  --device cpu|cuda|webgpu
  --threads N             ORT intra-op threads (default: all cores)
  --cfg-batch MODE         joint|halves: with guidance the denoising UNet runs [uncond, cond] as one batch-2 call
                          (joint) or one call per half (halves: the same numbers up to float rounding, about
                          half the activation memory); default joint, or halves when the cost model finds that
                          joint does not fit in memory
  --no-separate           skip vocal separation
Writes DIR/<label>.mp4 and DIR/<label>.run/ per setting (label like cfg3.5_pose1_face1_lip0.5),
DIR/grid.mp4 (all runs side by side, labelled, with the audio), DIR/sweep.json and DIR/report.html.`;

/** A list option: no empty items, numbers >= min, no value twice. */
function list(name: string, v: string | undefined, dflt: number, min?: number): number[] {
  if (v !== undefined && v.split(",").some((s) => s.trim() === "")) {
    throw new UsageError(`--${name} has an empty item in '${v}' (give comma-separated numbers)`);
  }
  const xs = numList(name, v, dflt, { min });
  const dup = xs.find((x, i) => xs.indexOf(x) !== i);
  if (dup !== undefined) throw new UsageError(`--${name} lists ${dup} twice`);
  return xs;
}

/** The output folder: created if missing, must be a writable directory. */
async function writableDir(name: string, path: string | undefined): Promise<string> {
  if (!path) throw new UsageError(`--${name} is required`);
  const abs = resolve(path);
  const probe = `${abs}/.write-test-${Deno.pid}`;
  try {
    await Deno.mkdir(abs, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array());
    await Deno.remove(probe);
  } catch (e) {
    const why = e instanceof Deno.errors.AlreadyExists
      ? "not a directory"
      : e instanceof Error
      ? e.message.split(":")[0]
      : e;
    throw new UsageError(`--${name} ${path}: cannot be written (${why})`);
  }
  return abs;
}

export async function run(args: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({ args: joinNegativeValues(args, GENERATION_OPTIONS), options: GENERATION_OPTIONS }).values;
  } catch (e) {
    console.error(`sweep: ${e instanceof Error ? e.message.split("\n")[0] : e} (see --help)`);
    return 2;
  }
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    const axes: SweepAxes = {
      cfg: list("cfg", v.cfg, 3.5, 0),
      poseWeight: list("pose-weight", v["pose-weight"], 1),
      faceWeight: list("face-weight", v["face-weight"], 1),
      lipWeight: list("lip-weight", v["lip-weight"], 1),
    };
    const steps = num("steps", v.steps, 40, { min: 1, int: true });
    const seed = seedOption(v.seed);
    const { size, faceExpandRatio, threads, device } = runOptions(v);
    const cfgBatch = cfgBatchOption(v["cfg-batch"]);
    const runs = sweepSettings(axes, { steps, seed }).length;
    await probeDevice(device);
    const image = await readableFile("image", v.image);
    const audio = await readableFile("audio", v.audio);
    await checkAudioFile("audio", audio);
    const outDir = await writableDir("out", v.out);
    const weightsDir = resolveWeightsDir(v.weights);
    const tiny = readTinyConfigs(weightsDir) !== undefined;
    await checkWeightsFor(weightsDir, { separate: !v["no-separate"], tiny });
    const cost = await checkRunCost({
      weightsDir,
      size,
      steps,
      guidance: axes.cfg.some((c) => c > 1),
      device,
      audio,
      runs,
      cfgBatch,
    });

    const progress = new StepProgress();
    console.error(`sweep of ${runs} settings into ${outDir}`);
    const summary = await runSweep(image, audio, axes, {
      outDir,
      weightsDir,
      steps,
      seed,
      size,
      faceExpandRatio,
      separate: !v["no-separate"],
      device,
      threads,
      cfgBatch: cfgBatch ?? cost?.cfgBatch,
      allowMissingFaceModels: tiny,
      record: { command: ["sweep", ...args], weightsDir, device, tiny },
      onEvent: progressEvents(progress),
    });
    progress.done();
    await writeSweepReport(outDir, summary);
    console.log(
      `wrote ${summary.runs.length} videos, ${outDir}/grid.mp4 (${summary.grid.width}x${summary.grid.height}), ` +
        `${outDir}/sweep.json and ${outDir}/report.html`,
    );
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`sweep: ${msg.split("\n")[0]}`);
    return e instanceof UsageError || e instanceof RunPathError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
