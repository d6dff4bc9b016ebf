/**
 * The one description of a figure that both renderings draw (`plotly_render.ts` for notebooks and HTML
 * reports, `png_render.ts` for scripts): a figure is rows of panels, a panel is a stack of layers (an RGB
 * image, heatmaps through a colour scale, lines, bars, points, boxes, vertical lines and spans) over one
 * coordinate frame, with titles, axes and shared scales. A visualiser builds this and nothing else.
 */
import type { Colormap } from "./colormap.ts";
import { VizError } from "./figure.ts";
import { fitTo, type RgbImage } from "./raster.ts";

/** Values to colours: the same object on several heatmaps means the same colour for the same value. */
export interface ColorScale {
  cmap: Colormap;
  /** Values mapped to the first and last colour (clamped outside). */
  range: readonly [number, number];
}

/** An RGB image covering the panel's frame (x right, y down). */
export interface ImageLayer {
  kind: "image";
  name: string;
  image: RgbImage;
  /** A photo: Plotly gets it as JPEG (small) instead of PNG (exact). */
  photo?: boolean;
}

/** A row-major (height x width) value map through a colour scale. */
export interface HeatmapLayer {
  kind: "heatmap";
  name: string;
  values: ArrayLike<number>;
  width: number;
  height: number;
  scale: ColorScale;
  /** Below 1 over an image: the image shows through (default 1 alone, 0.6 over an image). */
  opacity?: number;
  /** Category labels of the columns and rows (matrix panels). */
  xLabels?: string[];
  yLabels?: string[];
  /** The x interval the columns cover in a chart panel (default 0..width). */
  xSpan?: readonly [number, number];
}

/** A curve; with `lower`, the band between `lower` and `y` (an envelope). */
export interface LinesLayer {
  kind: "lines";
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  lower?: ArrayLike<number>;
  color?: string;
  /** A marker on every point. */
  markers?: boolean;
}

/** Bars at x; the bar layers of a panel stack. */
export interface BarsLayer {
  kind: "bars";
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: string;
}

/** Points (landmarks) in the frame's coordinates. */
export interface PointsLayer {
  kind: "points";
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: string;
  /** Marker diameter in pixels (default 3). */
  size?: number;
}

/** A labelled rectangle [x0, y0, x1, y1] in the frame's coordinates. */
export interface BoxLayer {
  kind: "box";
  name: string;
  box: readonly [number, number, number, number];
  color: string;
  dashed?: boolean;
}

/** Dotted vertical lines across a chart (clip boundaries). */
export interface VLinesLayer {
  kind: "vlines";
  name: string;
  x: readonly number[];
  color?: string;
}

/** A shaded x interval across a chart (padding). */
export interface SpanLayer {
  kind: "span";
  name: string;
  x0: number;
  x1: number;
  color?: string;
}

export type Layer =
  | ImageLayer
  | HeatmapLayer
  | LinesLayer
  | BarsLayer
  | PointsLayer
  | BoxLayer
  | VLinesLayer
  | SpanLayer;

/** An axis of a chart panel. */
export interface Axis {
  title?: string;
  /** Shown interval (default the data's). */
  range?: readonly [number, number];
  /** Panels whose x axes carry the same key zoom together (Plotly) and share the range. */
  link?: string;
}

/**
 * One panel. `image`: a picture, y down, no axes, its frame the first image's (else the first heatmap's)
 * size; `matrix`: a square map with labelled axes; `chart`: ordinary x/y axes.
 */
export interface Panel {
  kind: "image" | "matrix" | "chart";
  title?: string;
  layers: Layer[];
  /** Display size in pixels: the longer side of an image or matrix, [width, height] of a chart. */
  size: number | readonly [number, number];
  x?: Axis;
  y?: Axis;
  /** Columns the panel spans (a chart under rows of images); default 1. */
  span?: number;
}

/** A row of panels; `null` leaves a hole. */
export interface PanelRow {
  label?: string;
  /** Starts a new group of rows under this heading (both renderings draw it above the row). */
  heading?: string;
  panels: (Panel | null)[];
}

/** A whole figure: what a visualiser returns before it is drawn. */
export interface FigureSpec {
  /** Short identifier (`portrait`, `audio`, ...), used for element ids and file names. */
  name: string;
  /** Caption of the figure (the report's heading). */
  caption: string;
  title: string;
  /** A line under the title (settings, colour ranges, notices). */
  subtitle?: string;
  rows: PanelRow[];
  /** Numbers worth a look without opening the figure. */
  summary?: Record<string, unknown>;
}

/** The coordinate frame (width, height) of an image or matrix panel. */
export function panelFrame(p: Panel): [number, number] {
  const img = p.layers.find((l): l is ImageLayer => l.kind === "image");
  if (img) return [img.image.width, img.image.height];
  const heat = p.layers.find((l): l is HeatmapLayer => l.kind === "heatmap");
  if (heat) return [heat.width, heat.height];
  throw new VizError(`panel "${p.title ?? ""}" has neither an image nor a heatmap to frame it`);
}

/**
 * The raster an image layer is drawn at in both renderings: fitted to the panel's display size, so the
 * Plotly figure carries the very pixels of the PNG.
 */
export function layerRaster(p: Panel, layer: ImageLayer): RgbImage {
  const side = typeof p.size === "number" ? p.size : Math.max(...p.size);
  // One image is often under many panels (the portrait under every mask): fitted once per size.
  let sizes = rasters.get(layer.image);
  if (!sizes) rasters.set(layer.image, sizes = new Map());
  let r = sizes.get(side);
  if (!r) sizes.set(side, r = fitTo(layer.image, side));
  return r;
}

const rasters = new WeakMap<RgbImage, Map<number, RgbImage>>();

/** Display size [width, height] in pixels of a panel. */
export function displaySize(p: Panel): [number, number] {
  if (typeof p.size !== "number") return [p.size[0], p.size[1]];
  const [w, h] = panelFrame(p);
  const s = p.size / Math.max(w, h);
  return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
}

function extend(r: [number, number], v: ArrayLike<number>): void {
  for (let i = 0; i < v.length; i++) {
    if (Number.isFinite(v[i])) {
      r[0] = Math.min(r[0], v[i]);
      r[1] = Math.max(r[1], v[i]);
    }
  }
}

/** The x and y intervals a chart panel shows: its axes' ranges, else its data's (bars from 0, stacked). */
export function chartRanges(p: Panel): { x: [number, number]; y: [number, number] } {
  const x: [number, number] = [Infinity, -Infinity], y: [number, number] = [Infinity, -Infinity];
  const stack = new Map<number, [number, number]>();
  for (const l of p.layers) {
    if (l.kind === "lines" || l.kind === "points") {
      extend(x, l.x);
      extend(y, l.y);
      if (l.kind === "lines" && l.lower) extend(y, l.lower);
    } else if (l.kind === "bars") {
      extend(x, [l.x[0] - 0.5, l.x[l.x.length - 1] + 0.5]);
      for (let i = 0; i < l.x.length; i++) {
        const s = stack.get(l.x[i]) ?? [0, 0];
        if (l.y[i] >= 0) s[1] += l.y[i];
        else s[0] += l.y[i];
        stack.set(l.x[i], s);
      }
    } else if (l.kind === "heatmap") {
      extend(x, l.xSpan ?? [0, l.width]);
      extend(y, [0, l.height]);
    }
  }
  for (const s of stack.values()) extend(y, s);
  const fix = (r: [number, number], axis?: Axis): [number, number] => {
    if (axis?.range) return [axis.range[0], axis.range[1]];
    if (!Number.isFinite(r[0])) return [0, 1];
    return r[0] === r[1] ? [r[0] - 0.5, r[1] + 0.5] : r;
  };
  return { x: fix(x, p.x), y: fix(y, p.y) };
}

/** Trace colours, the same in both renderings. */
export const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
];

/** The colour of a series layer: its own, else the palette's by its place among the panel's series. */
export function seriesColor(p: Panel, layer: Layer): string {
  if ("color" in layer && layer.color) return layer.color;
  const series: Layer[] = p.layers.filter((l) =>
    l.kind === "lines" || l.kind === "bars" || l.kind === "points"
  );
  return PALETTE[Math.max(0, series.indexOf(layer)) % PALETTE.length];
}
