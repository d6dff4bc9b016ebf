/**
 * Attention maps from the denoising UNet's probes, per step: how much each location attends to the
 * reference image (reference self-attention), where each audio token lands per mask branch (audio
 * cross-attention), and the frame x frame matrices of the motion modules; averaged over heads or one head,
 * upsampled over the portrait.
 */
import type { AttentionProbe } from "../onnx/layers.ts";
import type { F32Tensor, Tensor } from "../tensor.ts";
import {
  audioTokenMaps,
  classifyProbe,
  type FrameChoice,
  type HeadChoice,
  motionMatrix,
  reduceHeads,
  referenceShare,
} from "./attention_maps.ts";
import { tokenGrid } from "./bank.ts";
import { VIRIDIS } from "./colormap.ts";
import { drawFigure } from "./draw.ts";
import { VizError, type VizFigure } from "./figure.ts";
import type { FigureSpec, Layer, Panel } from "./panels.ts";
import { round4 } from "./plotly.ts";
import { chwToRgb, finiteRange } from "./raster.ts";

/** Names of the audio branches attn2_0/1/2: the masks their outputs are weighted by. */
export const AUDIO_BRANCHES = ["full", "face", "lip"] as const;

/** What the figure needs of a sampler step (a `SamplerStep` fits). */
export interface ProbeStep {
  index: number;
  timestep: number;
  probes?: Record<string, unknown>;
}

/** Clip geometry: frames per clip, latent size, motion frames. */
export interface AttentionGeometry {
  frames: number;
  latentHeight: number;
  latentWidth: number;
}

export interface AttentionFigureOptions {
  /** (3, S, S) reference pixels in [-1, 1] (PreparedImage.pixels): the maps are drawn over it. */
  portrait?: F32Tensor;
  /** Heads averaged ("mean", default) or one head (probes captured with "heads"). */
  head?: HeadChoice;
  /** Frames averaged ("mean", default) or one frame of the clip. */
  frame?: FrameChoice;
  /** Steps shown as columns (evenly spaced, first and last included; default 6). */
  maxSteps?: number;
  /** The step whose audio maps are drawn (position in `steps`; default the last). */
  audioStep?: number;
  /** Side of each map in pixels, both renderings (default 96). */
  cellSize?: number;
}

/**
 * Probe requests for one block of the denoising UNet (default `down_blocks.1`, its layer 0): the reference
 * self-attention, the three audio branches and both motion attention blocks, for `loadHalloModels(..., {probes:
 * {attention: attentionProbes()}})`. Mind the size at 512 px: the reference self-attention probe of
 * `down_blocks.0` is 16 x 4096 x 8192 floats (2.1 GB) per step, `down_blocks.1` 134 MB, `down_blocks.2` 8 MB.
 */
export function attentionProbes(
  block = "down_blocks.1",
  layer = 0,
  mode: AttentionProbe = "mean",
): Record<string, AttentionProbe> {
  const p = `${block}`;
  const out: Record<string, AttentionProbe> = {
    [`${p}.attentions.${layer}.transformer_blocks.0.attn1`]: mode,
  };
  for (let i = 0; i < 3; i++) out[`${p}.audio_modules.${layer}.transformer_blocks.0.attn2_${i}`] = mode;
  for (let i = 0; i < 2; i++) {
    out[`${p}.motion_modules.${layer}.temporal_transformer.transformer_blocks.0.attention_blocks.${i}`] =
      mode;
  }
  return out;
}

/** Up to `max` evenly spaced positions of 0..n-1, first and last included. */
export function pickSteps(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  if (max <= 1) return [n - 1];
  return [...new Set(Array.from({ length: max }, (_, i) => Math.round((i * (n - 1)) / (max - 1))))];
}

function shortModule(m: string): string {
  return m.replace(".transformer_blocks.0", "").replace(".temporal_transformer", "");
}

function asTensor(name: string, v: unknown): Tensor {
  const t = v as Tensor;
  if (!t || !Array.isArray(t.shape) || !t.data) throw new VizError(`probe ${name} is not a tensor`);
  return t;
}

interface MapCell {
  values: Float32Array;
  w: number;
  h: number;
  label: string;
  range: [number, number];
  /** Drawn over the portrait (location maps) or alone (frame x frame matrices). */
  overlay: boolean;
  ticks?: string[];
}

interface Row {
  section: "reference" | "audio" | "motion";
  label: string;
  cells: (MapCell | null)[];
}

/** The attention figure of one or more sampler steps that carry probes. */
export async function attentionFigure(
  stepsIn: ProbeStep | ProbeStep[],
  geometry: AttentionGeometry,
  o: AttentionFigureOptions = {},
): Promise<VizFigure> {
  return await drawFigure(describeAttention(stepsIn, geometry, o));
}

/** The attention figure of sampler steps that carry probes, described. */
export function describeAttention(
  stepsIn: ProbeStep | ProbeStep[],
  geometry: AttentionGeometry,
  o: AttentionFigureOptions = {},
): FigureSpec {
  const all = (Array.isArray(stepsIn) ? stepsIn : [stepsIn]).filter((s) => s.probes);
  if (all.length === 0) throw new VizError("no step carries probes (load the UNet with probes.attention)");
  const head = o.head ?? "mean", frame = o.frame ?? "mean";
  const steps = pickSteps(all.length, o.maxSteps ?? 6).map((i) => all[i]);
  const audioStep = all[o.audioStep ?? all.length - 1];
  if (!audioStep) throw new VizError(`audioStep ${o.audioStep} out of range (${all.length} steps)`);
  const F = geometry.frames;
  const names = Object.keys(steps[steps.length - 1].probes!).sort();
  const ignored: string[] = [];
  const rows: Row[] = [];
  const summary: Record<string, unknown[]> = { reference: [], audio: [], motion: [] };
  const stepLabel = (s: ProbeStep) => `step ${s.index} (t=${s.timestep})`;
  const probe = (s: ProbeStep, name: string) => {
    const v = s.probes?.[name];
    if (v === undefined) throw new VizError(`step ${s.index} has no probe ${name}`);
    return reduceHeads(name, asTensor(name, v), head);
  };

  for (const name of names) {
    const c = classifyProbe(name);
    if (c.kind === "reference") {
      const first = probe(steps[0], name);
      const [h, w] = tokenGrid(first.queries, geometry.latentHeight, geometry.latentWidth);
      const per = steps.map((s) => referenceShare(name, probe(s, name), frame));
      const cells: MapCell[] = per.map((r, i) => ({
        values: r.share,
        w,
        h,
        label: stepLabel(steps[i]),
        range: [0, 1],
        overlay: true,
      }));
      const last = per[per.length - 1];
      cells.push({
        values: last.received,
        w,
        h,
        label: "received (last step)",
        range: finiteRange(last.received),
        overlay: true,
      });
      rows.push({ section: "reference", label: `${shortModule(c.module)} (${h}x${w})`, cells });
      summary.reference.push({
        module: c.module,
        grid: [h, w],
        heads: first.heads,
        meanShare: per.map((r) => round4(r.share.reduce((a, b) => a + b, 0) / r.share.length)),
      });
    } else if (c.kind === "audio") {
      const p = probe(audioStep, name);
      const [h, w] = tokenGrid(p.queries, geometry.latentHeight, geometry.latentWidth);
      const maps = audioTokenMaps(name, p, F, frame);
      let hi = 0;
      for (const m of maps) hi = Math.max(hi, finiteRange(m)[1]);
      rows.push({
        section: "audio",
        label: `${shortModule(c.module)} ${AUDIO_BRANCHES[c.branch] ?? c.branch} (${h}x${w})`,
        cells: maps.map((m, a) => ({
          values: m,
          w,
          h,
          label: `token ${a}`,
          range: [0, hi || 1],
          overlay: true,
        })),
      });
      summary.audio.push({
        module: c.module,
        branch: AUDIO_BRANCHES[c.branch] ?? c.branch,
        grid: [h, w],
        audioTokens: maps.length,
        heads: p.heads,
        maxProb: round4(hi),
      });
    } else if (c.kind === "motion") {
      const first = probe(steps[0], name);
      const n = first.queries;
      const M = n - F;
      if (M < 0) throw new VizError(`${name}: ${n} frames is fewer than the clip's ${F}`);
      const T = tokenCount(first.rows, geometry);
      const ticks = [
        ...Array.from({ length: M }, (_, i) => `m${i + 1}`),
        ...Array.from({ length: F }, (_, i) => `f${i}`),
      ];
      const mats = steps.map((s) => motionMatrix(name, probe(s, name), T));
      rows.push({
        section: "motion",
        label: `${shortModule(c.module)} (${n}x${n})`,
        cells: mats.map((m, i) => ({
          values: m,
          w: n,
          h: n,
          label: stepLabel(steps[i]),
          range: [0, finiteRange(m)[1] || 1],
          overlay: false,
          ticks,
        })),
      });
      summary.motion.push({
        module: c.module,
        frames: n,
        motionFrames: M,
        locations: T,
        heads: first.heads,
        // Attention kept on the same frame, and given to the motion frames, averaged over query frames.
        diagonal: mats.map((m) => round4(trace(m, n) / n)),
        onMotionFrames: mats.map((m) => round4(columnsShare(m, n, M))),
      });
    } else {
      ignored.push(name);
    }
  }
  if (rows.length === 0) throw new VizError(`no known attention probes among: ${names.join(", ")}`);
  return describe(rows, steps, audioStep, o, {
    ...summary,
    ignored,
    steps: steps.map((s) => s.index),
    head,
    frame,
  });
}

/** Locations of a motion probe: rows are batch x locations, the batch being 1 or 2 (guidance). */
function tokenCount(rows: number, g: AttentionGeometry): number {
  for (let s = 1; s <= 64; s *= 2) {
    const t = Math.ceil(g.latentHeight / s) * Math.ceil(g.latentWidth / s);
    if (rows === t || rows === 2 * t) return t;
  }
  throw new VizError(
    `motion probe rows ${rows} match no downscale of a ${g.latentHeight}x${g.latentWidth} latent`,
  );
}

function trace(m: Float32Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += m[i * n + i];
  return s;
}

function columnsShare(m: Float32Array, n: number, cols: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < cols; j++) s += m[i * n + j];
  return s / n;
}

function describe(
  rows: Row[],
  steps: ProbeStep[],
  audioStep: ProbeStep,
  o: AttentionFigureOptions,
  summary: Record<string, unknown>,
): FigureSpec {
  const size = o.cellSize ?? 96;
  const portrait = o.portrait
    ? chwToRgb(o.portrait.data, o.portrait.shape[1], o.portrait.shape[2], [-1, 1])
    : null;
  const headText = o.head === undefined || o.head === "mean" ? "heads averaged" : `head ${o.head}`;
  const frameText = o.frame === undefined || o.frame === "mean" ? "frames averaged" : `frame ${o.frame}`;
  const heading = {
    reference: "Reference self-attention: share of attention on the reference tokens (0..1), per step",
    audio: `Audio cross-attention per audio token and mask branch (step ${audioStep.index})`,
    motion: "Motion modules: frame x frame attention (query rows, key columns; m = motion frames), per step",
  };
  const panel = (cell: MapCell): Panel => {
    const heat: Layer = {
      kind: "heatmap",
      name: cell.label,
      values: cell.values,
      width: cell.w,
      height: cell.h,
      scale: { cmap: VIRIDIS, range: cell.range },
      ...(cell.ticks ? { xLabels: cell.ticks, yLabels: cell.ticks } : {}),
    };
    // Location maps over the portrait (when given); frame x frame matrices alone, with their frame names.
    const under: Layer[] = cell.overlay && portrait
      ? [{ kind: "image", name: "reference", image: portrait, photo: true }]
      : [];
    return { kind: cell.overlay ? "image" : "matrix", title: cell.label, size, layers: [...under, heat] };
  };
  return {
    name: "attention",
    caption: "Attention maps",
    title: `Attention: ${headText}, ${frameText}; audio maps at step ${audioStep.index}`,
    subtitle: `steps ${steps.map((s) => s.index).join(", ")}; viridis; cond half of the guidance batch`,
    rows: rows.map((r, i) => ({
      label: r.label,
      heading: i === 0 || rows[i - 1].section !== r.section ? heading[r.section] : undefined,
      panels: r.cells.map((c) => (c ? panel(c) : null)),
    })),
    summary,
  };
}
