/**
 * The sampler, step by step, as a strip (one column per shown step) for one frame of the clip: the latents,
 * the predicted x0 (decoded by the VAE when a decode function is given), where the unconditional and
 * conditional predictions differ, and the size of the guided update; plus per-step curves over every step.
 */
import type { SamplerStep } from "../sampling/sampler.ts";
import { f32, type F32Tensor } from "../tensor.ts";
import { pickSteps } from "./attention.ts";
import { VIRIDIS } from "./colormap.ts";
import { drawFigure } from "./draw.ts";
import { VizError, type VizFigure } from "./figure.ts";
import type { FigureSpec, PanelRow } from "./panels.ts";
import { round4 } from "./plotly.ts";
import { chwToRgb, type RgbImage } from "./raster.ts";

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
  /** Side of each image in pixels, both renderings (default 112). */
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

/** The per-step figure of a clip's sampler steps, described. */
export async function describeSteps(steps: SamplerStep[], o: StepsFigureOptions): Promise<FigureSpec> {
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

  const stepTitle = (s: SamplerStep) => `step ${s.index} (t=${s.timestep})`;
  // Step titles over the first row only: the columns are the steps.
  const imageRow = (label: string, images: RgbImage[], titled = false): PanelRow => ({
    label,
    panels: images.map((image, c) => ({
      kind: "image",
      title: titled ? stepTitle(shown[c]) : undefined,
      size: cell,
      layers: [{ kind: "image", name: `${label} step ${shown[c].index}`, image }],
    })),
  });
  const heatRow = (label: string, name: string, maps: Float32Array[], zmax: number): PanelRow => {
    const scale = { cmap: VIRIDIS, range: [0, zmax] as const };
    return {
      label,
      panels: maps.map((values, c) => ({
        kind: "image",
        size: cell,
        layers: [{
          kind: "heatmap",
          name: `${name} step ${shown[c].index}`,
          values,
          width: w,
          height: h,
          scale,
        }],
      })),
    };
  };
  const idx = steps.map((s) => s.index);
  const series: [string, number[]][] = [
    ["latents std", curves.latentStd],
    ["x0 std", curves.x0Std],
    ...(guided ? [["mean |cond - uncond|", curves.condUncond] as [string, number[]]] : []),
    ["mean |update|", curves.update],
  ];
  return {
    name: "steps",
    caption: "Sampler steps",
    title: `Sampler steps: frame ${frame} of ${F}, ${steps.length} steps${guided ? ", with guidance" : ""}`,
    subtitle: `heat ranges: |cond - uncond| 0..${round4(diffMax)}, |update| 0..${round4(updMax)} (viridis)`,
    rows: [
      imageRow(rowNames[0], cols.map((c) => c.latents), true),
      imageRow(rowNames[1], cols.map((c) => c.x0)),
      ...(guided ? [heatRow(rowNames[2], "|cond-uncond|", cols.map((c) => c.diff!), diffMax)] : []),
      heatRow(rowNames[rowNames.length - 1], "|update|", cols.map((c) => c.update), updMax),
      {
        panels: [{
          kind: "chart",
          title: "per step (all steps)",
          span: shown.length,
          size: [Math.max(500, shown.length * (cell + 6)), 160],
          x: { title: "step" },
          layers: series.map(([name, y]) => ({ kind: "lines", name, x: idx, y, markers: true })),
        }],
      },
    ],
    summary: {
      steps: steps.length,
      shown: shown.map((s) => s.index),
      timesteps: shown.map((s) => s.timestep),
      frame,
      guided,
      decoded: o.decode !== undefined,
      diffMax: round4(diffMax),
      updateMax: round4(updMax),
      curves: Object.fromEntries(Object.entries(curves).map(([k, v]) => [k, v.map(round4)])),
    },
  };
}

/** The per-step figure of a clip's sampler steps. */
export async function stepsFigure(steps: SamplerStep[], o: StepsFigureOptions): Promise<VizFigure> {
  return await drawFigure(await describeSteps(steps, o));
}
