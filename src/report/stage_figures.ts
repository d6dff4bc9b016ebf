/**
 * The report's figures of stages that mean something even with random weights, beyond the standard portrait
 * (landmarks, masks) and audio (wav2vec2 features) figures `writeRunReport` always draws: the reference UNet's
 * attention bank of clip 0. The attribution measures (src/stages/inspect: audio -> pixels per branch, identity
 * drift, guidance by region; drawn by src/viz/inspect_figures.ts) need the denoising UNet's attention probes,
 * which the demo does not capture yet: wiring them means adding what they read to `StageFigureInputs` and their
 * figures to this list, and every report built from it (the demo's) shows them.
 */
import type { Bank } from "../stages/networks/unets.ts";
import { bankFigure } from "../viz/bank.ts";
import type { VizFigure } from "../viz/figure.ts";

/** What the stage figures are drawn from. */
export interface StageFigureInputs {
  /** Clip 0's bank as the denoising UNet reads it (`Hallo.bank(...).bank`). */
  bank: Bank;
  /** Latent size of the clip (image size / 8). */
  latentHeight: number;
  latentWidth: number;
  /** Motion frames per guidance copy (2). */
  motionFrames?: number;
}

/** The stage figures of one run, in report order (pass them as `writeRunReport`'s `figures`). */
export async function stageFigures(i: StageFigureInputs): Promise<VizFigure[]> {
  return [
    await bankFigure(i.bank, {
      latentHeight: i.latentHeight,
      latentWidth: i.latentWidth,
      motionFrames: i.motionFrames,
    }),
  ];
}
