/**
 * Line charts as SVG for the PNG renderings (waveforms, per-frame and per-step measures), and the matching
 * Plotly trace colours.
 */
import { type Panel, svgText } from "./canvas.ts";
import { type Colormap, VIRIDIS } from "./colormap.ts";
import { colorize, resizeRgb } from "./raster.ts";

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

export interface ChartSeries {
  name: string;
  y: ArrayLike<number>;
  /** x positions (default 0, 1, 2, ...). */
  x?: ArrayLike<number>;
  color?: string;
  /** A lower curve: the band between it and `y` is filled (an envelope). */
  y0?: ArrayLike<number>;
}

export interface ChartSpec {
  width: number;
  height: number;
  series: ChartSeries[];
  xLabel?: string;
  xRange?: readonly [number, number];
  yRange?: readonly [number, number];
  /** Vertical lines (clip boundaries). */
  vlines?: { x: number; color?: string }[];
  /** Shaded x intervals (padding). */
  shades?: { x0: number; x1: number; color?: string }[];
}

/** Inner margins of a chart panel; heat panels use the same so that their x axes line up. */
export const CHART_MARGIN = { left: 44, right: 8, top: 6 } as const;

function range(vals: ArrayLike<number>[], fallback: [number, number]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of vals) {
    for (let i = 0; i < v.length; i++) {
      if (Number.isFinite(v[i])) {
        lo = Math.min(lo, v[i]);
        hi = Math.max(hi, v[i]);
      }
    }
  }
  if (!Number.isFinite(lo)) return fallback;
  if (hi === lo) return [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

/** A line chart as a panel (axes box, min/max ticks, legend). */
export function lineChart(spec: ChartSpec): Panel {
  const { width: W, height: H } = spec;
  const { left: L, right: R, top: T } = CHART_MARGIN;
  const B = spec.xLabel ? 28 : 16;
  const pw = W - L - R, ph = H - T - B;
  const xs = spec.series.map((s) => s.x ?? Float32Array.from({ length: s.y.length }, (_, i) => i));
  const [x0, x1] = spec.xRange ?? range(xs, [0, 1]);
  const [y0, y1] = spec.yRange ?? range(spec.series.flatMap((s) => (s.y0 ? [s.y, s.y0] : [s.y])), [0, 1]);
  const px = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * pw;
  const py = (y: number) => T + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  let svg = `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`;
  for (const s of spec.shades ?? []) {
    svg +=
      `<rect x="${px(s.x0).toFixed(1)}" y="${T}" width="${Math.max(0, px(s.x1) - px(s.x0)).toFixed(1)}" ` +
      `height="${ph}" fill="${s.color ?? "#eeeeee"}"/>`;
  }
  for (const v of spec.vlines ?? []) {
    svg += `<line x1="${px(v.x).toFixed(1)}" x2="${px(v.x).toFixed(1)}" y1="${T}" y2="${T + ph}" ` +
      `stroke="${v.color ?? "#bbbbbb"}" stroke-width="1" stroke-dasharray="3,2"/>`;
  }
  let legendX = L + 6;
  spec.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const x = xs[k];
    const pts: string[] = [];
    for (let i = 0; i < s.y.length; i++) {
      if (Number.isFinite(s.y[i])) pts.push(`${px(x[i]).toFixed(1)},${py(s.y[i]).toFixed(1)}`);
    }
    if (s.y0) {
      const lower: string[] = [];
      for (let i = s.y0.length - 1; i >= 0; i--) {
        lower.push(`${px(x[i]).toFixed(1)},${py(s.y0[i]).toFixed(1)}`);
      }
      svg += `<polygon points="${
        [...pts, ...lower].join(" ")
      }" fill="${color}" fill-opacity="0.55" stroke="none"/>`;
    } else {
      svg += `<polyline points="${pts.join(" ")}" fill="none" stroke="${color}" stroke-width="1.3"/>`;
    }
    svg += `<text x="${legendX}" y="${T + 11}" font-family="sans-serif" font-size="10" fill="${color}">` +
      `${svgText(s.name)}</text>`;
    legendX += s.name.length * 6 + 14;
  });
  svg += `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#888888"/>`;
  const tick = (x: number, y: number, s: string, anchor: string) =>
    `<text x="${x}" y="${y}" font-family="sans-serif" font-size="9" text-anchor="${anchor}" fill="#444">${
      svgText(s)
    }</text>`;
  svg += tick(L - 3, T + 8, fmt(y1), "end") + tick(L - 3, T + ph, fmt(y0), "end");
  svg += tick(L, T + ph + 11, fmt(x0), "start") + tick(L + pw, T + ph + 11, fmt(x1), "end");
  if (spec.xLabel) svg += tick(L + pw / 2, H - 4, spec.xLabel, "middle");
  return { width: W, height: H, svg };
}

export interface HeatPanelSpec {
  width: number;
  height: number;
  cmap?: Colormap;
  range?: readonly [number, number];
  /** Labels of the x axis ends and of the y axis ends (top first). */
  xEnds?: readonly [string, string];
  yEnds?: readonly [string, string];
  xLabel?: string;
  /** Data range of the x axis, for `vlines` and `shades` (default 0..cols). */
  xRange?: readonly [number, number];
  vlines?: { x: number; color?: string }[];
  /** Intervals veiled in white (padding). */
  shades?: { x0: number; x1: number }[];
}

/** A (rows x cols) map as a chart-aligned panel: stretched over the plot area, nearest-neighbour. */
export function heatPanel(values: ArrayLike<number>, cols: number, rows: number, spec: HeatPanelSpec): Panel {
  const { left: L, right: R, top: T } = CHART_MARGIN;
  const B = spec.xLabel ? 28 : 16;
  const pw = spec.width - L - R, ph = spec.height - T - B;
  const img = resizeRgb(colorize(values, cols, rows, spec.cmap ?? VIRIDIS, spec.range), pw, ph, "nearest");
  const tick = (x: number, y: number, s: string, anchor: string) =>
    `<text x="${x}" y="${y}" font-family="sans-serif" font-size="9" text-anchor="${anchor}" fill="#444">${
      svgText(s)
    }</text>`;
  const [x0, x1] = spec.xRange ?? [0, cols];
  const px = (x: number) => (L + ((x - x0) / (x1 - x0 || 1)) * pw).toFixed(1);
  let svg = "";
  for (const s of spec.shades ?? []) {
    svg += `<rect x="${px(s.x0)}" y="${T}" width="${(((s.x1 - s.x0) / (x1 - x0 || 1)) * pw).toFixed(1)}" ` +
      `height="${ph}" fill="#ffffff" fill-opacity="0.55"/>`;
  }
  for (const v of spec.vlines ?? []) {
    svg +=
      `<line x1="${px(v.x)}" x2="${px(v.x)}" y1="${T}" y2="${T + ph}" stroke="${v.color ?? "#333333"}" ` +
      `stroke-width="1" stroke-dasharray="3,2"/>`;
  }
  svg += `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#888888"/>`;
  if (spec.yEnds) svg += tick(L - 3, T + 8, spec.yEnds[0], "end") + tick(L - 3, T + ph, spec.yEnds[1], "end");
  if (spec.xEnds) {
    svg += tick(L, T + ph + 11, spec.xEnds[0], "start") + tick(L + pw, T + ph + 11, spec.xEnds[1], "end");
  }
  if (spec.xLabel) svg += tick(L + pw / 2, spec.height - 4, spec.xLabel, "middle");
  return { image: img, imageAt: { x: L, y: T }, width: spec.width, height: spec.height, svg };
}
