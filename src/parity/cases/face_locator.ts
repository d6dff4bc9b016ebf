/** Parity case `face_locator`: FaceLocator on the (b, 3, f, H, W) face-region mask video. */
import { join } from "node:path";
import type { FaceLocatorConfig } from "../../models/face_locator.ts";
import { loadFaceLocator, locateFace } from "../../stages/networks/face_locator.ts";
import type { CaseInput, ParityCase } from "../types.ts";
import { caseConfig } from "./audio_proj.ts";
import { referenceTensor } from "./vae.ts";

export const faceLocatorCase: ParityCase = {
  name: "face_locator",
  tolerance: 1e-4,
  async run(input: CaseInput) {
    const config = caseConfig<FaceLocatorConfig>(input, "face_locator");
    const model = await loadFaceLocator(join(input.dir, "tiny_models", "hallo", "net.pth"), {
      config,
      threads: 1,
      ...input.network,
    });
    try {
      const t0 = performance.now();
      const feat = await locateFace(model, referenceTensor(input, "face_mask_video"));
      return {
        outputs: { mask_cond_fea: feat },
        build_s: model.timings.build_s,
        session_s: model.timings.session_s,
        run_s: (performance.now() - t0) / 1000,
      };
    } finally {
      await model.release();
    }
  },
};
