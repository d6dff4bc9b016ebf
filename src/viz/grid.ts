/**
 * Sweep results as a labelled grid of thumbnails (a frame of each run, or any images): rows and columns are
 * the two swept settings. Frames can be read straight from run directories.
 */
import { join } from "node:path";
import { drawFigure } from "./draw.ts";
import { VizError, type VizFigure } from "./figure.ts";
import type { FigureSpec, Panel } from "./panels.ts";
import type { RgbImage } from "./raster.ts";

export interface GridFigureSpec {
  title: string;
  rowLabels: string[];
  colLabels: string[];
  /** cells[row][col]; null leaves a hole (a run that failed or is missing). */
  cells: (RgbImage | null)[][];
  /** What the rows and columns vary (e.g. "cfg", "steps"). */
  rowTitle?: string;
  colTitle?: string;
  /** Longer side of each thumbnail (default 160). */
  thumbSize?: number;
}

/** The grid figure of a sweep, described. */
export function describeGrid(spec: GridFigureSpec): FigureSpec {
  const nR = spec.rowLabels.length, nC = spec.colLabels.length;
  if (spec.cells.length !== nR || spec.cells.some((r) => r.length !== nC)) {
    throw new VizError(
      `grid cells must be ${nR} rows of ${nC}, got [${spec.cells.map((r) => r.length).join(", ")}]`,
    );
  }
  const axisNote = [spec.rowTitle && `rows: ${spec.rowTitle}`, spec.colTitle && `columns: ${spec.colTitle}`]
    .filter(Boolean).join(", ");
  // Each column named over its first image.
  const firstRow = spec.colLabels.map((_, j) => spec.cells.findIndex((r) => r[j] !== null));
  return {
    name: "grid",
    caption: spec.title,
    title: axisNote ? `${spec.title} (${axisNote})` : spec.title,
    rows: spec.cells.map((r, i) => ({
      label: spec.rowLabels[i],
      panels: r.map((image, j): Panel | null =>
        image && {
          kind: "image",
          title: firstRow[j] === i ? spec.colLabels[j] : undefined,
          size: spec.thumbSize ?? 160,
          layers: [{
            kind: "image",
            name: `${spec.rowLabels[i]} / ${spec.colLabels[j]}`,
            image,
            photo: true,
          }],
        }
      ),
    })),
    summary: {
      rows: nR,
      cols: nC,
      missing: spec.cells.flat().filter((c) => !c).length,
      rowLabels: spec.rowLabels,
      colLabels: spec.colLabels,
    },
  };
}

/** The grid figure of a sweep. */
export async function gridFigure(spec: GridFigureSpec): Promise<VizFigure> {
  return await drawFigure(describeGrid(spec));
}

/** What a run directory's run.json says about its frames. */
export interface RunGeometry {
  width: number;
  height: number;
  clips: number;
  /** Frames of the video (audio_length, at most clips x frames per clip). */
  frames: number;
  framesPerClip: number;
}

/** Reads a run directory's geometry (run.json and the first clip's size). */
export async function runGeometry(runDir: string): Promise<RunGeometry> {
  const file = join(runDir, "run.json");
  let rec: { identity?: { size?: number[] }; clips?: number; audio_length?: number };
  try {
    rec = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    throw new VizError(`${file}: cannot read the run record (${(e as Error).message.split("\n")[0]})`);
  }
  const size = rec.identity?.size;
  if (
    !Array.isArray(size) || size.length !== 2 || !Number.isInteger(rec.clips) ||
    !Number.isInteger(rec.audio_length)
  ) {
    throw new VizError(`${file}: not a run record (identity.size, clips, audio_length missing)`);
  }
  const [height, width] = size;
  let bytes: number;
  try {
    bytes = (await Deno.stat(join(runDir, "clips", "0000.rgb"))).size;
  } catch {
    throw new VizError(`${runDir}: no finished clip (clips/0000.rgb)`);
  }
  const framesPerClip = bytes / (width * height * 3);
  if (!Number.isInteger(framesPerClip) || framesPerClip < 1) {
    throw new VizError(`${runDir}: clips/0000.rgb has ${bytes} bytes, not whole ${width}x${height} frames`);
  }
  return {
    width,
    height,
    clips: rec.clips!,
    frames: Math.min(rec.audio_length!, rec.clips! * framesPerClip),
    framesPerClip,
  };
}

/** Frame `index` of a run directory's video as an RGB image. */
export async function runFrame(runDir: string, index: number, g?: RunGeometry): Promise<RgbImage> {
  const geo = g ?? await runGeometry(runDir);
  if (!Number.isInteger(index) || index < 0 || index >= geo.frames) {
    throw new VizError(`${runDir}: frame ${index} out of range (${geo.frames} frames)`);
  }
  const clip = Math.floor(index / geo.framesPerClip);
  const size = geo.width * geo.height * 3;
  const file = join(runDir, "clips", `${String(clip).padStart(4, "0")}.rgb`);
  let f: Deno.FsFile;
  try {
    f = await Deno.open(file);
  } catch {
    throw new VizError(`${file}: missing (the run has not finished clip ${clip})`);
  }
  try {
    await f.seek((index % geo.framesPerClip) * size, Deno.SeekMode.Start);
    const data = new Uint8Array(size);
    let got = 0;
    while (got < size) {
      const n = await f.read(data.subarray(got));
      if (n === null) throw new VizError(`${file}: truncated`);
      got += n;
    }
    return { width: geo.width, height: geo.height, data };
  } finally {
    f.close();
  }
}

/** Every frame of a run directory's video, in order (whole clips read one at a time). */
export async function* readRunFrames(runDir: string, g?: RunGeometry): AsyncGenerator<Uint8Array> {
  const geo = g ?? await runGeometry(runDir);
  const size = geo.width * geo.height * 3;
  let left = geo.frames;
  for (let c = 0; c < geo.clips && left > 0; c++) {
    const file = join(runDir, "clips", `${String(c).padStart(4, "0")}.rgb`);
    let all: Uint8Array;
    try {
      all = await Deno.readFile(file);
    } catch {
      throw new VizError(`${file}: missing (the run has not finished clip ${c})`);
    }
    for (let i = 0; i < all.length / size && left > 0; i++, left--) {
      yield all.subarray(i * size, (i + 1) * size);
    }
  }
}
