/**
 * Chart panels for the PNG rendering: an axes box with the range ends as ticks, a heatmap stretched over the
 * plot area (raster), curves, envelopes, stacked bars, points, vertical lines and spans (SVG), a legend.
 */
import { type Panel as CanvasPanel, svgText } from "./canvas.ts";
import { VizError } from "./figure.ts";
import { colorize, resizeRgb } from "./raster.ts";
import { chartRanges, type HeatmapLayer, type Panel, seriesColor } from "./panels.ts";

/** Inner margins of a chart panel, so that the x axes of stacked charts line up. */
const CHART_MARGIN = { left: 44, right: 8, top: 6 } as const;

/** The plot area of a chart cell, in cell pixels, and the intervals it shows. */
export interface PlotArea {
  x: number;
  y: number;
  width: number;
  height: number;
  xRange: [number, number];
  yRange: [number, number];
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

function tick(x: number, y: number, s: string, anchor: string, extra = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="sans-serif" font-size="9" ` +
    `text-anchor="${anchor}" fill="#444"${extra}>${svgText(s)}</text>`;
}

/** A chart panel as a canvas cell of `width x height` pixels, with where its plot area lies. */
export function chartCell(p: Panel, width: number, height: number): { cell: CanvasPanel; area: PlotArea } {
  const { left: L, right: R, top: T } = CHART_MARGIN;
  const B = p.x?.title ? 28 : 16;
  const pw = width - L - R, ph = height - T - B;
  const { x: [x0, x1], y: [y0, y1] } = chartRanges(p);
  const px = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * pw;
  const py = (y: number) => T + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const f = (v: number) => v.toFixed(1);
  const heats = p.layers.filter((l): l is HeatmapLayer => l.kind === "heatmap");
  if (heats.length > 1) throw new VizError(`chart "${p.title ?? ""}": one heatmap per chart panel`);
  const cell: CanvasPanel = { width, height };
  let svg = heats.length ? "" : `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`;
  const heat = heats[0];
  if (heat) {
    // Rows top-down, columns over their x span, each value one colour of the scale.
    const [a, b] = heat.xSpan ?? [0, heat.width];
    const hx0 = Math.max(L, Math.round(px(a))), hx1 = Math.min(L + pw, Math.round(px(b)));
    const img = colorize(heat.values, heat.width, heat.height, heat.scale.cmap, heat.scale.range);
    cell.image = resizeRgb(img, Math.max(1, hx1 - hx0), ph, "nearest");
    cell.imageAt = { x: hx0, y: T };
  }
  let legendX = L + 6, legend = "";
  const stacks = new Map<number, [number, number]>();
  const barXs = p.layers.flatMap((l) => (l.kind === "bars" ? Array.from(l.x) : [])).sort((a, b) => a - b);
  let step = Infinity;
  for (let i = 1; i < barXs.length; i++) {
    if (barXs[i] > barXs[i - 1]) step = Math.min(step, barXs[i] - barXs[i - 1]);
  }
  const barW = Math.max(1, 0.8 * (Number.isFinite(step) ? step : 1) * pw / (x1 - x0 || 1));
  for (const l of p.layers) {
    const color = seriesColor(p, l);
    if (l.kind === "span") {
      svg +=
        `<rect x="${f(px(l.x0))}" y="${T}" width="${f(Math.max(0, px(l.x1) - px(l.x0)))}" height="${ph}" ` +
        `fill="${l.color ?? "#cccccc"}" fill-opacity="0.35"/>`;
    } else if (l.kind === "vlines") {
      for (const x of l.x) {
        svg +=
          `<line x1="${f(px(x))}" x2="${f(px(x))}" y1="${T}" y2="${T + ph}" stroke="${
            l.color ?? "#999999"
          }" ` +
          `stroke-width="1" stroke-dasharray="3,2"/>`;
      }
    } else if (l.kind === "lines") {
      const pts: string[] = [];
      for (let i = 0; i < l.y.length; i++) {
        if (Number.isFinite(l.y[i])) pts.push(`${f(px(l.x[i]))},${f(py(l.y[i]))}`);
      }
      if (l.lower) {
        const lower: string[] = [];
        for (let i = l.lower.length - 1; i >= 0; i--) lower.push(`${f(px(l.x[i]))},${f(py(l.lower[i]))}`);
        svg += `<polygon points="${
          [...pts, ...lower].join(" ")
        }" fill="${color}" fill-opacity="0.55" stroke="none"/>`;
      } else {
        svg += `<polyline points="${pts.join(" ")}" fill="none" stroke="${color}" stroke-width="1.3"/>`;
      }
      if (l.markers) {
        for (const pt of pts) {
          const [cx, cy] = pt.split(",");
          svg += `<circle cx="${cx}" cy="${cy}" r="2" fill="${color}"/>`;
        }
      }
    } else if (l.kind === "bars") {
      for (let i = 0; i < l.x.length; i++) {
        const s = stacks.get(l.x[i]) ?? [0, 0];
        const v = l.y[i];
        if (!Number.isFinite(v)) continue;
        const from = v >= 0 ? s[1] : s[0], to = from + v;
        if (v >= 0) s[1] = to;
        else s[0] = to;
        stacks.set(l.x[i], s);
        const top = Math.min(py(from), py(to));
        svg += `<rect x="${f(px(l.x[i]) - barW / 2)}" y="${f(top)}" width="${f(barW)}" ` +
          `height="${f(Math.abs(py(to) - py(from)))}" fill="${color}"/>`;
      }
    } else if (l.kind === "points") {
      for (let i = 0; i < l.x.length; i++) {
        svg += `<circle cx="${f(px(l.x[i]))}" cy="${f(py(l.y[i]))}" r="${
          (l.size ?? 3) / 2
        }" fill="${color}"/>`;
      }
    }
    if (l.kind === "lines" || l.kind === "bars" || l.kind === "points") {
      legend +=
        `<text x="${legendX}" y="${T + 11}" font-family="sans-serif" font-size="10" fill="${color}" ` +
        `stroke="#ffffff" stroke-width="2.5" paint-order="stroke">${svgText(l.name)}</text>`;
      legendX += l.name.length * 6 + 14;
    }
  }
  // Over every mark, with a white halo.
  svg += legend;
  svg += `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#888888"/>`;
  if (heat?.yLabels?.length) {
    svg += tick(L - 3, T + 8, heat.yLabels[0], "end") + tick(L - 3, T + ph, heat.yLabels.at(-1)!, "end");
  } else if (!heat) {
    svg += tick(L - 3, T + 8, fmt(y1), "end") + tick(L - 3, T + ph, fmt(y0), "end");
  }
  svg += tick(L, T + ph + 11, fmt(x0), "start") + tick(L + pw, T + ph + 11, fmt(x1), "end");
  if (p.x?.title) svg += tick(L + pw / 2, height - 4, p.x.title, "middle");
  if (p.y?.title) {
    svg += tick(9, T + ph / 2, p.y.title, "middle", ` transform="rotate(-90 9 ${f(T + ph / 2)})"`);
  }
  cell.svg = svg;
  return { cell, area: { x: L, y: T, width: pw, height: ph, xRange: [x0, x1], yRange: [y0, y1] } };
}
