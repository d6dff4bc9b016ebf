/** Parity case `audio_proj`: AudioProjModel on the first clip's audio windows. */
import { join } from "node:path";
import type { AudioProjConfig } from "../../models/audio_proj.ts";
import { loadAudioProj, projectAudio } from "../../stages/networks/projections.ts";
import type { CaseInput, ParityCase } from "../types.ts";
import { referenceTensor } from "./vae.ts";

/** The module config of a case: the sidecar's `config`, else `index.common.configs[name]`. */
export function caseConfig<C>(input: CaseInput, name: string): C {
  const cfg = input.meta.config ?? input.index.common?.configs?.[name];
  if (typeof cfg !== "object" || cfg === null) {
    throw new Error(`parity case '${name}': no config in the sidecar nor in index.common.configs.${name}`);
  }
  return cfg as C;
}

export const audioProjCase: ParityCase = {
  name: "audio_proj",
  tolerance: 1e-4,
  async run(input: CaseInput) {
    const config = caseConfig<AudioProjConfig>(input, "audio_proj");
    const model = await loadAudioProj(join(input.dir, "tiny_models", "hallo", "net.pth"), {
      config,
      threads: 1,
      ...input.network,
    });
    try {
      const t0 = performance.now();
      const tokens = await projectAudio(model, referenceTensor(input, "audio_windows"));
      return {
        outputs: { audio_tokens: tokens },
        build_s: model.timings.build_s,
        session_s: model.timings.session_s,
        run_s: (performance.now() - t0) / 1000,
      };
    } finally {
      await model.release();
    }
  },
};
