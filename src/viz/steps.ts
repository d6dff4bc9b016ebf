/**
 * The sampler, step by step, as a strip (one column per shown step) for one frame of the clip: the latents,
 * the predicted x0 (decoded by the VAE when a decode function is given), where the unconditional and
 * conditional predictions differ, and the size of the guided update; plus per-step curves over every step.
 */
import type { SamplerStep } from "../sampling/sampler.ts";
import { f32, type F32Tensor } from "../tensor.ts";
import { pickSteps } from "./attention.ts";
import { type Panel, renderCanvas } from "./canvas.ts";
import { lineChart, PALETTE } from "./charts.ts";
import { VIRIDIS } from "./colormap.ts";
import { type PlotlyTrace, VizError, type VizFigure, vizFigure } from "./figure.ts";
import { type CellSpec, heatTrace, imageTrace, plotlyGrid, round4 } from "./plotly.ts";
import { chwToRgb, colorize, fitTo, imageDataUri, type RgbImage } from "./raster.ts";

/**
 * The usual linear approximation of SD-1.5 latents (as the sampler sees them) to RGB in about [-1, 1]:
 * rows are latent channels, columns R, G, B. A preview, not a decode.
 */
export const LATENT_RGB_FACTORS: readonly (readonly [number, number, number])[] = [
  [0.298, 0.207, 0.208],
  [0.187, 0.286, 0.173],
  [-0.158, 0.189, 0.264],
  [-0.184, -0.271, -0.473],
];

/** Decodes (1, 4, 1, h, w) latents to a (1, 3, 1, H, W) frame in [0, 1] (e.g. `x => decodeLatents(vae, x)`). */
export type DecodeFn = (latents: F32Tensor) => Promise<F32Tensor>;

export interface StepsFigureOptions {
  /** (1, 4, F, h, w): the shape the steps' tensors must have (default: their own). */
  latentShape?: readonly number[];
  /** Frame of the clip shown (default 0). */
  frame?: number;
  /** Decodes the predicted x0; without it x0 is shown through LATENT_RGB_FACTORS. */
  decode?: DecodeFn;
  /** Columns (evenly spaced steps, first and last included; default 8). */
  maxSteps?: number;
  /** Side of each image in the PNG (default 112). */
  cellSize?: number;
}

/** One frame (c, h, w) of a flat (1, c, F, h, w) array. */
export function latentFrame(x: Float32Array, shape: readonly number[], frame: number): Float32Array {
  const [, c, F, h, w] = shape;
  const hw = h * w;
  const out = new Float32Array(c * hw);
  for (let ci = 0; ci < c; ci++) {
    out.set(x.subarray((ci * F + frame) * hw, (ci * F + frame + 1) * hw), ci * hw);
  }
  return out;
}

/** Latents (4, h, w) to a preview RGB image through LATENT_RGB_FACTORS. */
export function latentPreview(z: Float32Array, h: number, w: number): RgbImage {
  const hw = h * w;
  const rgb = new Float32Array(3 * hw);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < hw; i++) {
      let v = 0;
      for (let k = 0; k < LATENT_RGB_FACTORS.length; k++) v += z[k * hw + i] * LATENT_RGB_FACTORS[k][c];
      rgb[c * hw + i] = v;
    }
  }
  return chwToRgb(rgb, h, w, [-1, 1]);
}

/** Per-location mean over channels of |a - b| (or L2 norm of a - b) for one frame. */
function channelReduce(a: Float32Array, b: Float32Array | null, c: number, hw: number, norm: "abs" | "l2") {
  const out = new Float32Array(hw);
  for (let k = 0; k < c; k++) {
    for (let i = 0; i < hw; i++) {
      const d = a[k * hw + i] - (b ? b[k * hw + i] : 0);
      out[i] += norm === "abs" ? Math.abs(d) / c : d * d;
    }
  }
  if (norm === "l2") { for (let i = 0; i < hw; i++) out[i] = Math.sqrt(out[i]); }
  return out;
}

function meanAbs(a: Float32Array, b?: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - (b ? b[i] : 0));
  return s / a.length;
}

function std(a: Float32Array): number {
  let s = 0, s2 = 0;
  for (const v of a) {
    s += v;
    s2 += v * v;
  }
  return Math.sqrt(Math.max(0, s2 / a.length - (s / a.length) ** 2));
}

/** The per-step figure of a clip's sampler steps. */
export async function stepsFigure(steps: SamplerStep[], o: StepsFigureOptions): Promise<VizFigure> {
  if (steps.length === 0) throw new VizError("no steps to draw");
  const shape = o.latentShape ?? steps[0].latents.shape;
  if (shape.length !== 5) throw new VizError(`latentShape must be (1, 4, F, h, w), got [${shape}]`);
  const [, C, F, h, w] = shape;
  const n = C * F * h * w;
  const frame = o.frame ?? 0;
  if (!Number.isInteger(frame) || frame < 0 || frame >= F) {
    throw new VizError(`frame ${frame} out of range (${F} frames)`);
  }
  for (const s of steps) {
    if (s.latents.data.length !== n || s.cond.data.length !== n || s.next.data.length !== n) {
      throw new VizError(`step ${s.index}: arrays do not match latentShape [${shape}]`);
    }
  }
  const cell = o.cellSize ?? 112;
  const shown = pickSteps(steps.length, o.maxSteps ?? 8).map((i) => steps[i]);
  const guided = steps.every((s) => s.uncond);
  const hw = h * w;
  const cols = await Promise.all(shown.map(async (s) => {
    const lat = latentFrame(s.latents.data, shape, frame);
    const x0 = latentFrame(s.predOriginal.data, shape, frame);
    let x0Image: RgbImage;
    if (o.decode) {
      const v = await o.decode(f32([1, C, 1, h, w], x0));
      const [, c3, , H, W] = v.shape;
      if (c3 !== 3) throw new VizError(`decode returned [${v.shape}], expected (1, 3, 1, H, W)`);
      x0Image = chwToRgb(v.data, H, W, [0, 1]);
    } else {
      x0Image = latentPreview(x0, h, w);
    }
    const diff = s.uncond
      ? channelReduce(
        latentFrame(s.cond.data, shape, frame),
        latentFrame(s.uncond.data, shape, frame),
        C,
        hw,
        "abs",
      )
      : null;
    const update = channelReduce(latentFrame(s.next.data, shape, frame), lat, C, hw, "l2");
    return { step: s, latents: latentPreview(lat, h, w), x0: x0Image, diff, update };
  }));
  const maxOf = (arrs: (Float32Array | null)[]) =>
    Math.max(1e-12, ...arrs.map((a) => (a ? Math.max(...a) : 0)));
  const diffMax = maxOf(cols.map((c) => c.diff)), updMax = maxOf(cols.map((c) => c.update));
  const curves = {
    latentStd: steps.map((s) => std(s.latents.data)),
    x0Std: steps.map((s) => std(s.predOriginal.data)),
    condUncond: steps.map((s) => (s.uncond ? meanAbs(s.cond.data, s.uncond.data) : NaN)),
    update: steps.map((s) => meanAbs(s.next.data, s.latents.data)),
  };
  const rowNames = [
    "latents (RGB preview)",
    o.decode ? "predicted x0 (VAE decode)" : "predicted x0 (RGB preview)",
    ...(guided ? ["|cond - uncond| (mean over channels)"] : []),
    "guided update |next - latents| (L2 over channels)",
  ];

  // Plotly.
  const nC = shown.length;
  const imageRows = rowNames.length;
  const cells: CellSpec[] = [];
  for (let r = 0; r < imageRows; r++) {
    shown.forEach((s, c) =>
      cells.push({
        row: r,
        col: c,
        kind: "image",
        title: r === 0 ? `step ${s.index} (t=${s.timestep})` : undefined,
      })
    );
  }
  cells.push({
    row: imageRows,
    col: 0,
    kind: "chart",
    colSpan: nC,
    title: "per step (all steps)",
    xTitle: "step",
  });
  const grid = plotlyGrid(imageRows + 1, nC, cells, {
    title: `Sampler steps: frame ${frame} of ${F}, ${steps.length} steps${guided ? ", with guidance" : ""}`,
    width: Math.max(700, 170 + nC * 120),
    height: 110 + 135 * (imageRows + 1.6),
    rowHeights: [...rowNames.map(() => 1), 1.6],
    rowLabels: [...rowNames, ""],
    layout: { showlegend: true },
  });
  const data: PlotlyTrace[] = [];
  let k = 0;
  const uriRow = async (imgs: RgbImage[], name: string) => {
    const uris = await Promise.all(
      imgs.map((im) => imageDataUri(fitTo(im, Math.max(64, Math.min(128, im.width))))),
    );
    uris.forEach((u, c) => data.push(imageTrace(u, grid.axes[k + c], `${name} step ${shown[c].index}`)));
    k += uris.length;
  };
  await uriRow(cols.map((c) => c.latents), "latents");
  await uriRow(cols.map((c) => c.x0), "x0");
  const heatRow = (maps: Float32Array[], name: string, zmax: number) => {
    maps.forEach((m, c) =>
      data.push(
        heatTrace(m, w, h, grid.axes[k + c], { name: `${name} step ${shown[c].index}`, zmin: 0, zmax }),
      )
    );
    k += maps.length;
  };
  if (guided) heatRow(cols.map((c) => c.diff!), "|cond-uncond|", diffMax);
  heatRow(cols.map((c) => c.update), "|update|", updMax);
  const axC = grid.axes[k];
  const idx = steps.map((s) => s.index);
  const series: [string, number[]][] = [
    ["latents std", curves.latentStd],
    ["x0 std", curves.x0Std],
    ...(guided ? [["mean |cond - uncond|", curves.condUncond] as [string, number[]]] : []),
    ["mean |update|", curves.update],
  ];
  series.forEach(([name, y], i) =>
    data.push({
      type: "scatter",
      mode: "lines+markers",
      name,
      x: idx,
      y: y.map(round4),
      line: { color: PALETTE[i] },
      ...axC,
    })
  );

  // PNG.
  const px = (img: RgbImage) => fitTo(img, cell);
  const heatPx = (m: Float32Array, zmax: number) => fitTo(colorize(m, w, h, VIRIDIS, [0, zmax]), cell);
  const rows: Panel[][] = [
    cols.map((c) => ({ image: px(c.latents) })),
    cols.map((c) => ({ image: px(c.x0) })),
    ...(guided ? [cols.map((c) => ({ image: heatPx(c.diff!, diffMax) }))] : []),
    cols.map((c) => ({ image: heatPx(c.update, updMax) })),
  ];
  const png = await renderCanvas({
    title: `Sampler steps: frame ${frame} of ${F}, ${steps.length} steps${guided ? ", with guidance" : ""}`,
    subtitle: `heat ranges: |cond - uncond| 0..${round4(diffMax)}, |update| 0..${round4(updMax)} (viridis)`,
    sections: [
      { rows, rowLabels: rowNames, colLabels: shown.map((s) => `step ${s.index} (t=${s.timestep})`) },
      {
        rows: [[lineChart({
          width: Math.max(500, nC * (cell + 6)),
          height: 160,
          series: series.map(([name, y]) => ({ name, x: idx, y })),
          xLabel: "step",
        })]],
      },
    ],
  });
  return vizFigure("steps", "Sampler steps", { data, layout: grid.layout }, png, {
    steps: steps.length,
    shown: shown.map((s) => s.index),
    timesteps: shown.map((s) => s.timestep),
    frame,
    guided,
    decoded: o.decode !== undefined,
    diffMax: round4(diffMax),
    updateMax: round4(updMax),
    curves: Object.fromEntries(Object.entries(curves).map(([k, v]) => [k, v.map(round4)])),
  });
}
