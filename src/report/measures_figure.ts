/** The motion-energy figure: one curve per mask over the video's frame transitions. */
import { renderCanvas } from "../viz/canvas.ts";
import { lineChart, PALETTE } from "../viz/charts.ts";
import { type PlotlyTrace, type VizFigure, vizFigure } from "../viz/figure.ts";
import { plotlyGrid, round4 } from "../viz/plotly.ts";
import type { MotionEnergy } from "./measures.ts";

const REGIONS = ["lip", "face", "background"] as const;

/** Motion energy per frame (t vs t-1) inside the lip, face and background masks. */
export async function motionEnergyFigure(me: MotionEnergy, fps = 25): Promise<VizFigure> {
  const x = Array.from({ length: me.lip.length }, (_, i) => i + 1);
  const grid = plotlyGrid(1, 1, [{
    row: 0,
    col: 0,
    kind: "chart",
    xTitle: "frame",
    yTitle: "mean |frame difference|",
  }], {
    title: `Motion energy per frame inside each mask (${me.frames} frames at ${fps} fps)`,
    width: 900,
    height: 380,
    layout: { showlegend: true },
  });
  const data: PlotlyTrace[] = REGIONS.map((r, i) => ({
    type: "scatter",
    mode: "lines",
    name: `${r} (mean ${round4(me.mean[r])})`,
    x,
    y: me[r].map(round4),
    line: { color: PALETTE[i] },
    ...grid.axes[0],
  }));
  const png = await renderCanvas({
    title: `Motion energy per frame inside each mask (${me.frames} frames)`,
    subtitle: `means: ${
      REGIONS.map((r) => `${r} ${round4(me.mean[r])}`).join(", ")
    } (0..1 per channel value)`,
    sections: [{
      rows: [[lineChart({
        width: 860,
        height: 240,
        series: REGIONS.map((r, i) => ({ name: r, x, y: me[r], color: PALETTE[i] })),
        xLabel: "frame",
      })]],
    }],
  });
  return vizFigure(
    "motion-energy",
    "Motion energy (lip, face, background masks)",
    { data, layout: grid.layout },
    png,
    {
      frames: me.frames,
      transitions: me.lip.length,
      mean: { lip: round4(me.mean.lip), face: round4(me.mean.face), background: round4(me.mean.background) },
    },
  );
}
