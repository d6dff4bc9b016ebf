/** Parity case `image_proj`: ImageProjModel on the face embedding and on zeros (the uncond context). */
import { join } from "node:path";
import type { ImageProjConfig } from "../../models/image_proj.ts";
import { loadImageProj, projectFaceEmbedding } from "../../stages/networks/projections.ts";
import { f32 } from "../../tensor.ts";
import type { CaseInput, ParityCase } from "../types.ts";
import { caseConfig } from "./audio_proj.ts";
import { referenceTensor } from "./vae.ts";

export const imageProjCase: ParityCase = {
  name: "image_proj",
  tolerance: 1e-4,
  async run(input: CaseInput) {
    const config = caseConfig<ImageProjConfig>(input, "image_proj");
    const model = await loadImageProj(join(input.dir, "tiny_models", "hallo", "net.pth"), {
      config,
      threads: 1,
      ...input.network,
    });
    try {
      const emb = referenceTensor(input, "face_emb");
      const t0 = performance.now();
      const tokens = await projectFaceEmbedding(model, emb);
      const tokensUncond = await projectFaceEmbedding(model, f32(emb.shape));
      return {
        outputs: { tokens, tokens_uncond: tokensUncond },
        build_s: model.timings.build_s,
        session_s: model.timings.session_s,
        run_s: (performance.now() - t0) / 1000,
      };
    } finally {
      await model.release();
    }
  },
};
