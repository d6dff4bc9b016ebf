/**
 * `deno task hallo animate --image I --audio A --out O.mp4 [options]`: image + speech -> talking-head mp4,
 * as upstream's scripts/inference.py. Every option is checked before any heavy work.
 */
import { parseArgs } from "node:util";
import { parseDType, warnIfFp16OnCpu } from "../runtime/dtype.ts";
import { resolveWeightsDir } from "../weights/locate.ts";
import { readTinyConfigs } from "../weights/tiny_configs.ts";
import { checkWeightsFor } from "../stages/generate/weights.ts";
import { defaultRunDir, loadModelsFor, prepareInputs, renderVideo } from "../stages/generate/run.ts";
import { GENERATION_OPTIONS, num, readableFile, runOptions, UsageError, writablePath } from "./options.ts";
import { clipStepProgress, StepProgress } from "./progress.ts";

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
  --no-separate           skip vocal separation
  --run-dir DIR           where finished clips and run.json go (default: <out>.run)
  --resume                continue the run in --run-dir from its last finished clip`;

export async function run(args: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args,
      options: {
        ...GENERATION_OPTIONS,
        dtype: { type: "string" },
        "run-dir": { type: "string" },
        resume: { type: "boolean" },
        "strict-device": { type: "boolean" },
      },
    }).values;
  } catch (e) {
    console.error(`animate: ${e instanceof Error ? e.message.split("\n")[0] : e} (see --help)`);
    return 2;
  }
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    const settings = {
      steps: num("steps", v.steps, 40, { min: 1, int: true }),
      cfg: num("cfg", v.cfg, 3.5, { min: 0 }),
      poseWeight: num("pose-weight", v["pose-weight"], 1),
      faceWeight: num("face-weight", v["face-weight"], 1),
      lipWeight: num("lip-weight", v["lip-weight"], 1),
      seed: num("seed", v.seed, 42, { min: 0, int: true }),
    };
    const { size, faceExpandRatio, threads, device } = runOptions(v);
    let dtype;
    try {
      dtype = parseDType(v.dtype ?? "fp32");
    } catch (e) {
      throw new UsageError(`--dtype: ${(e as Error).message}`);
    }
    warnIfFp16OnCpu(dtype, device);
    const image = await readableFile("image", v.image);
    const audio = await readableFile("audio", v.audio);
    const out = await writablePath("out", v.out);
    const weightsDir = resolveWeightsDir(v.weights);
    const tiny = readTinyConfigs(weightsDir) !== undefined;
    await checkWeightsFor(weightsDir, { separate: !v["no-separate"], tiny });
    const runDir = v["run-dir"] ?? defaultRunDir(out);

    const progress = new StepProgress();
    console.error(`preparing ${image} and ${audio} ...`);
    const prepared = await prepareInputs(image, audio, {
      weightsDir,
      faceExpandRatio,
      size,
      separate: !v["no-separate"],
      device,
      threads,
      allowMissingFaceModels: tiny,
    });
    for (const w of prepared.warnings) console.error(`warning: ${w}`);
    console.error(`loading networks from ${weightsDir} ...`);
    const models = await loadModelsFor(weightsDir, settings.cfg, {
      device,
      threads,
      size,
      dtype,
      strictDevice: v["strict-device"],
    });
    try {
      const res = await renderVideo(models, prepared, settings, {
        out,
        runDir,
        resume: v.resume,
        record: { command: ["animate", ...args], weightsDir, device, dtype, tiny, size },
        onStep: clipStepProgress(progress),
      });
      progress.done();
      console.log(
        `wrote ${res.out} (${res.frames} frames, ${res.clips} clips; run record in ${runDir}/run.json)`,
      );
    } finally {
      await models.release();
    }
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`animate: ${msg.split("\n")[0]}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
