/** Draws a figure description both ways: Plotly JSON for notebooks and reports, a PNG for scripts. */
import { type VizFigure, vizFigure } from "./figure.ts";
import type { FigureSpec } from "./panels.ts";
import { drawPlotly } from "./plotly_render.ts";
import { drawPng } from "./png_render.ts";

/** The figure a visualiser returns: one description, drawn by both renderers. */
export async function drawFigure(spec: FigureSpec): Promise<VizFigure> {
  const [plotly, { png }] = await Promise.all([drawPlotly(spec), drawPng(spec)]);
  return vizFigure(spec.name, spec.caption, plotly, png, spec.summary ?? {});
}
