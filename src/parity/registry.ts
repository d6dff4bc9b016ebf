/** Every parity case this port can run. */
import type { ParityCase } from "./types.ts";
import { wav2vecCase } from "./cases/wav2vec.ts";
import {
  denoisingUNetReadCfg,
  denoisingUNetReadNocfg,
  referenceUNetWriteCfg,
  referenceUNetWriteNocfg,
} from "./cases/unets.ts";

export const CASES: readonly ParityCase[] = [
  wav2vecCase,
  referenceUNetWriteCfg,
  referenceUNetWriteNocfg,
  denoisingUNetReadCfg,
  denoisingUNetReadNocfg,
];
