/**
 * Plotly figure building blocks: a grid of subplots (image cells with square, hidden axes; chart cells with
 * ordinary axes), image traces from data URIs, heatmaps with compact numbers.
 */
import { plotlyColorscale, VIRIDIS } from "./colormap.ts";
import type { Colormap } from "./colormap.ts";
import type { PlotlyTrace } from "./figure.ts";

/** One subplot of a grid. */
export interface CellSpec {
  row: number;
  col: number;
  /** image: hidden square axes, y down; matrix: labelled square axes, y down; chart: ordinary axes. */
  kind: "image" | "matrix" | "chart";
  title?: string;
  /** Columns the cell spans (a wide chart under image rows). */
  colSpan?: number;
  /** Axis titles of a chart cell. */
  xTitle?: string;
  yTitle?: string;
}

/** Axis references of a cell, for a trace's `xaxis`/`yaxis`. */
export interface CellAxes {
  xaxis: string;
  yaxis: string;
}

export interface GridOptions {
  title: string;
  /** Pixel size of the figure. */
  width: number;
  height: number;
  /** Relative row heights (default equal). */
  rowHeights?: number[];
  rowLabels?: string[];
  /** A heading over a row starts a group of rows (drawn above its panels' titles). */
  rowHeadings?: (string | undefined)[];
  /** Extra layout fields (merged last). */
  layout?: Record<string, unknown>;
}

/** Pixels a row heading takes above the row. */
export const HEADING_H = 22;

/** Plotly numbers: 4 significant digits keep the JSON small and the hover values honest enough. */
export function round4(v: number): number | null {
  return Number.isFinite(v) ? Number(v.toPrecision(4)) : null;
}

/** A row-major map as Plotly's `z` (rows of numbers). */
export function toZ(values: ArrayLike<number>, width: number, height: number): (number | null)[][] {
  return Array.from(
    { length: height },
    (_, y) => Array.from({ length: width }, (_, x) => round4(values[y * width + x])),
  );
}

/** Lays out `cells` on an nRows x nCols grid; returns the layout and each cell's axes (same order). */
export function plotlyGrid(
  nRows: number,
  nCols: number,
  cells: CellSpec[],
  o: GridOptions,
): { layout: Record<string, unknown>; axes: CellAxes[] } {
  const longest = Math.max(0, ...(o.rowLabels ?? []).map((l) => l.length));
  const left = longest ? Math.min(340, 20 + longest * 6.5) : cells.some((c) => c.kind !== "image") ? 70 : 30;
  const legend = Boolean(o.layout?.showlegend);
  // An x axis title sits under the tick labels: the legend and the next row go below it.
  const xTitled = cells.some((c) => c.kind === "chart" && c.xTitle);
  const top = 60, bottom = (legend ? 80 : 40) + (xTitled ? 16 : 0), right = 20;
  // Gaps in pixels, as fractions of the plot area.
  const hgap = 12 / Math.max(1, o.width - left - right);
  const vgap = (xTitled ? 56 : 40) / Math.max(1, o.height - top - bottom);
  const heights = o.rowHeights ?? Array(nRows).fill(1);
  const sum = heights.reduce((a, b) => a + b, 0);
  // Domains in paper coordinates (the plot area), rows from the top.
  const rowTop: number[] = [];
  let acc = 0;
  for (const h of heights) {
    rowTop.push(1 - acc);
    acc += h / sum;
  }
  const layout: Record<string, unknown> = {
    title: { text: o.title, x: 0.01, xanchor: "left" },
    width: o.width,
    height: o.height,
    margin: { l: left, r: right, t: top, b: bottom },
    showlegend: false,
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
  };
  const annotations: Record<string, unknown>[] = [];
  const axes = cells.map((cell, k) => {
    const n = k + 1;
    const id = n === 1 ? "" : String(n);
    const span = cell.colSpan ?? 1;
    // Columns of equal width with equal gaps between them.
    const cw = (1 - (nCols - 1) * hgap) / nCols;
    const x0 = cell.col * (cw + hgap);
    const x1 = x0 + span * cw + (span - 1) * hgap;
    const above = (cell.title ? 14 : 0) + (o.rowHeadings?.[cell.row] ? HEADING_H : 0);
    const y1 = rowTop[cell.row] - (cell.row ? vgap / 2 : 0) - above / Math.max(1, o.height - top - bottom);
    const y0 = rowTop[cell.row] - heights[cell.row] / sum + (cell.row < nRows - 1 ? vgap / 2 : 0);
    const xd = [round4(x0), round4(Math.max(x1, x0 + 0.01))];
    const yd = [round4(Math.max(0, y0)), round4(Math.max(y1, y0 + 0.01))];
    if (cell.kind === "image") {
      layout[`xaxis${id}`] = { domain: xd, anchor: `y${id}`, visible: false, constrain: "domain" };
      layout[`yaxis${id}`] = {
        domain: yd,
        anchor: `x${id}`,
        visible: false,
        autorange: "reversed",
        scaleanchor: `x${id}`,
        constrain: "domain",
      };
    } else if (cell.kind === "matrix") {
      const tick = { tickfont: { size: 8 }, nticks: 6 };
      layout[`xaxis${id}`] = { domain: xd, anchor: `y${id}`, constrain: "domain", ...tick };
      layout[`yaxis${id}`] = {
        domain: yd,
        anchor: `x${id}`,
        autorange: "reversed",
        scaleanchor: `x${id}`,
        constrain: "domain",
        ...tick,
      };
    } else {
      layout[`xaxis${id}`] = {
        domain: xd,
        anchor: `y${id}`,
        title: { text: cell.xTitle ?? "" },
        automargin: false,
      };
      layout[`yaxis${id}`] = {
        domain: yd,
        anchor: `x${id}`,
        title: { text: cell.yTitle ?? "" },
        automargin: false,
      };
    }
    if (cell.title) {
      annotations.push({
        text: cell.title,
        xref: "paper",
        yref: "paper",
        x: (xd[0]! + xd[1]!) / 2,
        y: yd[1]!,
        xanchor: "center",
        yanchor: "bottom",
        showarrow: false,
        font: { size: 11 },
      });
    }
    return { xaxis: `x${id}`, yaxis: `y${id}` };
  });
  o.rowLabels?.forEach((label, r) => {
    if (!label || r >= nRows) return;
    annotations.push({
      text: label,
      xref: "paper",
      yref: "paper",
      x: -0.01,
      y: rowTop[r] - heights[r] / sum / 2,
      xanchor: "right",
      yanchor: "middle",
      showarrow: false,
      font: { size: 11 },
    });
  });
  o.rowHeadings?.forEach((heading, r) => {
    if (!heading || r >= nRows) return;
    annotations.push({
      text: `<b>${heading}</b>`,
      xref: "paper",
      yref: "paper",
      x: -left / Math.max(1, o.width - left - right) + 0.005,
      y: rowTop[r] - (r ? vgap / 2 : 0),
      xanchor: "left",
      yanchor: "top",
      showarrow: false,
      font: { size: 12 },
    });
  });
  layout.annotations = annotations;
  if (legend) {
    // Under the last row's tick labels, in the bottom margin.
    layout.legend = {
      orientation: "h",
      x: 0,
      xanchor: "left",
      y: -(xTitled ? 44 : 28) / Math.max(1, o.height - top - bottom),
      yanchor: "top",
    };
  }
  return { layout: { ...layout, ...o.layout, ...(legend ? { legend: layout.legend } : {}) }, axes };
}

/**
 * An image trace from a data URI (pixels as drawn, no hover values); `dx`, `dy` scale its pixels to the cell's
 * coordinates (a thumbnail over a larger frame), the left/top edge at 0.
 */
export function imageTrace(source: string, ax: CellAxes, name: string, dx = 1, dy = 1): PlotlyTrace {
  const place = { x0: round4(dx / 2), dx: round4(dx), y0: round4(dy / 2), dy: round4(dy) };
  return { type: "image", source, name, hoverinfo: "skip", ...place, ...ax };
}

export interface HeatOptions {
  name: string;
  /** Placement in the cell's pixel coordinates (over an image): centre of the first cell and cell size. */
  x0?: number;
  dx?: number;
  y0?: number;
  dy?: number;
  x?: (number | string)[];
  y?: (number | string)[];
  zmin?: number;
  zmax?: number;
  cmap?: Colormap;
  opacity?: number;
  showscale?: boolean;
}

/** A heatmap trace of a row-major map. */
export function heatTrace(
  values: ArrayLike<number>,
  width: number,
  height: number,
  ax: CellAxes,
  o: HeatOptions,
): PlotlyTrace {
  const t: PlotlyTrace = {
    type: "heatmap",
    name: o.name,
    z: toZ(values, width, height),
    colorscale: plotlyColorscale(o.cmap ?? VIRIDIS),
    showscale: o.showscale ?? false,
    hovertemplate: `${o.name}<br>x %{x}, y %{y}: %{z}<extra></extra>`,
    ...ax,
  };
  for (const k of ["x0", "dx", "y0", "dy", "x", "y", "zmin", "zmax", "opacity"] as const) {
    if (o[k] !== undefined) t[k] = o[k];
  }
  return t;
}
