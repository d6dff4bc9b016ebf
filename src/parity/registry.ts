/** Every parity case this port can run. */
import type { ParityCase } from "./types.ts";
import { wav2vecCase } from "./cases/wav2vec.ts";
import { vaeCase } from "./cases/vae.ts";
import { imageProjCase } from "./cases/image_proj.ts";
import { audioProjCase } from "./cases/audio_proj.ts";
import { faceLocatorCase } from "./cases/face_locator.ts";
import { ddimSchedulerCase } from "./cases/ddim_scheduler.ts";
import { pipelineCase } from "./cases/pipeline.ts";
import {
  denoisingUNetReadCfg,
  denoisingUNetReadNocfg,
  referenceUNetWriteCfg,
  referenceUNetWriteNocfg,
} from "./cases/unets.ts";

export const PARITY_CASES: readonly ParityCase[] = [
  vaeCase,
  imageProjCase,
  audioProjCase,
  faceLocatorCase,
  wav2vecCase,
  referenceUNetWriteCfg,
  referenceUNetWriteNocfg,
  denoisingUNetReadCfg,
  denoisingUNetReadNocfg,
  pipelineCase,
  ddimSchedulerCase,
];
