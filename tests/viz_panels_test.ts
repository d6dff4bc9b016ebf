/**
 * One figure description, two renderings: on a hand-made description with every kind of panel, the Plotly
 * figure and the PNG have the same panels, the PNG's heatmap pixels are the colour scale of the values the
 * Plotly traces carry, images carry the same pixels, and chart axes show the same intervals (bars stacked,
 * linked axes zooming together); a rendering that strays is caught.
 */
import assert from "node:assert/strict";
import { BLUE_RED, VIRIDIS } from "../src/viz/colormap.ts";
import { drawFigure } from "../src/viz/draw.ts";
import { chartRanges, type FigureSpec, type Panel } from "../src/viz/panels.ts";
import { drawPlotly } from "../src/viz/plotly_render.ts";
import { drawPng } from "../src/viz/png_render.ts";
import { assertRenderersAgree, assertRenderingsAgree } from "./helpers/figure_agreement.ts";

// Values on quarter steps: exact in Plotly's 4 significant digits.
const heat = Float32Array.from({ length: 5 * 3 }, (_, i) => (i % 9) * 0.25);
const matrix = Float32Array.from([1, 0, -1, 0.5, 0, -0.5, -1, 0.25, 1]);
const picture = {
  width: 20,
  height: 10,
  data: Uint8Array.from({ length: 20 * 10 * 3 }, (_, i) => (i * 37) % 256),
};
const timeline = Float32Array.from({ length: 10 * 2 }, (_, i) => (i % 10) / 4 - 1);
const axis = { range: [0, 10] as const, link: "t" };

const spec: FigureSpec = {
  name: "demo",
  caption: "Every panel kind",
  title: "Every panel kind",
  subtitle: "drawn twice",
  rows: [
    {
      label: "maps",
      panels: [
        {
          kind: "image",
          title: "heat alone",
          size: 100,
          layers: [{
            kind: "heatmap",
            name: "heat",
            values: heat,
            width: 5,
            height: 3,
            scale: { cmap: VIRIDIS, range: [0, 2] },
          }],
        },
        {
          kind: "matrix",
          title: "matrix",
          size: 90,
          layers: [{
            kind: "heatmap",
            name: "matrix",
            values: matrix,
            width: 3,
            height: 3,
            scale: { cmap: BLUE_RED, range: [-1, 1] },
            xLabels: ["a", "b", "c"],
            yLabels: ["a", "b", "c"],
          }],
        },
        null,
        {
          kind: "image",
          title: "picture",
          size: 60,
          layers: [{ kind: "image", name: "picture", image: picture }],
        },
      ],
    },
    {
      heading: "Over time",
      panels: [{
        kind: "chart",
        title: "curves and bars",
        span: 4,
        size: [420, 120],
        x: axis,
        y: { title: "value" },
        layers: [
          { kind: "lines", name: "rise", x: [0, 5, 10], y: [0, 1, 2], markers: true },
          { kind: "bars", name: "a", x: [2, 4], y: [1, 2] },
          { kind: "bars", name: "b", x: [2, 4], y: [3, 1] },
        ],
      }],
    },
    {
      panels: [{
        kind: "chart",
        title: "timeline",
        span: 4,
        size: [420, 80],
        x: { ...axis, title: "frame" },
        layers: [
          {
            kind: "heatmap",
            name: "timeline",
            values: timeline,
            width: 10,
            height: 2,
            scale: { cmap: BLUE_RED, range: [-1, 1] },
            yLabels: ["first", "second"],
            xSpan: [0, 10],
          },
          { kind: "vlines", name: "cuts", x: [4] },
          { kind: "span", name: "padding", x0: 8, x1: 10 },
        ],
      }],
    },
  ],
};

Deno.test("two renderings of one description: same panels, heat colours, pixels and axes", async () => {
  const agree = await assertRenderersAgree(spec);
  assert.deepEqual(agree.panels, 5);
  assert.equal(agree.heatmaps, 3, "heat alone, matrix and the timeline compared pixel by pixel");
  assert.ok(agree.heatPixels > 100 * 60 + 90 * 90, `${agree.heatPixels} heat pixels compared`);
  assert.equal(agree.images, 1);
  assert.equal(agree.charts, 2);

  const { data, layout } = await drawPlotly(spec);
  // Bars stack: the y axis reaches their summed height, 3 + 1 at x = 2.
  assert.deepEqual(chartRanges(spec.rows[1].panels[0] as Panel).y, [0, 4]);
  assert.deepEqual((layout.yaxis4 as { range: number[] }).range, [0, 4]);
  assert.equal(layout.barmode, "stack");
  assert.deepEqual(data.filter((t) => t.type === "bar").map((t) => t.y), [[1, 2], [3, 1]]);
  // Linked x axes zoom together; heat rows read top-down as in the PNG.
  assert.equal((layout.xaxis5 as { matches?: string }).matches, "x4");
  assert.equal((layout.yaxis5 as { autorange?: string }).autorange, "reversed");
  // The title and its subtitle, the row label and every panel title.
  assert.deepEqual(layout.title, {
    text: "Every panel kind",
    x: 0.01,
    xanchor: "left",
    subtitle: { text: "drawn twice", font: { size: 11 } },
  });
  const texts = (layout.annotations as { text: string }[]).map((a) => a.text);
  for (
    const t of ["maps", "heat alone", "matrix", "picture", "<b>Over time</b>", "curves and bars", "timeline"]
  ) {
    assert.ok(texts.includes(t), t);
  }
  // Marks: the dotted cut and the shaded padding on the timeline's axes.
  const shapes = layout.shapes as { type: string; xref: string; x0: number; x1: number }[];
  assert.deepEqual(shapes.map((s) => [s.type, s.xref, s.x0, s.x1]), [["line", "x5", 4, 4], [
    "rect",
    "x5",
    8,
    10,
  ]]);

  const fig = await drawFigure(spec);
  assert.equal(fig.name, "demo");
  assert.equal(fig.title, "Every panel kind");
  assert.deepEqual([...fig.png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
});

Deno.test("renderer agreement check: a Plotly value, range or image that strays from the PNG is caught", async () => {
  const png = await drawPng(spec);
  const heatOff = await drawPlotly(spec);
  (heatOff.data[0].z as number[][])[1][2] = 0.75;
  await assert.rejects(() => assertRenderingsAgree(spec, heatOff, png), /heat: pixel/);

  const rangeOff = await drawPlotly(spec);
  (rangeOff.layout.xaxis4 as { range: number[] }).range = [0, 11];
  await assert.rejects(() => assertRenderingsAgree(spec, rangeOff, png), /panel 3 x range/);

  const imageOff = await drawPlotly(spec);
  const other = await drawPlotly({
    ...spec,
    rows: [{
      panels: [{
        kind: "image",
        size: 60,
        layers: [{ kind: "image", name: "p", image: { ...picture, data: picture.data.map((v) => 255 - v) } }],
      }],
    }],
  });
  imageOff.data.find((t) => t.type === "image")!.source = other.data[0].source;
  await assert.rejects(() => assertRenderingsAgree(spec, imageOff, png), /image pixels differ/);

  const fewer = await drawPlotly({ ...spec, rows: spec.rows.slice(0, 2) });
  await assert.rejects(
    () => assertRenderingsAgree(spec, fewer, png),
    /one Plotly subplot per described panel/,
  );
});
