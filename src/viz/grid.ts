/**
 * Sweep results as a labelled grid of thumbnails (a frame of each run, or any images): rows and columns are
 * the two swept settings (frames of run directories come from `runFrame` of the run directory's module).
 */
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
