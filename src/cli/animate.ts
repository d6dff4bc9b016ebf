/**
 * `deno task hallo animate --image I --audio A --out O.mp4 [options]`: image + speech -> talking-head mp4,
 * as upstream's scripts/inference.py. Every option is checked before any heavy work.
 */
import { parseArgs } from "node:util";
import { parseDType, warnIfFp16OnCpu } from "../runtime/dtype.ts";
import { resolveWeightsDir } from "../weights/locate.ts";
import { readTinyConfigs } from "../tiny/configs.ts";
import { checkWeightsFor } from "../stages/generate/weights.ts";
import { checkRunCost } from "../stages/generate/cost.ts";
import { Hallo } from "../stages/generate/hallo.ts";
import { IDENTITY_SITES, measuresDifference } from "../stages/generate/clip_measures.ts";
import { defaultRunDir, prepareInputs } from "../stages/generate/run.ts";
import { openRunFor, type RunDir, RunDirError, RunPathError } from "../stages/generate/run_dir.ts";
import { probeDevice } from "../runtime/probe.ts";
import {
  cfgBatchOption,
  checkAudioFile,
  GENERATION_OPTIONS,
  joinNegativeValues,
  num,
  readableFile,
  runOptions,
  seedOption,
  UsageError,
  writablePath,
} from "./options.ts";
import { patchOption } from "./patches.ts";
import { progressEvents, StepProgress } from "./progress.ts";

const USAGE = `usage: deno task hallo animate --image I --audio A --out O.mp4 [options]

  --weights DIR           pretrained_models folder (default: $HALLO_WEIGHTS, then weights/pretrained_models)
  --steps N               DDIM steps (40)
  --cfg S                 guidance scale (3.5); 1 or less runs the conditional branch alone (upstream crashes there)
  --pose-weight W         motion scale of the full/background branch (1)
  --face-weight W         motion scale of the face branch (1)
  --lip-weight W          motion scale of the lip branch (1)
  --face-expand-ratio R   face box expansion (1.2)
  --seed N                noise seed (42)
  --size N                video size, a multiple of 64 (512, the only size upstream runs; smaller is for
                          quick experiments)
  --device cpu|cuda|webgpu
  --dtype fp32|fp16       precision of the compiled graphs (fp32; fp16 is for GPUs, weights converted once into a
                          cache beside the checkpoints)
  --strict-device         on a GPU device, a compute node ORT places on the CPU is an error (default: a
                          warning naming the nodes at load)
  --threads N             ORT intra-op threads (default: all cores)
  --cfg-batch MODE         joint|halves: with guidance the denoising UNet runs [uncond, cond] as one batch-2 call
                          (joint) or one call per half (halves: the same numbers up to float rounding, about
                          half the activation memory); default joint, or halves when the cost model finds that
                          joint does not fit in memory
  --no-separate           skip vocal separation
  --run-dir DIR           where finished clips and run.json go (default: <out>.run)
  --resume                continue the run in --run-dir from its last finished clip
  --record-steps          make the run replayable: each clip's conditioning and per-step latents and guided
                          predictions go into the run dir (clips/NNNN.steps.safetensors; see hallo replay)
  --patch JSON            an intervention for every clip ('{"kind":"audio-shift","by":2}', a JSON array, or
                          @file.json); repeatable; recorded in run.json
  --measure identity      also record identity drift: each step's share of self-attention on the reference
                          at ${IDENTITY_SITES.length} bank-reading sites (they are probed: another graph compile,
                          ~8 MB per site and step at 512 px). Guidance by region is recorded in every guided
                          run; both go into clips/NNNN.measures.json, and the run report shows them`;

export async function run(args: string[]): Promise<number> {
  let v;
  try {
    const options = {
      ...GENERATION_OPTIONS,
      dtype: { type: "string" },
      "run-dir": { type: "string" },
      resume: { type: "boolean" },
      "record-steps": { type: "boolean" },
      measure: { type: "string", multiple: true },
      patch: { type: "string", multiple: true },
      "strict-device": { type: "boolean" },
    } as const;
    v = parseArgs({ args: joinNegativeValues(args, options), options }).values;
  } catch (e) {
    console.error(`animate: ${e instanceof Error ? e.message.split("\n")[0] : e} (see --help)`);
    return 2;
  }
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  let run: RunDir | undefined;
  let ok = false;
  try {
    const settings = {
      steps: num("steps", v.steps, 40, { min: 1, int: true }),
      cfg: num("cfg", v.cfg, 3.5, { min: 0 }),
      poseWeight: num("pose-weight", v["pose-weight"], 1),
      faceWeight: num("face-weight", v["face-weight"], 1),
      lipWeight: num("lip-weight", v["lip-weight"], 1),
      seed: seedOption(v.seed),
    };
    const { size, faceExpandRatio, threads, device } = runOptions(v);
    const cfgBatch = cfgBatchOption(v["cfg-batch"]);
    let dtype;
    try {
      dtype = parseDType(v.dtype ?? "fp32");
    } catch (e) {
      throw new UsageError(`--dtype: ${(e as Error).message}`);
    }
    warnIfFp16OnCpu(dtype, device);
    const patches = await patchOption(v.patch);
    const unknown = (v.measure ?? []).filter((m) => m !== "identity");
    if (unknown.length) {
      throw new UsageError(
        `--measure: unknown measure '${unknown[0]}' (identity; guidance by region is always recorded)`,
      );
    }
    const measureIdentity = (v.measure ?? []).includes("identity");
    await probeDevice(device);
    const image = await readableFile("image", v.image);
    const audio = await readableFile("audio", v.audio);
    await checkAudioFile("audio", audio);
    const out = await writablePath("out", v.out);
    const weightsDir = resolveWeightsDir(v.weights);
    const tiny = readTinyConfigs(weightsDir) !== undefined;
    await checkWeightsFor(weightsDir, { separate: !v["no-separate"], tiny });
    const runDir = v["run-dir"] ?? defaultRunDir(out);
    run = await openRunFor({ image, audio, out, runDir, weightsDir, resume: v.resume }, {
      ...settings,
      faceExpandRatio,
      size,
      separate: !v["no-separate"],
      device,
      dtype,
    });
    // Before any work: a resume measures as the run did (animate checks it again with the loaded networks).
    const measureDiff = v.resume
      ? measuresDifference(run.record?.measures, {
        guidance: settings.cfg > 1,
        identity: measureIdentity ? [...IDENTITY_SITES] : [],
      })
      : undefined;
    if (measureDiff) throw new RunDirError(`run dir ${runDir} ${measureDiff}`);
    if (run.tookOverLock) {
      const t = run.tookOverLock;
      console.error(`note: took over the stale lock of pid ${t.pid} on ${t.hostname} (that process is gone)`);
    }
    // After the paths and the lock are checked; a refusal leaves no run dir behind (closed as failed).
    const cost = await checkRunCost({
      weightsDir,
      size,
      steps: settings.steps,
      guidance: settings.cfg > 1,
      device,
      audio,
      cfgBatch,
    });

    const progress = new StepProgress();
    const log = progressEvents(progress);
    // The inputs first: a photo without a face or an unreadable audio fails before the networks load.
    log({ kind: "phase", message: `preparing ${image} and ${audio} ...` });
    const prepared = await prepareInputs(image, audio, {
      weightsDir,
      faceExpandRatio,
      size,
      separate: !v["no-separate"],
      device,
      threads,
      allowMissingFaceModels: tiny,
    });
    log({ kind: "prepared", warnings: prepared.warnings, timings: prepared.timings });
    log({ kind: "phase", message: `loading networks from ${weightsDir} ...` });
    const hallo = await Hallo.load(weightsDir, {
      guidance: settings.cfg > 1,
      cfgBatch: cfgBatch ?? cost?.cfgBatch,
      device,
      threads,
      size,
      dtype,
      strictDevice: v["strict-device"],
      measureIdentity,
    });
    try {
      const res = await hallo.animate(image, audio, {
        ...settings,
        prepared,
        out,
        run,
        dtype,
        record: {
          command: ["animate", ...args],
          weightsDir,
          device,
          dtype,
          tiny,
          size,
          cfg_batch: hallo.models.geometry.cfgBatch,
        },
        onEvent: log,
        recordSteps: v["record-steps"],
        interventions: patches,
      });
      progress.done();
      for (const p of run.problems) console.error(`warning: ${p}`);
      console.log(
        `wrote ${res.out} (${res.frames} frames, ${res.clips} clips; run record in ${runDir}/run.json)`,
      );
    } finally {
      await hallo.release();
    }
    ok = true;
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`animate: ${msg.split("\n")[0]}`);
    return e instanceof UsageError || e instanceof RunPathError ? 2 : 1;
  } finally {
    await run?.close({ failed: !ok });
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
