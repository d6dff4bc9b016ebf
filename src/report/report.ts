/**
 * `writeRunReport`: an HTML report of a finished (or partial) run next to its video: the run record's facts,
 * the portrait and audio figures of the prepared inputs, motion energy per mask, the seam measure at every clip
 * boundary, the measures the run recorded while it sampled (guidance by region; identity drift when measured),
 * the run's interventions and whether it is replayable, thumbnails of the frames,
 * and any extra figures (bank, attention, steps from `captureFirstClip`), with one local plotly.js.
 */
import { dirname, relative, resolve } from "node:path";
import type { PreparedInputs, RenderResult } from "../stages/generate/run.ts";
import { TINY_NOTICE } from "../tiny/configs.ts";
import { audioFigure } from "../viz/audio.ts";
import type { VizFigure } from "../viz/figure.ts";
import { gridFigure } from "../viz/grid.ts";
import {
  readRunFrames,
  readRunMeasures,
  readRunRecord,
  recordGeometry,
  runFrame,
  type RunRecord,
} from "../stages/generate/run_dir.ts";
import { portraitFigure } from "../viz/portrait.ts";
import { type Seam, seamMeasure } from "../stages/inspect/temporal.ts";
import { f32, type F32Tensor } from "../tensor.ts";
import { type FactTable, renderReportHtml } from "./html.ts";
import { type MotionEnergy, motionEnergy } from "./measures.ts";
import { motionEnergyFigure } from "./measures_figure.ts";
import {
  guidanceFigure,
  type GuidanceSummary,
  identityFigure,
  type IdentitySummary,
  summarizeGuidance,
  summarizeIdentity,
} from "./run_measures.ts";
import { copyPlotlyNextTo, PLOTLY_FILE } from "./plotly_asset.ts";

export interface RunReportOptions {
  title?: string;
  /** Figures appended after the standard ones. */
  figures?: VizFigure[];
  /** Frames shown as thumbnails, evenly spaced (default 8). */
  thumbnails?: number;
  /** Video frame rate (25). */
  fps?: number;
  /** Extra notices at the top. */
  notices?: string[];
}

/** What `writeRunReport` wrote. */
export interface RunReport {
  html: string;
  plotly: string;
  figures: string[];
  motion: MotionEnergy;
  /** The seam measure at each boundary between finished clips (clip k after clip k-1, k >= 1). */
  seams: Seam[];
  /** Guidance by region, when the run recorded it (a guided run). */
  guidance?: GuidanceSummary;
  /** Identity drift, when the run recorded it (`--measure identity`). */
  identity?: IdentitySummary;
  /** The run's interventions (run.json `interventions`), if any. */
  interventions: unknown[];
  /** The video the report links to (absolute), if any. */
  video?: string;
}

/** Thrown when the run directory cannot be reported on. */
export class ReportError extends Error {
  override name = "ReportError";
}

/** The free fields of run.json that renderVideo and the CLI write and the report shows. */
interface ReportedFields {
  settings?: Record<string, unknown>;
  warnings?: string[];
  timings?: Record<string, number>;
  output?: string;
  tiny?: boolean;
  weightsDir?: string;
  interventions?: unknown[];
  record_steps?: boolean;
}

/** One clip of RGB24 frames (F x H x W x 3) as (1, 3, F, H, W) in [0, 1], as the seam measure takes videos. */
function clipVideo(frames: readonly Uint8Array[], width: number, height: number): F32Tensor {
  const P = width * height, F = frames.length;
  const out = new Float32Array(3 * F * P);
  frames.forEach((fr, f) => {
    for (let p = 0; p < P; p++) {
      for (let c = 0; c < 3; c++) out[(c * F + f) * P + p] = fr[p * 3 + c] / 255;
    }
  });
  return f32([1, 3, F, height, width], out);
}

/** The seam measure at every clip boundary of the finished clips (frames as written, quantised to 8 bits). */
async function runSeams(
  runDir: string,
  geo: {
    clips: number;
    frames: number;
    framesPerClip: number;
    width: number;
    height: number;
    finished: number;
  },
): Promise<Seam[]> {
  const seams: Seam[] = [];
  let clip: Uint8Array[] = [];
  let previous: F32Tensor | undefined;
  // Whole clips only (the padding of the last one included is fine: it is what the model made).
  const all = { ...geo, frames: geo.clips * geo.framesPerClip };
  for await (const fr of readRunFrames(runDir, all)) {
    clip.push(fr.slice());
    if (clip.length < geo.framesPerClip) continue;
    const video = clipVideo(clip, geo.width, geo.height);
    if (previous) seams.push(seamMeasure(previous, video));
    previous = video;
    clip = [];
  }
  return seams;
}

function fmt(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (Array.isArray(v)) return v.map(fmt).join(", ");
  return typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
}

const MASK_NAMES: Record<string, string> = { lip: "sep_lip", face: "sep_face", background: "sep_background" };

/** Guidance by region's numbers: per region, the means over every step of every measured clip. */
function guidanceTable(g: GuidanceSummary): FactTable {
  const v = (x: number | null) => x === null ? "n/a (empty mask)" : fmt(x);
  const { lip, background } = g.mean;
  const ratio = lip?.condDelta != null && background?.condDelta
    ? fmt(lip.condDelta / background.condDelta)
    : "n/a";
  return {
    title: `Guidance by region (latent grid; mean over ${
      g.rows.length / g.regions.length
    } steps x ${g.clips.length} clips)`,
    rows: [
      ...g.regions.map((r): [string, string] => [
        `${r} (${MASK_NAMES[r] ?? r})`,
        `|cond - uncond| ${v(g.mean[r].condDelta)}, update |next - latents| ${v(g.mean[r].update)}`,
      ]),
      ["lip / background |cond - uncond|", ratio],
    ],
  };
}

/** Identity drift's numbers: the bank share per clip, its slope and change. */
function identityTable(d: IdentitySummary): FactTable {
  return {
    title: "Identity drift (share of self-attention on the reference bank; mean over steps and sites)",
    rows: [
      ["sites", d.sites.join(", ")],
      ...d.perClip.map((s, i): [string, string] => [`clip ${i}`, fmt(s)]),
      ["slope (per clip)", fmt(d.slope)],
      ["change (last - first)", fmt(d.change)],
    ],
  };
}

function exists(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

/**
 * Writes the report of a run (its run directory, or `renderVideo`'s result) made from `prepared` to `out`
 * (an .html path), and plotly.js next to it. Frames are read from the run directory's finished clips.
 */
export async function writeRunReport(
  run: string | RenderResult,
  prepared: PreparedInputs,
  out: string,
  o: RunReportOptions = {},
): Promise<RunReport> {
  const runDir = resolve(typeof run === "string" ? run : run.runDir);
  const fps = o.fps ?? 25;
  let rec: RunRecord & ReportedFields;
  try {
    rec = await readRunRecord(runDir);
  } catch (e) {
    throw new ReportError((e as Error).message);
  }
  const g = recordGeometry(rec);
  // Only finished clips have frames: a partial run is reported up to its last finished clip.
  const finished = g.finished;
  if (finished === 0) throw new ReportError(`${runDir}: no finished clip yet`);
  const geo = { ...g, clips: finished, frames: Math.min(g.frames, finished * g.framesPerClip) };
  const [, S] = prepared.image.pixels.shape;
  if (S !== g.height || S !== g.width) {
    throw new ReportError(`${runDir}: frames are ${g.width}x${g.height} but the prepared image is ${S}x${S}`);
  }

  const masks = prepared.image.masks;
  const motion = await motionEnergy(readRunFrames(runDir, geo), g.width, g.height, {
    lip: masks.sepLip,
    face: masks.sepFace,
    background: masks.sepBackground,
  });
  const seams = await runSeams(runDir, geo);
  const recorded = await readRunMeasures(runDir, geo);
  const guidance = summarizeGuidance(recorded);
  const identity = summarizeIdentity(recorded);
  const guidanceFig = guidance && await guidanceFigure(guidance);
  const interventions = Array.isArray(rec.interventions) ? rec.interventions : [];
  const n = Math.min(o.thumbnails ?? 8, geo.frames);
  const picks = Array.from({ length: n }, (_, i) => Math.round((i * (geo.frames - 1)) / Math.max(1, n - 1)));
  const thumbs = await Promise.all(picks.map((i) => runFrame(runDir, i, geo)));
  const figures: VizFigure[] = [
    await portraitFigure(prepared.image),
    await audioFigure(prepared.audio, { input: prepared.audioPath, fps }),
    await motionEnergyFigure(motion, fps),
    ...(guidanceFig ? [guidanceFig] : []),
    ...(identity ? [await identityFigure(identity)] : []),
    await gridFigure({
      title: `Frames (${geo.frames} of ${g.frames})`,
      rowLabels: ["video"],
      colLabels: picks.map((i) => `frame ${i} (${(i / fps).toFixed(2)} s)`),
      cells: [thumbs],
      thumbSize: 120,
    }),
    ...(o.figures ?? []),
  ];

  const outPath = resolve(out);
  const dir = dirname(outPath);
  await Deno.mkdir(dir, { recursive: true });
  const plotly = await copyPlotlyNextTo(dir);
  const videoAbs = typeof run !== "string" && run.out ? resolve(run.out) : rec.output;
  const video = videoAbs && exists(videoAbs) ? videoAbs : undefined;
  const settings = rec.settings ?? rec.identity ?? {};
  const tables: FactTable[] = [
    {
      title: "Run",
      rows: [
        ["run directory", runDir],
        ["status", `${rec.status ?? "?"} (${finished} of ${g.clips} clips finished)`],
        ["frames", `${geo.frames} at ${fps} fps, ${g.width}x${g.height}`],
        ["video", video ?? "(none yet)"],
        ...(rec.weightsDir ? [["weights", rec.weightsDir] as [string, string]] : []),
      ],
    },
    { title: "Settings", rows: Object.entries(settings).map(([k, v]) => [k, fmt(v)]) },
    {
      title: "Inputs",
      rows: [
        ["image", `${prepared.imagePath} (sha256 ${prepared.hashes.image.slice(0, 16)}…)`],
        ["audio", `${prepared.audioPath} (sha256 ${prepared.hashes.audio.slice(0, 16)}…)`],
        ["audio frames", `${prepared.audio.audioLength} (${prepared.audio.seqLen} with padding)`],
        ["separated", String(prepared.audio.separated)],
      ],
    },
    {
      title: "Motion energy (mean |frame difference| inside each mask)",
      rows: [
        ["lip (sep_lip)", fmt(motion.mean.lip)],
        ["face (sep_face)", fmt(motion.mean.face)],
        ["background (sep_background)", fmt(motion.mean.background)],
        [
          "lip / background",
          motion.mean.background > 0 ? fmt(motion.mean.lip / motion.mean.background) : "n/a",
        ],
      ],
    },
    ...(guidance ? [guidanceTable(guidance)] : []),
    ...(identity ? [identityTable(identity)] : []),
    ...(seams.length
      ? [{
        title:
          "Seams (clip boundaries: first-frame difference to the previous clip vs frame-to-frame within)",
        rows: seams.map((m, i): [string, string] => [
          `clip ${i} -> ${i + 1}`,
          `seam ${fmt(m.seam)}, within ${fmt(m.within)}, ratio ${fmt(m.ratio)}`,
        ]),
      }]
      : []),
    ...(interventions.length || rec.record_steps
      ? [{
        title: "Inspection",
        rows: [
          ...interventions.map((iv, i): [string, string] => [`intervention ${i}`, fmt(iv)]),
          ...(rec.record_steps
            ? [["replayable", "yes: every step recorded (deno task hallo replay)"] as [string, string]]
            : []),
        ],
      }]
      : []),
    { title: "Timings (s)", rows: Object.entries(rec.timings ?? {}).map(([k, v]) => [k, fmt(v)]) },
  ];
  const notices = [
    ...(rec.tiny ? [TINY_NOTICE] : []),
    ...(o.notices ?? []),
    ...(rec.warnings ?? prepared.warnings).map((w) => `warning: ${w}`),
  ];
  const html = renderReportHtml({
    title: o.title ?? `Hallo run: ${runDir.split("/").pop()}`,
    notices,
    tables,
    video: video ? relative(dir, video) : undefined,
    figures,
    plotlySrc: PLOTLY_FILE,
  });
  await Deno.writeTextFile(outPath, html);
  return {
    html: outPath,
    plotly,
    figures: figures.map((f) => f.name),
    motion,
    seams,
    guidance,
    identity,
    interventions,
    video,
  };
}
