/**
 * Figures of the inspect measures (src/stages/inspect), described once as panels (drawn by `drawFigure`):
 * audio -> pixels per frame and token, identity drift over clips and the reference pixels read, motion attention
 * and the seam, seams along a video, guidance by region over steps, and occlusion lip sync (silenced window x
 * frame). Each carries its numbers in `summary`.
 */
import type { AudioAttribution } from "../stages/inspect/audio_attribution.ts";
import type { GuidanceRegionRow } from "../stages/inspect/guidance_regions.ts";
import type { BankShare, IdentityDrift } from "../stages/inspect/identity.ts";
import type { Occlusion } from "../stages/inspect/occlusion.ts";
import type { MotionAttention, Seam } from "../stages/inspect/temporal.ts";
import type { F32Tensor } from "../tensor.ts";
import { BLUE_RED, VIRIDIS } from "./colormap.ts";
import { VizError } from "./figure.ts";
import type { FigureSpec, Layer, Panel } from "./panels.ts";
import { round4 } from "./plotly.ts";
import { chwToRgb, finiteRange } from "./raster.ts";

/** The portrait (3, H, W) in [-1, 1] under location maps, and the panel size. */
export interface InspectFigureOptions {
  portrait?: F32Tensor;
  cellSize?: number;
}

/** audio -> pixels of one branch: a row per frame, a panel per audio token, one colour range for all. */
export function describeAudioAttribution(
  r: AudioAttribution,
  branch: string,
  o: InspectFigureOptions = {},
): FigureSpec {
  const size = o.cellSize ?? 96;
  const HW = r.height * r.width;
  const hi = finiteRange(r.maps.data)[1] || 1;
  const scale = { cmap: VIRIDIS, range: [0, hi] as const };
  const under: Layer[] = o.portrait
    ? [{
      kind: "image",
      name: "portrait",
      image: chwToRgb(o.portrait.data, o.portrait.shape[1], o.portrait.shape[2], [-1, 1]),
      photo: true,
    }]
    : [];
  const rows = Array.from({ length: r.frames }, (_, f) => ({
    label: `frame ${f}`,
    panels: Array.from({ length: r.tokens }, (_, a): Panel => ({
      kind: "image",
      title: `token ${a}`,
      size,
      layers: [...under, {
        kind: "heatmap",
        name: `frame ${f} token ${a}`,
        values: r.maps.data.subarray((f * r.tokens + a) * HW, (f * r.tokens + a + 1) * HW),
        width: r.width,
        height: r.height,
        scale,
      }],
    })),
  }));
  return {
    name: `audio_attribution_${branch}`,
    caption: `Audio -> pixels (${branch} branch)`,
    title: `Where each audio token lands: ${branch} branch, layers, heads and steps aggregated`,
    subtitle: `weighted by the ${branch} mask and weight; viridis 0..${round4(hi)}`,
    rows,
    summary: {
      branch,
      totalPerFrame: r.total.map(round4),
      tokenShare: Array.from(
        { length: r.frames },
        (_, f) => Array.from(r.tokenShare.data.subarray(f * r.tokens, (f + 1) * r.tokens), round4),
      ),
    },
  };
}

/** What `describeIdentityDrift` draws beside the mean. */
export interface IdentityDriftOptions {
  /** Per layer (its name), the bank share per clip: a thinner line each, under the mean. */
  layers?: Readonly<Record<string, readonly number[]>>;
}

/**
 * Identity drift: the mean bank share per clip (and, when given, each layer's).
 *
 * @example
 * ```ts ignore
 * const drift = identityDrift(perClip); // perClip[c] = bankShareSeries(probes of clip c)
 * await show(await drawFigure(describeIdentityDrift(drift, { layers: { "mid_block.attentions.0": [0.5, 0.48] } })));
 * ```
 */
export function describeIdentityDrift(d: IdentityDrift, o: IdentityDriftOptions = {}): FigureSpec {
  const x = d.perClip.map((_, i) => i);
  const layers = Object.entries(o.layers ?? {});
  for (const [name, ys] of layers) {
    if (ys.length !== d.perClip.length) {
      throw new VizError(
        `identity drift: layer ${name} has ${ys.length} clips, the mean ${d.perClip.length}`,
      );
    }
  }
  return {
    name: "identity_drift",
    caption: "Identity drift",
    title: "Share of self-attention on the reference bank, per clip",
    subtitle: `slope ${round4(d.slope)} per clip; change ${round4(d.change)}`,
    rows: [{
      panels: [{
        kind: "chart",
        title: "bank share",
        size: [480, 240],
        x: { title: "clip" },
        y: { title: "mean share on reference keys" },
        layers: [
          ...layers.map(([name, y]): Layer => ({ kind: "lines", name, x, y })),
          { kind: "lines", name: "mean", x, y: d.perClip, markers: true, color: "#000000" },
        ],
      }],
    }],
    summary: {
      perClip: d.perClip.map(round4),
      slope: round4(d.slope),
      change: round4(d.change),
      ...(layers.length ? { layers: Object.fromEntries(layers.map(([n, y]) => [n, y.map(round4)])) } : {}),
    },
  };
}

/** One row of `describeBankReads`: a clip's bank shares, one per layer. */
export interface BankReadsRow {
  /** Row label, e.g. `clip 3`. */
  label: string;
  layers: readonly { layer: string; share: BankShare }[];
}

/**
 * A latent grid (height, width) of `tokens` cells with the portrait's aspect (square without one): the layers'
 * grids differ by powers of two, so the aspect names the grid.
 */
function tokenGrid(tokens: number, portrait?: F32Tensor): [number, number] {
  const aspect = portrait ? portrait.shape[2] / portrait.shape[1] : 1;
  const w = Math.round(Math.sqrt(tokens * aspect)), h = Math.round(tokens / w);
  if (w * h !== tokens) throw new VizError(`bank reads: ${tokens} tokens are not a grid of aspect ${aspect}`);
  return [h, w];
}

/**
 * Which reference pixels are read: per row (a clip) and panel (a layer), `T * mean_f received[f, k]` on the
 * reference's latent grid, over the portrait. A uniform read shows the layer's mean bank share everywhere, so
 * layers of any resolution share one colour range (least to most read pixel of all panels); above its layer's
 * share a reference pixel is read more than its part.
 *
 * @example
 * ```ts ignore
 * const rows = [0, 1].map((c) => ({ label: `clip ${c}`, layers: [{ layer: "mid_block.attentions.0", share: shares[c] }] }));
 * await show(await drawFigure(describeBankReads(rows, { portrait: hallo.image!.pixels })));
 * ```
 */
export function describeBankReads(rows: readonly BankReadsRow[], o: InspectFigureOptions = {}): FigureSpec {
  if (!rows.length || rows.some((r) => !r.layers.length)) {
    throw new VizError("bank reads: no rows or no layers");
  }
  const size = o.cellSize ?? 120;
  const maps = rows.map((r) =>
    r.layers.map(({ layer, share: s }) => {
      const [h, w] = tokenGrid(s.tokens, o.portrait);
      const acc = new Float64Array(s.tokens);
      for (let f = 0; f < s.frames; f++) {
        for (let k = 0; k < s.tokens; k++) acc[k] += s.received.data[f * s.tokens + k];
      }
      const values = Float32Array.from(acc, (v) => (v * s.tokens) / s.frames);
      return { layer, mean: s.mean, values, h, w };
    })
  );
  // One range over every panel, from the least read pixel to the most: reads are near uniform in an untrained
  // network, and a range from 0 would hide what structure there is.
  const ranges = maps.flat().map((m) => finiteRange(m.values));
  const lo = Math.min(...ranges.map((r) => r[0])), hi = Math.max(...ranges.map((r) => r[1]));
  const scale = { cmap: VIRIDIS, range: [lo, hi > lo ? hi : lo + 1] as const };
  const portrait: Layer[] = o.portrait
    ? [{
      kind: "image",
      name: "reference",
      image: chwToRgb(o.portrait.data, o.portrait.shape[1], o.portrait.shape[2], [-1, 1]),
      photo: true,
    }]
    : [];
  return {
    name: "bank_reads",
    caption: "Reference pixels read",
    title: "Which reference pixels the frames read through the bank, per layer",
    subtitle: `mass on each reference pixel x T, mean over frames (uniform = the bank share); ` +
      `viridis ${round4(lo)}..${round4(hi)}`,
    rows: rows.map((r, i) => ({
      label: r.label,
      panels: maps[i].map((m): Panel => ({
        kind: "image",
        title: m.layer,
        size,
        layers: [...portrait, {
          kind: "heatmap",
          name: `${r.label} ${m.layer}`,
          values: m.values,
          width: m.w,
          height: m.h,
          scale,
        }],
      })),
    })),
    summary: Object.fromEntries(rows.map((r, i) => [
      r.label,
      Object.fromEntries(
        maps[i].map((m) => [m.layer, { share: round4(m.mean), peak: round4(finiteRange(m.values)[1]) }]),
      ),
    ])),
  };
}

/** The frame-to-frame change along a video of clips, and where each frame's motion attention goes. */
export interface SeamProfile {
  /** Frames per clip: video frame t starts a clip when `t % framesPerClip === 0` (t > 0 is then a seam). */
  framesPerClip: number;
  /** `difference[t - 1] = d(frame t-1, frame t)` (`frameDifference`) for video frames t = 1..N-1. */
  difference: readonly number[];
  /** Per video frame: its motion modules' mass on the motion frames (`MotionAttention.motionShare`), when known. */
  motionShare?: readonly number[];
}

/**
 * Where seams are: the change between consecutive frames along the video, seams (a clip's first frame against
 * the previous clip's last) apart from changes within a clip, and under it how much each frame's motion
 * attention reads the motion frames (the previous clip's last frames).
 *
 * @example
 * ```ts ignore
 * const difference = frames.slice(1).map((_, t) => frameDifference(video, t, video, t + 1));
 * await show(await drawFigure(describeSeams({ framesPerClip: 16, difference, motionShare })));
 * ```
 */
export function describeSeams(p: SeamProfile): FigureSpec {
  const F = p.framesPerClip, n = p.difference.length + 1;
  if (!(Number.isInteger(F) && F >= 1) || n < 2) {
    throw new VizError(`seams: ${n} frames in clips of ${F}`);
  }
  if (p.motionShare && p.motionShare.length !== n) {
    throw new VizError(`seams: motion share of ${p.motionShare.length} frames for a video of ${n}`);
  }
  const seamX: number[] = [], seamY: number[] = [], withinX: number[] = [], withinY: number[] = [];
  p.difference.forEach((d, i) => {
    const t = i + 1;
    if (t % F === 0) {
      seamX.push(t);
      seamY.push(d);
    } else {
      withinX.push(t);
      withinY.push(d);
    }
  });
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const seam = mean(seamY), within = mean(withinY);
  const boundaries = seamX.map((t) => t - 0.5);
  const x = { title: "video frame", link: "frame", range: [-0.5, n - 0.5] as const };
  const panels: Panel[] = [{
    kind: "chart",
    title: "d(frame t-1, frame t)",
    size: [560, 220],
    x,
    y: { title: "mean |difference|" },
    layers: [
      { kind: "bars", name: "within a clip", x: withinX, y: withinY, color: "#1f77b4" },
      { kind: "bars", name: "seam (first frame of a clip)", x: seamX, y: seamY, color: "#d62728" },
      { kind: "vlines", name: "clip boundaries", x: boundaries },
    ],
  }];
  if (p.motionShare) {
    panels.push({
      kind: "chart",
      title: "motion attention on the motion frames",
      size: [560, 220],
      x,
      y: { title: "share", range: [0, 1] },
      layers: [
        {
          kind: "lines",
          name: "on motion frames",
          x: p.motionShare.map((_, t) => t),
          y: p.motionShare,
          markers: true,
        },
        { kind: "vlines", name: "clip boundaries", x: boundaries },
      ],
    });
  }
  return {
    name: "seams",
    caption: "Seams",
    title: "Frame-to-frame change along the video: seams against changes within a clip",
    subtitle: `mean seam ${round4(seam)} vs within-clip ${round4(within)} (ratio ${round4(seam / within)})`,
    rows: panels.map((panel) => ({ panels: [panel] })),
    summary: {
      seams: seamY.map(round4),
      seam: round4(seam),
      within: round4(within),
      ratio: round4(seam / within),
    },
  };
}

/** Motion attention (frame x frame, m = motion frames) and, when given, the seam into the clip. */
export function describeMotionAttention(
  m: MotionAttention,
  seam?: Seam,
  o: InspectFigureOptions = {},
): FigureSpec {
  const n = m.frames, M = m.motionFrames;
  const ticks = [
    ...Array.from({ length: M }, (_, i) => `m${i + 1}`),
    ...Array.from({ length: n - M }, (_, i) => `f${i}`),
  ];
  const frames = m.motionShare.map((_, i) => i);
  return {
    name: "motion_attention",
    caption: "Motion attention",
    title: "Motion modules: attention between frames and the previous clip's motion frames",
    subtitle: seam
      ? `seam ${round4(seam.seam)} vs within-clip ${round4(seam.within)} (ratio ${round4(seam.ratio)})`
      : undefined,
    rows: [{
      panels: [
        {
          kind: "matrix",
          title: "query frame x key frame",
          size: o.cellSize ?? 200,
          layers: [{
            kind: "heatmap",
            name: "attention",
            values: m.matrix.data,
            width: n,
            height: n,
            scale: { cmap: VIRIDIS, range: [0, 1] },
            xLabels: ticks,
            yLabels: ticks,
          }],
        },
        {
          kind: "chart",
          title: "mass on motion frames",
          size: [320, 200],
          x: { title: "frame" },
          y: { title: "share", range: [0, 1] },
          layers: [{ kind: "bars", name: "on motion frames", x: frames, y: m.motionShare }],
        },
      ],
    }],
    summary: {
      motionShare: m.motionShare.map(round4),
      ...(seam ? { seam: round4(seam.seam), within: round4(seam.within), ratio: round4(seam.ratio) } : {}),
    },
  };
}

/** Guidance by region: |cond - uncond| and the step's update per region over the steps (per-frame unused). */
export function describeGuidanceRegions(
  rows: readonly Pick<GuidanceRegionRow, "step" | "region" | "condDelta" | "update">[],
): FigureSpec {
  if (!rows.length) throw new VizError("guidance by region: no rows");
  const regions = [...new Set(rows.map((r) => r.region))];
  const chart = (key: "condDelta" | "update", title: string): Panel => ({
    kind: "chart",
    title,
    size: [420, 240],
    x: { title: "step", link: "step" },
    layers: regions.map((region): Layer => {
      const rs = rows.filter((r) => r.region === region);
      return {
        kind: "lines",
        name: region,
        x: rs.map((r) => r.step),
        y: rs.map((r) => r[key]),
        markers: true,
      };
    }),
  });
  return {
    name: "guidance_regions",
    caption: "Guidance by region",
    title: "Guidance by region: |cond - uncond| and the latent update inside each mask",
    rows: [{ panels: [chart("condDelta", "|cond - uncond|"), chart("update", "|next - latents|")] }],
    summary: Object.fromEntries(regions.map((region) => {
      const rs = rows.filter((r) => r.region === region);
      return [region, {
        condDelta: rs.map((r) => round4(r.condDelta)),
        update: rs.map((r) => round4(r.update)),
      }];
    })),
  };
}

/** Occlusion lip sync: the mouth change of each frame when each audio window is silenced. */
export function describeOcclusion(r: Occlusion, o: InspectFigureOptions = {}): FigureSpec {
  const W = r.windows.length, F = r.frames;
  let diag = 0, total = 0;
  r.windows.forEach((k, i) => {
    for (let f = 0; f < F; f++) {
      total += r.change.data[i * F + f];
      if (f === k) diag += r.change.data[i * F + f];
    }
  });
  const hi = finiteRange(r.change.data)[1] || 1;
  return {
    name: "occlusion",
    caption: "Causal lip sync",
    title: "Mouth change per frame (columns) when one audio window (rows) is silenced",
    subtitle: `share on the silenced window's own frame ${round4(total ? diag / total : NaN)}`,
    rows: [{
      panels: [{
        kind: "matrix",
        title: "silenced window x frame",
        size: o.cellSize ?? 240,
        layers: [{
          kind: "heatmap",
          name: "mouth change",
          values: r.change.data,
          width: F,
          height: W,
          scale: { cmap: BLUE_RED, range: [-hi, hi] },
          xLabels: Array.from({ length: F }, (_, f) => `f${f}`),
          yLabels: r.windows.map((k) => `w${k}`),
        }],
      }],
    }],
    summary: { ownFrameShare: round4(total ? diag / total : NaN), maxChange: round4(hi) },
  };
}
