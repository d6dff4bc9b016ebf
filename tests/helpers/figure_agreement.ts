/**
 * Checks that the two renderings of a figure description draw the same thing, reading each from its own
 * output: the Plotly figure's traces and axes against the PNG's pixels and the panel boxes the PNG renderer
 * reports. Heatmap pixels are recomputed from the Plotly trace alone (its z, zmin, zmax and colorscale).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import sharp from "sharp";
import { type Colormap, colormapTable } from "../../src/viz/colormap.ts";
import type { PlotlyFigure, PlotlyTrace } from "../../src/viz/figure.ts";
import type { FigureSpec } from "../../src/viz/panels.ts";
import { drawPlotly } from "../../src/viz/plotly_render.ts";
import { drawPng, type PanelBox } from "../../src/viz/png_render.ts";

export interface Agreement {
  panels: number;
  /** Heatmap panels whose PNG pixels were checked against the Plotly trace, and pixels compared. */
  heatmaps: number;
  heatPixels: number;
  /** Image panels whose PNG pixels were checked against the Plotly image's pixels. */
  images: number;
  /** Chart panels whose axis ranges were compared. */
  charts: number;
}

/** A Plotly colorscale (`[t, "rgb(r,g,b)"]`) back to a colormap. */
function fromColorscale(scale: [number, string][]): Colormap {
  return scale.map(([t, c]) => {
    const m = /^rgb\((\d+),(\d+),(\d+)\)$/.exec(c);
    assert.ok(m, `colorscale entry ${c}`);
    return [t, [Number(m[1]), Number(m[2]), Number(m[3])] as const] as const;
  });
}

function axisIndex(t: PlotlyTrace | Record<string, unknown>): number {
  const ref = String(t.xaxis ?? t.xref ?? "x");
  return ref === "x" ? 0 : Number(ref.slice(1)) - 1;
}

async function raw(png: Uint8Array | Buffer) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Renders `spec` both ways and asserts that they agree; returns what was compared. */
export async function assertRenderersAgree(spec: FigureSpec): Promise<Agreement> {
  return await assertRenderingsAgree(spec, await drawPlotly(spec), await drawPng(spec));
}

/** Asserts that a Plotly figure and a PNG (with its panel boxes) draw the description `spec`. */
export async function assertRenderingsAgree(
  spec: FigureSpec,
  plotly: PlotlyFigure,
  { png, boxes }: { png: Uint8Array; boxes: PanelBox[] },
): Promise<Agreement> {
  const page = await raw(png);
  const panelCount = spec.rows.reduce((n, r) => n + r.panels.filter(Boolean).length, 0);
  const layout = plotly.layout;
  const xAxes = Object.keys(layout).filter((k) => /^xaxis\d*$/.test(k));
  assert.equal(boxes.length, panelCount, "one PNG panel per described panel");
  assert.equal(xAxes.length, panelCount, "one Plotly subplot per described panel");
  const traces = new Map<number, PlotlyTrace[]>();
  for (const t of plotly.data) {
    const k = axisIndex(t);
    assert.ok(k < panelCount, `trace ${t.name} on a subplot that is no panel`);
    traces.set(k, [...(traces.get(k) ?? []), t]);
  }
  const shapes = (layout.shapes ?? []) as Record<string, unknown>[];
  const out: Agreement = { panels: panelCount, heatmaps: 0, heatPixels: 0, images: 0, charts: 0 };
  for (const [k, box] of boxes.entries()) {
    const ts = traces.get(k) ?? [];
    const mine = shapes.filter((s) => axisIndex(s) === k);
    const axis = (n: string) => layout[`${n}axis${k === 0 ? "" : k + 1}`] as Record<string, unknown>;
    if (box.xRange) {
      out.charts++;
      assert.deepEqual(
        axis("x").range,
        box.xRange.map((v) => Number(v.toPrecision(4))),
        `panel ${k} x range`,
      );
      const yr = axis("y").range;
      if (yr) assert.deepEqual(yr, box.yRange!.map((v) => Number(v.toPrecision(4))), `panel ${k} y range`);
    }
    const heats = ts.filter((t) => t.type === "heatmap");
    const images = ts.filter((t) => t.type === "image");
    if (heats.length === 1 && images.length === 0) {
      out.heatPixels += checkHeat(page, box, heats[0], mine);
      out.heatmaps++;
    }
    if (images.length === 1 && ts.length === 1 && mine.length === 0) {
      await checkImage(page, box, images[0]);
      out.images++;
    }
  }
  return out;
}

/** Every PNG pixel of the panel, away from its frame and marks, is the colour of its cell's z. */
function checkHeat(
  page: { data: Uint8Array; width: number },
  box: PanelBox,
  t: PlotlyTrace,
  marks: Record<string, unknown>[],
): number {
  const z = t.z as (number | null)[][];
  const h = z.length, w = z[0].length;
  const lut = colormapTable(fromColorscale(t.colorscale as [number, string][]));
  const lo = t.zmin as number, hi = t.zmax as number;
  // A chart's marks (dotted lines, shaded spans) lie over the heatmap: their columns are not compared.
  const toPx = (x: number) =>
    box.xRange ? ((x - box.xRange[0]) / (box.xRange[1] - box.xRange[0])) * box.width : x;
  const veiled = (px: number) =>
    marks.some((s) =>
      s.type === "line"
        ? Math.abs(px + 0.5 - toPx(s.x0 as number)) < 2
        : px + 1 >= toPx(s.x0 as number) && px - 1 <= toPx(s.x1 as number)
    );
  const edge = box.xRange ? 1 : 0;
  let n = 0;
  for (let y = edge; y < box.height - edge; y++) {
    const row = Math.min(h - 1, Math.floor((y * h) / box.height));
    for (let x = edge; x < box.width - edge; x++) {
      if (veiled(x)) continue;
      const col = Math.min(w - 1, Math.floor((x * w) / box.width));
      const v = z[row][col] ?? NaN;
      const i = Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round(((v - lo) * 255) / (hi - lo)))) : 0;
      const p = ((box.y + y) * page.width + box.x + x) * 3;
      const got = [page.data[p], page.data[p + 1], page.data[p + 2]];
      // z carries 4 significant digits: a value on a colour boundary may land one step over.
      const near = [i - 1, i, i + 1].filter((k) => k >= 0 && k < 256).some((k) =>
        got.every((g, c) => g === lut[k * 3 + c])
      );
      assert.ok(
        near,
        `${t.name}: pixel ${x},${y} is ${got}, the trace's value ${v} gives ${lut.slice(i * 3, i * 3 + 3)}`,
      );
      n++;
    }
  }
  return n;
}

/** The Plotly image's pixels are the PNG's (exactly for PNG sources, closely for JPEG photos). */
async function checkImage(page: { data: Uint8Array; width: number }, box: PanelBox, t: PlotlyTrace) {
  const src = String(t.source);
  const img = await raw(Buffer.from(src.slice(src.indexOf(",") + 1), "base64"));
  assert.deepEqual([img.width, img.height], [box.width, box.height], `${t.name}: image size`);
  let diff = 0, worst = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width * 3; x++) {
      const d = Math.abs(
        img.data[y * img.width * 3 + x] - page.data[((box.y + y) * page.width + box.x) * 3 + x],
      );
      diff += d;
      worst = Math.max(worst, d);
    }
  }
  if (src.startsWith("data:image/png")) assert.equal(worst, 0, `${t.name}: PNG image pixels differ`);
  else assert.ok(diff / (img.width * img.height * 3) < 8, `${t.name}: JPEG far from the PNG's pixels`);
}
