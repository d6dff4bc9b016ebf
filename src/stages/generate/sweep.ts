/**
 * A sweep: one video per point of the Cartesian product of cfg and the pose/face/lip motion scales, from one
 * image and one audio, sharing all work that does not depend on the setting:
 *
 * - the image and audio are prepared once;
 * - the networks are loaded once per guidance mode (cfg <= 1: the one-branch UNets, cfg > 1: the guidance
 *   ones); the runs are executed grouped by mode, so one model set is held at a time;
 * - the reference UNet's bank of clip 0 (reference image as motion frames) is computed once per mode and
 *   reused (`BankCache`); later clips depend on each run's own frames and are computed as usual.
 *
 * Each run's run.json records what it shared (`prepare_shared`, `models_shared`,
 * `reference_unet_cached_clips` in its timings, with zero seconds for shared work). Then a labelled grid
 * video, per-run motion energies in the lip/face/background masks and sweep.json (the HTML report is
 * src/report/sweep.ts, a view over sweep.json).
 */
import { join, resolve } from "node:path";
import type { OnEvent } from "../../sampling/events.ts";
import { maskWeights, MotionEnergyMeter, type RegionEnergy } from "../video/motion_energy.ts";
import { type GridLayout, writeGridVideo } from "../video/grid.ts";
import { BankCache } from "./bank_cache.ts";
import { SweepAxisError } from "./errors.ts";
import { Hallo } from "./hallo.ts";
import { checkRunPaths, readRunFrames, RunDir } from "./run_dir.ts";
import type { CfgBatch, HalloModels } from "./models.ts";
import {
  type PreparedInputs,
  prepareInputs,
  type PrepareOptions,
  renderIdentity,
  type RenderResult,
  type RenderSettings,
  renderVideo,
} from "./run.ts";

/** The values swept on each axis (one value = that knob held fixed). */
export interface SweepAxes {
  cfg: number[];
  poseWeight: number[];
  faceWeight: number[];
  lipWeight: number[];
}

/** What the sweep prepares once (PrepareOptions) and what every run shares. */
export interface SweepOptions extends PrepareOptions {
  /** Output folder: `<label>.mp4`, `<label>.run/`, grid.mp4, sweep.json. */
  outDir: string;
  steps: number;
  seed: number;
  /** Grid video width budget (default 1024). */
  gridMaxWidth?: number;
  /** Extra fields for every run.json and sweep.json (the command line, ...). */
  record?: Record<string, unknown>;
  /**
   * Progress: `phase` (preparing, loading, writing the grid), `prepared` (the inputs' warnings), `run` as each
   * setting starts, and each run's `step` and `clip` events, all with the run's place.
   */
  onEvent?: OnEvent;
  /** How the guided runs' denoising UNet runs the CFG batch (`ModelOptions.cfgBatch`; default "joint"). */
  cfgBatch?: CfgBatch;
}

/** Work a run did not do itself. */
export interface SharedWork {
  /** The image and audio were prepared by an earlier run of the sweep. */
  prepare: boolean;
  /** The networks were loaded for an earlier run. */
  models: boolean;
  /** Clips whose reference-UNet bank came from the cache. */
  referenceUNetCachedClips: number;
}

/** One setting's outcome (paths relative to the sweep folder). */
export interface SweepRun {
  label: string;
  settings: RenderSettings;
  out: string;
  runDir: string;
  frames: number;
  clips: number;
  /** As in the run's run.json: seconds (0 for shared work) and the sharing flags. */
  timings: Record<string, number | boolean>;
  shared: SharedWork;
  /** Motion energy (see motion_energy.ts) inside the lip, face and background masks. */
  motionEnergy: Record<MotionRegion, RegionEnergy>;
}

export type MotionRegion = "lip" | "face" | "background";

/** sweep.json. */
export interface SweepSummary {
  version: 1;
  image: string;
  audio: string;
  hashes: { image: string; audio: string };
  weightsDir: string;
  size: number;
  steps: number;
  seed: number;
  axes: SweepAxes;
  runs: SweepRun[];
  grid: { file: string; frames: number } & GridLayout;
  /** The HTML report beside it, once `writeSweepReport` has written it. */
  report?: string;
  /** Sweep-wide seconds: preparation, model loading per mode, generation, grid, total. */
  timings: Record<string, number>;
  warnings: string[];
  [extra: string]: unknown;
}

/** The file-name label of a setting, e.g. `cfg3.5_pose1_face1_lip0.5`. */
export function sweepLabel(
  s: Pick<RenderSettings, "cfg" | "poseWeight" | "faceWeight" | "lipWeight">,
): string {
  return `cfg${s.cfg}_pose${s.poseWeight}_face${s.faceWeight}_lip${s.lipWeight}`;
}

/** Every setting of the grid, cfg slowest, lip fastest. Duplicate values on an axis are an error. */
export function sweepSettings(axes: SweepAxes, base: { steps: number; seed: number }): RenderSettings[] {
  for (const [k, v] of Object.entries(axes) as [keyof SweepAxes, number[]][]) {
    if (v.length === 0) throw new SweepAxisError(`sweep axis ${k} has no values`);
    const dup = v.find((x, i) => v.indexOf(x) !== i);
    if (dup !== undefined) throw new SweepAxisError(`sweep axis ${k} lists ${dup} twice`);
  }
  const out: RenderSettings[] = [];
  for (const cfg of axes.cfg) {
    for (const poseWeight of axes.poseWeight) {
      for (const faceWeight of axes.faceWeight) {
        for (const lipWeight of axes.lipWeight) {
          out.push({ steps: base.steps, seed: base.seed, cfg, poseWeight, faceWeight, lipWeight });
        }
      }
    }
  }
  return out;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/**
 * Runs the whole sweep into `o.outDir` and returns what sweep.json holds.
 *
 * @example
 * ```ts ignore
 * const axes = { cfg: [1, 3.5], poseWeight: [1], faceWeight: [1], lipWeight: [0.5, 1.5] };
 * const sweep = await runSweep("face.jpg", "speech.wav", axes, { outDir: "sweep", weightsDir, steps: 40, seed: 42 });
 * await writeSweepReport("sweep", sweep); // report.html beside sweep.json
 * ```
 */
export async function runSweep(
  image: string,
  audio: string,
  axes: SweepAxes,
  o: SweepOptions,
): Promise<SweepSummary> {
  const tStart = performance.now();
  const settings = sweepSettings(axes, { steps: o.steps, seed: o.seed });
  const outDir = resolve(o.outDir);
  const inputs = { "--image": image, "--audio": audio };
  checkRunPaths(
    Object.fromEntries(["grid.mp4", "sweep.json", "report.html"].map((f) => [`--out ${f}`, join(outDir, f)])),
    inputs,
  );
  for (const s of settings) {
    const label = sweepLabel(s);
    checkRunPaths(
      { [`--out ${label}.mp4`]: join(outDir, `${label}.mp4`) },
      inputs,
      join(outDir, `${label}.run`),
    );
  }
  await Deno.mkdir(outDir, { recursive: true });
  const size = o.size ?? 512;

  o.onEvent?.({ kind: "phase", message: `preparing ${image} and ${audio} ...` });
  const prepared = await prepareInputs(image, audio, { ...o, size });
  o.onEvent?.({ kind: "prepared", warnings: prepared.warnings, timings: prepared.timings });
  const sharedPrep: PreparedInputs = {
    ...prepared,
    timings: Object.fromEntries(Object.keys(prepared.timings).map((k) => [k, 0])),
  };

  // Execution order: grouped by guidance mode (first-seen mode first), one model set at a time.
  const order = settings.map((s, i) => ({ s, i }));
  const firstGuided = settings[0].cfg > 1;
  order.sort((a, b) => Number((a.s.cfg > 1) !== firstGuided) - Number((b.s.cfg > 1) !== firstGuided));

  const results: { res: RenderResult; shared: SharedWork; timings: Record<string, number | boolean> }[] =
    new Array(settings.length);
  const timings: Record<string, number> = { ...prepared.timings };
  let hallo: Hallo | undefined;
  let cache: BankCache | undefined;
  let generate = 0;
  let first = true;
  try {
    for (let k = 0; k < order.length; k++) {
      const { s, i } = order[k];
      const guided = s.cfg > 1;
      let freshModels = false;
      if (!hallo || hallo.models.geometry.guidance !== guided) {
        await hallo?.release();
        hallo = undefined;
        o.onEvent?.({
          kind: "phase",
          message: `loading the ${guided ? "guidance" : "no-guidance"} networks from ${o.weightsDir} ...`,
        });
        const t0 = performance.now();
        hallo = await Hallo.load(o.weightsDir, {
          guidance: guided,
          cfgBatch: o.cfgBatch,
          device: o.device,
          threads: o.threads,
          size,
        });
        timings[`load_models_${guided ? "guidance" : "no_guidance"}_s`] = seconds(t0);
        cache = new BankCache(1);
        freshModels = true;
      }
      const label = sweepLabel(s);
      const models = hallo.models;
      const m: HalloModels = freshModels ? models : {
        ...models,
        timings: Object.fromEntries(
          Object.keys(models.timings).map((n) => [n, { build_s: 0, session_s: 0 }]),
        ),
      };
      const place = { run: { index: k, count: settings.length, label } };
      o.onEvent?.({ kind: "run", ...place });
      const t0 = performance.now();
      const p = first ? prepared : sharedPrep;
      const run = await RunDir.open(join(outDir, `${label}.run`), { identity: renderIdentity(m, p, s) });
      let ok = false;
      try {
        const res = await renderVideo(m, p, s, {
          out: join(outDir, `${label}.mp4`),
          run,
          bankCache: cache,
          record: { ...o.record, sweep: { dir: outDir, index: i, label, runs: settings.length } },
          onEvent: o.onEvent,
          place,
        });
        generate += seconds(t0);
        const shared: SharedWork = {
          prepare: !first,
          models: !freshModels,
          referenceUNetCachedClips: res.referenceCachedClips,
        };
        results[i] = { res, shared, timings: await recordShared(run, res, shared) };
        ok = true;
      } finally {
        await run.close({ failed: !ok });
      }
      first = false;
    }
  } finally {
    await hallo?.release();
  }
  timings.generate_s = generate;

  o.onEvent?.({ kind: "phase", message: `writing the grid video and measures ...` });
  const t0 = performance.now();
  const { width, height, frames } = results[0].res;
  const masks = prepared.image.masks;
  const regions = {
    lip: maskWeights(masks.sepLip, width, height),
    face: maskWeights(masks.sepFace, width, height),
    background: maskWeights(masks.sepBackground, width, height),
  };
  const energies = results.map(() => new MotionEnergyMeter(regions));
  const grid = await writeGridVideo(
    results.map((r) => readRunFrames(r.res.runDir)),
    settings.map((s) => [`cfg ${s.cfg}  pose ${s.poseWeight}`, `face ${s.faceWeight}  lip ${s.lipWeight}`]),
    join(outDir, "grid.mp4"),
    {
      width,
      height,
      frames,
      audio: prepared.audioPath,
      maxWidth: o.gridMaxWidth,
      onFrames: (_, fr) => fr.forEach((f, r) => energies[r].push(f)),
    },
  );
  timings.grid_s = seconds(t0);

  const runs: SweepRun[] = results.map(({ res, shared, timings }, i) => {
    const label = sweepLabel(settings[i]);
    return {
      label,
      settings: settings[i],
      out: `${label}.mp4`,
      runDir: `${label}.run`,
      frames: res.frames,
      clips: res.clips,
      timings,
      shared,
      motionEnergy: energies[i].result() as Record<MotionRegion, RegionEnergy>,
    };
  });
  const summary: SweepSummary = {
    ...o.record,
    version: 1,
    image: prepared.imagePath,
    audio: prepared.audioPath,
    hashes: prepared.hashes,
    weightsDir: resolve(o.weightsDir),
    size,
    steps: o.steps,
    seed: o.seed,
    axes,
    runs,
    grid: { file: "grid.mp4", frames: grid.frames, ...grid.layout },
    timings,
    warnings: prepared.warnings,
  };
  timings.total_s = seconds(tStart);
  await Deno.writeTextFile(join(outDir, "sweep.json"), JSON.stringify(summary, null, 2));
  return summary;
}

/** Adds the sharing flags to the run's run.json (in its timings, and as a `shared` record); returns the timings. */
async function recordShared(
  run: RunDir,
  res: RenderResult,
  s: SharedWork,
): Promise<Record<string, number | boolean>> {
  const timings = {
    ...res.timings,
    prepare_shared: s.prepare,
    models_shared: s.models,
    reference_unet_cached_clips: s.referenceUNetCachedClips,
  };
  await run.update({ timings, shared: s });
  return timings;
}
