/**
 * The driving audio on the video's time axis (x in video frames, fps per second): the waveform, the
 * separated vocals, the wav2vec2 features of every layer, and the (L, 5) window table that gives each video
 * frame its features (frames i-2..i+2, clamped), with the clip boundaries and the padding past audio_length.
 */
import type { PreparedAudio } from "../stages/audio/prepare.ts";
import { decodeAudio } from "../stages/audio/decode.ts";
import { WINDOW_OFFSETS, windowIndexTable } from "../stages/audio/windows.ts";
import { BLUE_RED } from "./colormap.ts";
import { drawFigure } from "./draw.ts";
import { VizError, type VizFigure } from "./figure.ts";
import { type Axis, type FigureSpec, type Layer, PALETTE, type Panel, type PanelRow } from "./panels.ts";
import { round4 } from "./plotly.ts";

/** wav2vec2's sample rate: PreparedAudio's waveforms are at 16 kHz. */
const RATE = 16000;

export interface AudioFigureOptions {
  /** The driving audio: a file (decoded to 16 kHz mono here) or 16 kHz mono samples. Omitted: no waveform row. */
  input?: string | Float32Array;
  /** Video frame rate (25). */
  fps?: number;
  /** Frames per clip (16). */
  clipLength?: number;
  /** Feature dimensions drawn per layer: all up to this many, else the most varying ones (default 64). */
  maxDims?: number;
  /** Time columns of the heatmaps and envelope points of the waveforms (default 600). */
  maxColumns?: number;
}

/** min/max envelope of a waveform in `bins` bins; x in video frames. */
export function envelope(
  samples: Float32Array,
  bins: number,
  fps: number,
): { x: number[]; lo: number[]; hi: number[] } {
  const n = Math.max(1, Math.min(bins, samples.length));
  const x: number[] = [], lo: number[] = [], hi: number[] = [];
  for (let b = 0; b < n; b++) {
    const s0 = Math.floor((b * samples.length) / n),
      s1 = Math.max(s0 + 1, Math.floor(((b + 1) * samples.length) / n));
    let a = Infinity, z = -Infinity;
    for (let i = s0; i < s1 && i < samples.length; i++) {
      a = Math.min(a, samples[i]);
      z = Math.max(z, samples[i]);
    }
    x.push(round4(((s0 + s1) / 2 / RATE) * fps)!);
    lo.push(round4(Number.isFinite(a) ? a : 0)!);
    hi.push(round4(Number.isFinite(z) ? z : 0)!);
  }
  return { x, lo, hi };
}

/** Layer `layer` of an (L, layers, dim) embedding as a (dims x columns) map: frames averaged into columns. */
export function layerMap(
  emb: { shape: readonly number[]; data: Float32Array },
  layer: number,
  dims: readonly number[],
  columns: number,
): Float32Array {
  const [L, layers, dim] = emb.shape;
  const cols = Math.max(1, Math.min(columns, L));
  const out = new Float32Array(dims.length * cols);
  for (let c = 0; c < cols; c++) {
    const f0 = Math.floor((c * L) / cols), f1 = Math.max(f0 + 1, Math.floor(((c + 1) * L) / cols));
    dims.forEach((d, r) => {
      let s = 0;
      for (let f = f0; f < f1; f++) s += emb.data[(f * layers + layer) * dim + d];
      out[r * cols + c] = s / (f1 - f0);
    });
  }
  return out;
}

/** The `k` dimensions of a layer that vary most over time (all when there are at most k), in index order. */
export function mostVaryingDims(
  emb: { shape: readonly number[]; data: Float32Array },
  layer: number,
  k: number,
) {
  const [L, layers, dim] = emb.shape;
  if (dim <= k) return Array.from({ length: dim }, (_, i) => i);
  const v = new Float64Array(dim);
  for (let d = 0; d < dim; d++) {
    let s = 0, s2 = 0;
    for (let f = 0; f < L; f++) {
      const x = emb.data[(f * layers + layer) * dim + d];
      s += x;
      s2 += x * x;
    }
    v[d] = s2 / L - (s / L) ** 2;
  }
  return Array.from({ length: dim }, (_, i) => i).sort((a, b) => v[b] - v[a] || a - b).slice(0, k).sort((
    a,
    b,
  ) => a - b);
}

/** Largest |windows[i, j] - embedding[table[i, j]]| over a sample of frames: 0 when the windows are the table's. */
function windowCheck(a: PreparedAudio): number {
  const [L, K] = a.windows.shape;
  const row = a.embedding.data.length / a.embedding.shape[0];
  const table = windowIndexTable(L, WINDOW_OFFSETS);
  const frames = new Set([0, 1, 2, L - 3, L - 2, L - 1, Math.floor(L / 2)].filter((f) => f >= 0 && f < L));
  let worst = 0;
  for (const i of frames) {
    for (let j = 0; j < K; j++) {
      const src = table[i * K + j] * row, dst = (i * K + j) * row;
      for (let e = 0; e < row; e++) {
        worst = Math.max(worst, Math.abs(a.windows.data[dst + e] - a.embedding.data[src + e]));
      }
    }
  }
  return worst;
}

async function load16k(input: string | Float32Array): Promise<Float32Array> {
  if (typeof input !== "string") return input;
  return (await decodeAudio(input, { sampleRate: RATE, channels: 1 })).channels[0];
}

/** The audio figure of a prepared audio, described. */
export async function describeAudio(audio: PreparedAudio, o: AudioFigureOptions = {}): Promise<FigureSpec> {
  const fps = o.fps ?? 25, clip = o.clipLength ?? 16;
  const maxDims = o.maxDims ?? 64, maxCols = o.maxColumns ?? 600;
  const emb = audio.embedding;
  if (emb.shape.length !== 3) throw new VizError(`embedding must be (L, layers, dim), got [${emb.shape}]`);
  const [L, layers, dim] = emb.shape;
  if (audio.windows.shape[0] !== L || audio.windows.shape[1] !== WINDOW_OFFSETS.length) {
    throw new VizError(`windows [${audio.windows.shape}] do not match the embedding [${emb.shape}]`);
  }
  const waves: { name: string; samples: Float32Array }[] = [];
  if (o.input !== undefined) waves.push({ name: "input (16 kHz mono)", samples: await load16k(o.input) });
  if (audio.vocals16kPath) {
    waves.push({ name: "separated vocals", samples: await load16k(audio.vocals16kPath) });
  }
  const envs = waves.map((w) => ({ ...w, env: envelope(w.samples, maxCols, fps) }));
  const boundaries = Array.from({ length: Math.floor((L - 1) / clip) }, (_, i) => (i + 1) * clip);
  const table = windowIndexTable(L, WINDOW_OFFSETS);
  const K = WINDOW_OFFSETS.length;
  const offsets = new Float32Array(K * L); // rows = window slots, columns = video frames
  for (let i = 0; i < L; i++) for (let j = 0; j < K; j++) offsets[j * L + i] = table[i * K + j] - i;
  const layerMaps = Array.from({ length: layers }, (_, l) => {
    const dims = mostVaryingDims(emb, l, maxDims);
    const cols = Math.min(maxCols, L);
    const values = layerMap(emb, l, dims, cols);
    let absMax = 0;
    for (const v of values) absMax = Math.max(absMax, Math.abs(v));
    return { dims, cols, values, absMax: absMax || 1 };
  });

  // One wide chart per row, x in video frames on every row, zoom linked.
  const x: Axis = { range: [0, L], link: "frame" };
  const marks: Layer[] = [
    { kind: "vlines", name: "clip boundaries", x: boundaries },
    { kind: "span", name: "padding", x0: audio.audioLength, x1: L },
  ];
  const chart = (title: string, height: number, layers: Layer[], o: Partial<Panel> = {}): PanelRow => ({
    panels: [{ kind: "chart", title, size: [900, height], x, layers: [...layers, ...marks], ...o }],
  });
  const spec: FigureSpec = {
    name: "audio",
    caption: "Audio, features and windows",
    title: `Audio: ${audio.audioLength} frames at ${fps} fps (${L} padded, ${
      L / clip
    } clips of ${clip}), ${layers} layers x ${dim}`,
    subtitle: `${
      audio.separated ? "vocals separated" : "no separation"
    }; dotted: clip boundaries; grey: padding`,
    rows: [
      ...envs.map((w, k) =>
        chart(w.name, 110, [
          { kind: "lines", name: w.name, x: w.env.x, y: w.env.hi, lower: w.env.lo, color: PALETTE[k] },
        ], { y: { title: "amplitude" } })
      ),
      ...layerMaps.map((m, l) =>
        chart(
          `wav2vec2 layer ${l + 1} (hidden_states[${l + 1}]): ${m.dims.length} of ${dim} dims, |x| <= ${
            round4(m.absMax)
          }`,
          90,
          [{
            kind: "heatmap",
            name: `layer ${l + 1}`,
            values: m.values,
            width: m.cols,
            height: m.dims.length,
            scale: { cmap: BLUE_RED, range: [-m.absMax, m.absMax] },
            yLabels: m.dims.map((d) => `d${d}`),
            xSpan: [0, L],
          }],
        )
      ),
      chart("window slot source frame - video frame (edges clamp)", 80, [{
        kind: "heatmap",
        name: "window offset",
        values: offsets,
        width: L,
        height: K,
        scale: { cmap: BLUE_RED, range: [-2, 2] },
        yLabels: WINDOW_OFFSETS.map((j) => `slot ${j >= 0 ? "+" : ""}${j}`),
        xSpan: [0, L],
      }], { x: { ...x, title: "video frame" } }),
    ],
  };
  spec.summary = {
    seconds: round4(audio.numSamples / RATE),
    audioLength: audio.audioLength,
    seqLen: L,
    clips: L / clip,
    layers,
    dim,
    dimsShown: layerMaps.map((m) => m.dims.length),
    waveforms: envs.map((w) => w.name),
    separated: audio.separated,
    windowMaxAbsDiff: windowCheck(audio),
  };
  return spec;
}

/** The audio figure of a prepared audio. */
export async function audioFigure(audio: PreparedAudio, o: AudioFigureOptions = {}): Promise<VizFigure> {
  return await drawFigure(await describeAudio(audio, o));
}
