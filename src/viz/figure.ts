/**
 * The figure every visualiser returns, in three renderings: a Plotly figure (plain JSON, drawn by plotly.js in
 * a browser or Jupyter), a PNG (drawn here with sharp, for places without JavaScript), and a Jupyter display
 * bundle with both. plotly.js itself is never imported: it needs a DOM.
 */
import { Buffer } from "node:buffer";

/** One Plotly trace (`{type, x, y, z, ...}`), as plain JSON. */
export type PlotlyTrace = Record<string, unknown> & { type: string };

/** A Plotly figure: what `Plotly.newPlot(div, data, layout)` takes. */
export interface PlotlyFigure {
  data: PlotlyTrace[];
  layout: Record<string, unknown>;
}

/** A Jupyter display bundle: mime type -> data (the PNG base64-encoded, as Jupyter expects). */
export interface DisplayBundle {
  "application/vnd.plotly.v1+json": PlotlyFigure;
  "image/png": string;
}

/** A visualiser's result. */
export interface VizFigure {
  /** Short identifier (`portrait`, `audio`, ...), used for element ids and file names. */
  name: string;
  title: string;
  plotly: PlotlyFigure;
  /** The same content as a PNG image. */
  png: Uint8Array;
  /** Numbers worth a look without opening the figure (shapes, ranges, statistics). */
  summary: Record<string, unknown>;
}

/** Thrown for input a visualiser cannot draw (wrong shapes, missing probes). */
export class VizError extends Error {
  override name = "VizError";
}

/** The Jupyter display bundle of a figure; plotly.js is never inlined (the front end brings its own). */
export function displayBundle(fig: VizFigure): DisplayBundle {
  return {
    "application/vnd.plotly.v1+json": fig.plotly,
    "image/png": Buffer.from(fig.png).toString("base64"),
  };
}

/**
 * Builds a VizFigure that Deno's Jupyter kernel displays by itself (the `Jupyter.display` symbol), so a
 * notebook cell can end with the visualiser call.
 */
export function vizFigure(
  name: string,
  title: string,
  plotly: PlotlyFigure,
  png: Uint8Array,
  summary: Record<string, unknown> = {},
): VizFigure {
  const fig: VizFigure = { name, title, plotly, png, summary };
  Object.defineProperty(fig, Symbol.for("Jupyter.display"), {
    value: () => displayBundle(fig),
    enumerable: false,
  });
  return fig;
}
