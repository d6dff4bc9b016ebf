/** Parity case `vae`: AutoencoderKL encode(x).latent_dist (mean, clamped logvar) and decode(z).sample. */
import { join } from "node:path";
import { loadVae, vaeDecode, vaeEncode } from "../../stages/networks/vae.ts";
import type { F32Tensor } from "../../tensor.ts";
import type { CaseInput, ParityCase } from "../types.ts";

/** A reference tensor the case needs, or a one-line error naming it. */
export function referenceTensor(input: CaseInput, name: string): F32Tensor {
  const t = input.tensors.get(name);
  if (!t) throw new Error(`parity case '${String(input.meta.case)}': reference has no tensor '${name}'`);
  return t;
}

/** Runs the tiny VAE of `${dir}/tiny_models/sd-vae-ft-mse` on the reference `x` and `z`. */
export const vaeCase: ParityCase = {
  name: "vae",
  tolerance: 1e-4,
  async run(input: CaseInput) {
    const vae = await loadVae(join(input.dir, "tiny_models", "sd-vae-ft-mse"), {
      threads: 1,
      ...input.network,
    });
    try {
      const t0 = performance.now();
      const { mean, logvar } = await vaeEncode(vae, referenceTensor(input, "x"));
      const { sample } = await vaeDecode(vae, referenceTensor(input, "z"));
      const run_s = (performance.now() - t0) / 1000;
      return {
        outputs: { latent_mean: mean, latent_logvar: logvar, decoded: sample },
        build_s: vae.timings.build_s,
        session_s: vae.timings.session_s,
        run_s,
      };
    } finally {
      await vae.release();
    }
  },
};
