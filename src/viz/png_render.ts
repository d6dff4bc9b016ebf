/**
 * Draws a figure description as a PNG: rows of panels laid out by the canvas (a new group at each heading
 * and where rows change from single panels to spanning ones), images and heatmaps as rasters (heatmaps over
 * an image blended on its grey copy), points, boxes and chart marks as SVG.
 */
import { type Panel as CanvasPanel, renderCanvas, type Section, svgText } from "./canvas.ts";
import { chartCell } from "./charts.ts";
import { VizError } from "./figure.ts";
import {
  displaySize,
  type FigureSpec,
  type HeatmapLayer,
  type ImageLayer,
  layerRaster,
  type Panel,
  panelFrame,
  seriesColor,
} from "./panels.ts";
import { colorize, overlayMap, resizeRgb, type RgbImage } from "./raster.ts";

/** Where a panel's content (an image's pixels, a chart's plot area) lies in the PNG, and what it shows. */
export interface PanelBox {
  x: number;
  y: number;
  width: number;
  height: number;
  /** A chart's x and y intervals. */
  xRange?: [number, number];
  yRange?: [number, number];
}

/** The raster of an image or matrix panel: its image with the heatmaps over it, or the heatmaps alone. */
function panelImage(p: Panel): RgbImage {
  const [w, h] = displaySize(p);
  const base = p.layers.find((l): l is ImageLayer => l.kind === "image");
  let img: RgbImage | null = base ? layerRaster(p, base) : null;
  for (const l of p.layers) {
    if (l.kind !== "heatmap") continue;
    const heat = l as HeatmapLayer;
    if (img) {
      img = overlayMap(img, heat.values, heat.width, heat.height, {
        cmap: heat.scale.cmap,
        range: heat.scale.range,
        alpha: heat.opacity ?? 0.6,
      });
    } else {
      // Alone: each value one crisp block of its colour.
      img = resizeRgb(
        colorize(heat.values, heat.width, heat.height, heat.scale.cmap, heat.scale.range),
        w,
        h,
        "nearest",
      );
    }
  }
  if (!img) throw new VizError(`panel "${p.title ?? ""}" has nothing to draw`);
  return img;
}

/** Points and boxes of an image panel as SVG, scaled from the panel's frame to its raster. */
function marksSvg(p: Panel, img: RgbImage): string {
  const [fw, fh] = panelFrame(p);
  const sx = img.width / fw, sy = img.height / fh;
  const f = (v: number) => v.toFixed(1);
  let svg = "";
  for (const l of p.layers) {
    if (l.kind === "points") {
      const color = seriesColor(p, l);
      for (let i = 0; i < l.x.length; i++) {
        svg += `<circle cx="${f(l.x[i] * sx)}" cy="${f(l.y[i] * sy)}" r="${
          (l.size ?? 3) / 2.3
        }" fill="${color}"/>`;
      }
    } else if (l.kind === "box") {
      const [x0, y0, x1, y1] = [l.box[0] * sx, l.box[1] * sy, l.box[2] * sx, l.box[3] * sy];
      svg += `<rect x="${f(x0)}" y="${f(y0)}" width="${f(x1 - x0)}" height="${f(y1 - y0)}" fill="none" ` +
        `stroke="${l.color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="4,3"' : ""}/>`;
      // Inside the top left corner, as Plotly's box labels, with a white halo over busy pixels.
      svg += `<text x="${f(x0 + 3)}" y="${f(y0 + 11)}" font-family="sans-serif" font-size="10" ` +
        `fill="${l.color}" stroke="#ffffff" stroke-width="2.5" paint-order="stroke">` +
        `${svgText(l.name)}</text>`;
    }
  }
  return svg;
}

/** A matrix with its axes' first and last category names, as Plotly labels its axes. */
function matrixCell(p: Panel, image: RgbImage): CanvasPanel {
  const heat = p.layers.find((l): l is HeatmapLayer => l.kind === "heatmap");
  const xs = heat?.xLabels ?? [], ys = heat?.yLabels ?? [];
  const left = ys.length ? Math.ceil(Math.max(...[ys[0], ys.at(-1)!].map((l) => l.length)) * 5.5) + 4 : 0;
  const bottom = xs.length ? 12 : 0;
  const t = (x: number, y: number, s: string, anchor: string) =>
    `<text x="${x}" y="${y}" font-family="sans-serif" font-size="9" text-anchor="${anchor}" fill="#444">` +
    `${svgText(s)}</text>`;
  let svg = "";
  if (ys.length) svg += t(left - 2, 8, ys[0], "end") + t(left - 2, image.height, ys.at(-1)!, "end");
  if (xs.length) {
    svg += t(left, image.height + 10, xs[0], "start") +
      t(left + image.width, image.height + 10, xs.at(-1)!, "end");
  }
  return {
    image,
    imageAt: { x: left, y: 0 },
    width: left + image.width,
    height: image.height + bottom,
    svg,
    label: p.title,
  };
}

/** The figure description as a PNG, with where each panel went (in reading order, holes skipped). */
export async function drawPng(fig: FigureSpec): Promise<{ png: Uint8Array; boxes: PanelBox[] }> {
  const sections: Section[] = [];
  const order: { cell: CanvasPanel; at: { x: number; y: number }; box: Omit<PanelBox, "x" | "y"> }[] = [];
  let wide: boolean | null = null;
  for (const row of fig.rows) {
    const rowWide = row.panels.some((p) => (p?.span ?? 1) > 1);
    if (!sections.length || row.heading || rowWide !== wide) {
      sections.push({ title: row.heading, rows: [], rowLabels: [] });
    }
    wide = rowWide;
    const s = sections[sections.length - 1];
    s.rowLabels!.push(row.label ?? "");
    s.rows.push(row.panels.map((p) => {
      if (!p) return null;
      if (p.kind === "chart") {
        const [w, h] = displaySize(p);
        const { cell, area } = chartCell(p, w, h);
        cell.label = p.title;
        const { x, y, ...box } = area;
        order.push({ cell, at: { x, y }, box });
        return cell;
      }
      const image = panelImage(p);
      const cell: CanvasPanel = p.kind === "matrix"
        ? matrixCell(p, image)
        : { image, svg: marksSvg(p, image), label: p.title };
      order.push({
        cell,
        at: cell.imageAt ?? { x: 0, y: 0 },
        box: { width: image.width, height: image.height },
      });
      return cell;
    }));
  }
  for (const s of sections) if (!s.rowLabels!.some(Boolean)) delete s.rowLabels;
  const { png, placed } = await renderCanvas({ title: fig.title, subtitle: fig.subtitle, sections });
  const where = new Map(placed.map((pl) => [pl.panel, pl]));
  const boxes = order.map(({ cell, at, box }) => {
    const pl = where.get(cell)!;
    return { x: pl.x + at.x, y: pl.y + at.y, ...box };
  });
  return { png, boxes };
}
