/** The motion-energy figure: one curve per mask over the video's frame transitions. */
import { drawFigure } from "../viz/draw.ts";
import type { VizFigure } from "../viz/figure.ts";
import { PALETTE } from "../viz/panels.ts";
import { round4 } from "../viz/plotly.ts";
import type { MotionEnergy } from "./measures.ts";

const REGIONS = ["lip", "face", "background"] as const;

/** Motion energy per frame (t vs t-1) inside the lip, face and background masks. */
export async function motionEnergyFigure(me: MotionEnergy, fps = 25): Promise<VizFigure> {
  const x = Array.from({ length: me.lip.length }, (_, i) => i + 1);
  return await drawFigure({
    name: "motion-energy",
    caption: "Motion energy (lip, face, background masks)",
    title: `Motion energy per frame inside each mask (${me.frames} frames at ${fps} fps)`,
    subtitle: `means: ${
      REGIONS.map((r) => `${r} ${round4(me.mean[r])}`).join(", ")
    } (0..1 per channel value)`,
    rows: [{
      panels: [{
        kind: "chart",
        size: [860, 240],
        x: { title: "frame" },
        y: { title: "mean |frame difference|" },
        layers: REGIONS.map((r, i) => ({ kind: "lines", name: r, x, y: me[r], color: PALETTE[i] })),
      }],
    }],
    summary: {
      frames: me.frames,
      transitions: me.lip.length,
      mean: { lip: round4(me.mean.lip), face: round4(me.mean.face), background: round4(me.mean.background) },
    },
  });
}
