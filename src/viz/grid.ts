/**
 * Sweep results as a labelled grid of thumbnails (a frame of each run, or any images): rows and columns are
 * the two swept settings. Frames can be read straight from run directories (`runFrame`, re-exported from
 * the run directory's module).
 */
import { type Panel, renderCanvas } from "./canvas.ts";
import { type PlotlyTrace, VizError, type VizFigure, vizFigure } from "./figure.ts";
import { type CellSpec, imageTrace, plotlyGrid } from "./plotly.ts";
import { fitTo, imageDataUri, type RgbImage } from "./raster.ts";

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

/** The grid figure of a sweep. */
export async function gridFigure(spec: GridFigureSpec): Promise<VizFigure> {
  const nR = spec.rowLabels.length, nC = spec.colLabels.length;
  if (spec.cells.length !== nR || spec.cells.some((r) => r.length !== nC)) {
    throw new VizError(
      `grid cells must be ${nR} rows of ${nC}, got [${spec.cells.map((r) => r.length).join(", ")}]`,
    );
  }
  const side = spec.thumbSize ?? 160;
  const thumbs = spec.cells.map((r) => r.map((c) => (c ? fitTo(c, side) : null)));
  const axisNote = [spec.rowTitle && `rows: ${spec.rowTitle}`, spec.colTitle && `columns: ${spec.colTitle}`]
    .filter(Boolean).join(", ");
  const cells: CellSpec[] = [];
  const where: [number, number][] = [];
  thumbs.forEach((r, i) =>
    r.forEach((t, j) => {
      if (!t) return;
      cells.push({ row: i, col: j, kind: "image", title: i === 0 ? spec.colLabels[j] : undefined });
      where.push([i, j]);
    })
  );
  const grid = plotlyGrid(nR, nC, cells, {
    title: axisNote ? `${spec.title} (${axisNote})` : spec.title,
    width: Math.max(500, 150 + nC * (side + 12)),
    height: 110 + nR * (side + 30),
    rowLabels: spec.rowLabels,
  });
  const data: PlotlyTrace[] = await Promise.all(
    where.map(async ([i, j], k) =>
      imageTrace(
        await imageDataUri(thumbs[i][j]!, "jpeg"),
        grid.axes[k],
        `${spec.rowLabels[i]} / ${spec.colLabels[j]}`,
      )
    ),
  );
  const rows: (Panel | null)[][] = thumbs.map((r) => r.map((t) => (t ? { image: t } : null)));
  const png = await renderCanvas({
    title: spec.title,
    subtitle: axisNote || undefined,
    sections: [{ rows, rowLabels: spec.rowLabels, colLabels: spec.colLabels }],
  });
  return vizFigure("grid", spec.title, { data, layout: grid.layout }, png, {
    rows: nR,
    cols: nC,
    missing: spec.cells.flat().filter((c) => !c).length,
    rowLabels: spec.rowLabels,
    colLabels: spec.colLabels,
  });
}

// Run directories are read by their owner module, which verifies every clip it hands out.
export { readRunFrames, runFrame, type RunGeometry, runGeometry } from "../stages/generate/run_dir.ts";
