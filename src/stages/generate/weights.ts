/** The weights check a whole run does before any heavy work. */
import { join } from "node:path";
import { TinyWeightsError } from "../../tiny/configs.ts";
import { requireWeights, resolveNetCheckpoint } from "../../weights/locate.ts";

/**
 * Fails early with the message naming each missing file and the command that fetches it. A tiny random set
 * (tiny.json present) has no face-analysis models and a safetensors net: only what it has is checked.
 */
export async function checkWeightsFor(
  weightsDir: string,
  o: { separate?: boolean; tiny?: boolean } = {},
): Promise<void> {
  if (o.tiny) {
    resolveNetCheckpoint(weightsDir);
    for (const f of ["stable-diffusion-v1-5/unet/config.json", "sd-vae-ft-mse/config.json"]) {
      try {
        await Deno.stat(join(weightsDir, f));
      } catch {
        throw new TinyWeightsError(
          `tiny weight set ${weightsDir} is incomplete: ${f} is missing (delete the folder to regenerate it)`,
        );
      }
    }
    return;
  }
  await requireWeights(weightsDir, "networks");
  await requireWeights(weightsDir, "audio");
  await requireWeights(weightsDir, "image");
}
