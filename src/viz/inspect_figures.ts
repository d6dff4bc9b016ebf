/**
 * Figures of the inspect measures (src/stages/inspect), described once as panels (drawn by `drawFigure`):
 * audio -> pixels per frame and token, identity drift over clips, motion attention and the seam, guidance by
 * region over steps, and occlusion lip sync (silenced window x frame). Each carries its numbers in `summary`.
 */
import type { AudioAttribution } from "../stages/inspect/audio_attribution.ts";
import type { GuidanceRegionRow } from "../stages/inspect/guidance_regions.ts";
import type { IdentityDrift } from "../stages/inspect/identity.ts";
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

/** Identity drift: the mean bank share per clip. */
export function describeIdentityDrift(d: IdentityDrift): FigureSpec {
  const x = d.perClip.map((_, i) => i);
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
        layers: [{ kind: "lines", name: "bank share", x, y: d.perClip, markers: true }],
      }],
    }],
    summary: { perClip: d.perClip.map(round4), slope: round4(d.slope), change: round4(d.change) },
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
