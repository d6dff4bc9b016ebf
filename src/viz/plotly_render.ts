/**
 * Draws a figure description as a Plotly figure (plain JSON): one subplot per panel on a grid, one trace per
 * layer (boxes, vertical lines and spans as layout shapes), images as the same rasters the PNG shows.
 */
import type { PlotlyFigure, PlotlyTrace } from "./figure.ts";
import {
  type Axis,
  chartRanges,
  displaySize,
  type FigureSpec,
  layerRaster,
  type Panel,
  panelFrame,
  seriesColor,
} from "./panels.ts";
import {
  type CellAxes,
  type CellSpec,
  HEADING_H,
  heatTrace,
  imageTrace,
  plotlyGrid,
  round4,
} from "./plotly.ts";
import { imageDataUri, type RgbImage } from "./raster.ts";

const GAP_X = 12, GAP_Y = 56, TITLE_H = 14;

const nums = (v: ArrayLike<number>) => Array.from(v, (x) => round4(x));

/** Where each panel of the figure sits on the Plotly grid, in reading order. */
function plotlyCells(fig: FigureSpec): { cells: CellSpec[]; panels: Panel[]; nCols: number } {
  const cells: CellSpec[] = [], panels: Panel[] = [];
  let nCols = 1;
  fig.rows.forEach((row, r) => {
    let c = 0;
    for (const p of row.panels) {
      if (p) {
        cells.push({
          row: r,
          col: c,
          kind: p.kind,
          title: p.title,
          colSpan: p.span,
          xTitle: p.x?.title,
          yTitle: p.y?.title,
        });
        panels.push(p);
      }
      c += p?.span ?? 1;
    }
    nCols = Math.max(nCols, c);
  });
  return { cells, panels, nCols };
}

function axisKey(ref: string): string {
  return ref.startsWith("x") ? `xaxis${ref.slice(1)}` : `yaxis${ref.slice(1)}`;
}

/** The figure description as a Plotly figure. */
export async function drawPlotly(fig: FigureSpec): Promise<PlotlyFigure> {
  const { cells, panels, nCols } = plotlyCells(fig);
  // Pixel sizes follow the panels' display sizes: a column as wide as its widest panel, a row as tall as
  // its tallest.
  const colW = Math.max(60, ...panels.map((p) => displaySize(p)[0] / (p.span ?? 1)));
  const rowPx = fig.rows.map((row) =>
    Math.max(40, ...row.panels.map((p) => (p ? displaySize(p)[1] + (p.title ? TITLE_H : 0) : 0))) + GAP_Y +
    (row.heading ? HEADING_H : 0)
  );
  const labels = fig.rows.map((r) => r.label ?? "");
  const longest = Math.max(0, ...labels.map((l) => l.length));
  const left = longest ? Math.min(340, 20 + longest * 6.5) : 70;
  const legend = panels.some((p) =>
    p.layers.filter((l) => l.kind === "lines" || l.kind === "bars").length > 1
  );
  const grid = plotlyGrid(fig.rows.length, nCols, cells, {
    title: fig.title,
    width: Math.round(left + nCols * (colW + GAP_X) + 20),
    height: Math.round(
      60 + rowPx.reduce((a, b) => a + b, 0) + (legend ? 80 : 40) + (panels.some((p) => p.x?.title) ? 16 : 0),
    ),
    rowHeights: rowPx,
    rowLabels: labels.some(Boolean) ? labels : undefined,
    rowHeadings: fig.rows.map((r) => r.heading),
    layout: {
      showlegend: legend,
      ...(panels.some((p) => p.layers.some((l) => l.kind === "bars")) ? { barmode: "stack" } : {}),
    },
  });
  const layout = grid.layout;
  if (fig.subtitle) {
    layout.title = { ...(layout.title as object), subtitle: { text: fig.subtitle, font: { size: 11 } } };
  }
  const data: PlotlyTrace[] = [];
  const shapes: Record<string, unknown>[] = [];
  const uris = new Map<RgbImage, string>();
  const linked = new Map<string, string>();
  for (const [k, p] of panels.entries()) {
    const ax = grid.axes[k];
    await drawPanel(p, ax, data, shapes, uris);
    if (p.kind === "chart") setChartAxes(p, ax, layout, linked);
    if (p.kind === "image") {
      // The frame exactly, y down: Plotly's autorange pads some traces and not others.
      const [fw, fh] = panelFrame(p);
      for (const [ref, range] of [[ax.xaxis, [0, fw]], [ax.yaxis, [fh, 0]]] as const) {
        layout[axisKey(ref)] = { ...(layout[axisKey(ref)] as object), range, autorange: false };
      }
    }
  }
  layout.shapes = shapes;
  return { data, layout };
}

function setChartAxes(p: Panel, ax: CellAxes, layout: Record<string, unknown>, linked: Map<string, string>) {
  const r = chartRanges(p);
  const heat = p.layers.some((l) => l.kind === "heatmap");
  const set = (ref: string, extra: Record<string, unknown>) => {
    layout[axisKey(ref)] = { ...(layout[axisKey(ref)] as object), ...extra };
  };
  const link = (a: Axis | undefined) => {
    if (!a?.link) return {};
    const first = linked.get(a.link);
    if (!first) linked.set(a.link, ax.xaxis);
    return first ? { matches: first } : {};
  };
  set(ax.xaxis, { range: r.x.map(round4), ...link(p.x) });
  // Heatmap rows are categories, drawn top-down as in the PNG.
  set(ax.yaxis, heat ? { autorange: "reversed" } : { range: r.y.map(round4) });
}

async function drawPanel(
  p: Panel,
  ax: CellAxes,
  data: PlotlyTrace[],
  shapes: Record<string, unknown>[],
  uris: Map<RgbImage, string>,
) {
  const framed = p.kind !== "chart";
  const [fw, fh] = framed ? panelFrame(p) : [0, 0];
  const overImage = p.layers.some((l) => l.kind === "image");
  const yDomain = `${ax.yaxis} domain`;
  for (const l of p.layers) {
    switch (l.kind) {
      case "image": {
        const raster = layerRaster(p, l);
        let uri = uris.get(raster);
        if (!uri) {
          uri = await imageDataUri(raster, l.photo ? "jpeg" : "png");
          uris.set(raster, uri);
        }
        data.push(imageTrace(uri, ax, l.name, fw / raster.width, fh / raster.height));
        break;
      }
      case "heatmap": {
        const place: Record<string, number> = {};
        if (framed && !l.xLabels) {
          const dx = fw / l.width, dy = fh / l.height;
          Object.assign(place, {
            x0: round4(dx / 2)!,
            dx: round4(dx)!,
            y0: round4(dy / 2)!,
            dy: round4(dy)!,
          });
        } else if (!framed) {
          const [a, b] = l.xSpan ?? [0, l.width];
          const dx = (b - a) / l.width;
          Object.assign(place, { x0: round4(a + dx / 2)!, dx: round4(dx)! });
        }
        data.push(heatTrace(l.values, l.width, l.height, ax, {
          name: l.name,
          ...place,
          x: l.xLabels,
          y: l.yLabels,
          zmin: l.scale.range[0],
          zmax: l.scale.range[1],
          cmap: l.scale.cmap,
          opacity: l.opacity ?? (overImage ? 0.6 : undefined),
        }));
        break;
      }
      case "lines": {
        const color = seriesColor(p, l);
        const mode = l.markers ? "lines+markers" : "lines";
        if (l.lower) {
          const line = { width: 0.5, color };
          data.push({
            type: "scatter",
            mode,
            name: `${l.name} min`,
            x: nums(l.x),
            y: nums(l.lower),
            line,
            ...ax,
          });
          data.push({
            type: "scatter",
            mode,
            name: `${l.name} max`,
            x: nums(l.x),
            y: nums(l.y),
            fill: "tonexty",
            line,
            ...ax,
          });
        } else {
          data.push({
            type: "scatter",
            mode,
            name: l.name,
            x: nums(l.x),
            y: nums(l.y),
            line: { color },
            ...ax,
          });
        }
        break;
      }
      case "bars":
        data.push({
          type: "bar",
          name: l.name,
          x: nums(l.x),
          y: nums(l.y),
          marker: { color: seriesColor(p, l) },
          ...ax,
        });
        break;
      case "points":
        data.push({
          type: "scatter",
          mode: "markers",
          name: l.name,
          x: nums(l.x),
          y: nums(l.y),
          marker: { size: l.size ?? 3, color: seriesColor(p, l) },
          hovertemplate: `${l.name} %{pointNumber}: (%{x}, %{y})<extra></extra>`,
          ...ax,
        });
        break;
      case "box":
        shapes.push({
          type: "rect",
          xref: ax.xaxis,
          yref: ax.yaxis,
          x0: round4(l.box[0]),
          y0: round4(l.box[1]),
          x1: round4(l.box[2]),
          y1: round4(l.box[3]),
          line: { color: l.color, width: 2, dash: l.dashed ? "dot" : "solid" },
          label: { text: l.name, font: { size: 10, color: l.color }, textposition: "top left" },
        });
        break;
      case "vlines":
        for (const x of l.x) {
          shapes.push({
            type: "line",
            xref: ax.xaxis,
            yref: yDomain,
            x0: x,
            x1: x,
            y0: 0,
            y1: 1,
            line: { color: l.color ?? "#999999", width: 1, dash: "dot" },
          });
        }
        break;
      case "span":
        shapes.push({
          type: "rect",
          xref: ax.xaxis,
          yref: yDomain,
          x0: l.x0,
          x1: l.x1,
          y0: 0,
          y1: 1,
          fillcolor: l.color ?? "#cccccc",
          opacity: 0.35,
          line: { width: 0 },
        });
        break;
    }
  }
}
