/**
 * `deno task hallo replay --run-dir D --clip C --step S --out F.safetensors [--probe P] [--patch J]`: one step
 * of a run recorded with `animate --record-steps`, run again (on this machine, with probes and patches) and
 * written out: `latents`, `noise_pred` (guided), `next_latents`, and `probe.<name>` per probe. Prints the
 * largest difference to the recording; exits 1 when, unpatched, it exceeds the tolerance for this device
 * (0 on the recording device and precision; across them a fraction of the recorded values' largest
 * magnitude, see replayTolerance).
 */
import { parseArgs } from "node:util";
import { parseDType } from "../runtime/dtype.ts";
import { probeDevice } from "../runtime/probe.ts";
import { resolveWeightsDir } from "../weights/locate.ts";
import { writeSafetensors } from "../weights/safetensors_write.ts";
import { Hallo } from "../stages/generate/hallo.ts";
import { readRunRecord } from "../stages/generate/run_dir.ts";
import type { F32Tensor } from "../tensor.ts";
import { num, runOptions, UsageError, writablePath } from "./options.ts";
import { patchOption } from "./patches.ts";

const USAGE = `usage: deno task hallo replay --run-dir D --clip C --step S --out F.safetensors [options]

  --run-dir DIR       a run made with animate --record-steps
  --clip C            clip index (0-based)
  --step S            sampler step (0-based)
  --out F             safetensors file: latents, noise_pred (guided), next_latents, probe.<name>
  --probe PATH        attention probabilities of a UNet module (upstream path, e.g.
                      down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2); repeatable
  --patch JSON        an intervention ('{"kind":"audio-silence"}', a JSON array, or @file.json); repeatable.
                      A patched step is meant to differ: its difference is printed, not judged
  --weights DIR       pretrained_models folder (default: the run's, then $HALLO_WEIGHTS)
  --device cpu|cuda|webgpu
  --dtype fp32|fp16   (default: the run's)
  --threads N
  --tolerance X       largest accepted difference (default: 0 on the recording device and precision,
                      else 1e-2 at the recording's precision and 1 at another, times the largest
                      recorded magnitude)`;

export async function run(args: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args,
      options: {
        "run-dir": { type: "string" },
        clip: { type: "string" },
        step: { type: "string" },
        out: { type: "string" },
        probe: { type: "string", multiple: true },
        patch: { type: "string", multiple: true },
        weights: { type: "string" },
        device: { type: "string" },
        dtype: { type: "string" },
        threads: { type: "string" },
        tolerance: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`replay: ${e instanceof Error ? e.message.split("\n")[0] : e} (see --help)`);
    return 2;
  }
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    if (!v["run-dir"]) throw new UsageError("--run-dir is required");
    const runDir = v["run-dir"];
    const clip = num("clip", v.clip ?? "", 0, { min: 0, int: true });
    const step = num("step", v.step ?? "", 0, { min: 0, int: true });
    const out = await writablePath("out", v.out);
    const tolerance = v.tolerance === undefined ? undefined : num("tolerance", v.tolerance, 0, { min: 0 });
    const patches = await patchOption(v.patch);
    const probes = (v.probe ?? []).map((p) => p.replace(/\.probs$/, ""));
    const rec = await readRunRecord(runDir);
    const { threads, device } = runOptions({ threads: v.threads, device: v.device });
    let dtype;
    try {
      dtype = parseDType(v.dtype ?? String(rec.identity.dtype ?? "float32"));
    } catch (e) {
      throw new UsageError(`--dtype: ${(e as Error).message}`);
    }
    await probeDevice(device);
    const weightsDir = v.weights ??
      (typeof rec.weightsDir === "string" ? rec.weightsDir : resolveWeightsDir(undefined));
    const hallo = await Hallo.load(weightsDir, {
      size: rec.identity.size,
      frames: rec.geometry.frames_per_clip,
      guidance: rec.identity.cfg > 1,
      device,
      threads,
      dtype,
      probes: probes.length
        ? { attention: Object.fromEntries(probes.map((p) => [p, "heads" as const])) }
        : undefined,
    });
    try {
      const r = await hallo.replay(runDir, clip, step, { interventions: patches });
      const t = (name: string, x: F32Tensor) => ({
        name,
        dtype: "F32" as const,
        shape: x.shape,
        data: x.data,
      });
      writeSafetensors(out, [
        t("latents", r.latents),
        t("noise_pred", r.noisePred),
        t("next_latents", r.nextLatents),
        ...Object.entries(r.probes).map(([k, x]) => t(`probe.${k}`, x as F32Tensor)),
      ], {
        format: "hallo-lab replayed step",
        clip: String(clip),
        step: String(step),
        timestep: String(r.timestep),
        max_difference: String(r.maxDifference),
        patches: JSON.stringify(patches),
      });
      const tol = tolerance ?? r.tolerance;
      // A cross-device tolerance scales with the recorded values: say with which.
      const why = tolerance === undefined && tol > 0
        ? ` = ${r.relativeTolerance} x max |recorded| ${r.scale}`
        : "";
      console.log(
        `replay clip ${clip} step ${step} (timestep ${r.timestep}) on ${device}: max |replay - recorded| = ` +
          `${r.maxDifference} (tolerance ${tol}${why}; recorded on ${r.recordedOn.device} ` +
          `${r.recordedOn.dtype}); wrote ${out}`,
      );
      if (!patches.length && !(r.maxDifference <= tol)) {
        console.error(
          `replay: clip ${clip} step ${step} differs from the recording by ${r.maxDifference} > tolerance ` +
            `${tol} (recorded on ${r.recordedOn.device} ${r.recordedOn.dtype}, replayed on ` +
            `${r.replayedOn.device} ${r.replayedOn.dtype})`,
        );
        return 1;
      }
      return 0;
    } finally {
      await hallo.release();
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`replay: ${msg.split("\n")[0]}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
