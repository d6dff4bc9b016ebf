/**
 * What every notebook starts with: outputs through awaited Jupyter displays, the project's fixtures, and the
 * weights to run on (Hallo's when `HALLO_WEIGHTS` names them, else the tiny random set, said loudly).
 *
 * Outputs go only through awaited displays, each followed by a short pause: Deno's kernel can let a cell's `idle`
 * overtake its last messages (a last-expression value, console output, even an awaited display), and Jupyter then
 * drops them; measured on a 12-cell notebook: up to half the cells lost their tail without the pause, none with it.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readTinyConfigs, TINY_NOTICE } from "../tiny/configs.ts";
import { ensureTinyWeights } from "../tiny/random.ts";
import { displayBundle, type VizFigure } from "../viz/figure.ts";
import { WEIGHTS_ENV } from "../weights/locate.ts";

/** A file of the project's `fixtures/` folder (`astronaut.png`, `speech.wav`). */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url));
}

/** Where notebooks write their files: `$HALLO_NOTEBOOK_OUT`, else the project's `out/notebooks/`. */
export function notebookOut(): string {
  return resolve(
    Deno.env.get("HALLO_NOTEBOOK_OUT") ?? fileURLToPath(new URL("../../out/notebooks", import.meta.url)),
  );
}

/** Shows a raw Jupyter display bundle, then pauses in proportion to its size (see the module doc). */
export async function display(bundle: Record<string, unknown>, bytes = 0): Promise<void> {
  await Deno.jupyter.display(bundle, { raw: true });
  await new Promise((r) => setTimeout(r, 50 + bytes / 50_000));
}

/** Shows a figure: Plotly JSON for Jupyter, a PNG for viewers without Plotly. */
export function show(fig: VizFigure): Promise<void> {
  const bundle = { ...displayBundle(fig), "text/plain": fig.title };
  return display(bundle, bundle["image/png"].length + JSON.stringify(fig.plotly).length);
}

/** Shows a Markdown note. */
export function note(md: string): Promise<void> {
  return display({ "text/markdown": md, "text/plain": md }, md.length);
}

/** A Markdown table. */
export function table(head: string[], rows: unknown[][]): string {
  return [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** An integer as is, any other number with `digits` decimals. */
export function fmt(v: number, digits = 3): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

/** The weights a notebook runs on, and the size that keeps it quick. */
export interface NotebookWeights {
  weightsDir: string;
  /** A tiny random set: every picture is noise. */
  tiny: boolean;
  /** Video size: `tinySize` on the tiny set, upstream's 512 on real weights. */
  size: number;
}

/**
 * Hallo's weights when `HALLO_WEIGHTS` names them, else the tiny random set (made once, git-ignored); shows a
 * note saying which (with `TINY_NOTICE` on the tiny set).
 */
export async function notebookWeights(o: { tinySize?: number } = {}): Promise<NotebookWeights> {
  const given = Deno.env.get(WEIGHTS_ENV);
  const weightsDir = given ? resolve(given) : (await ensureTinyWeights()).dir;
  const tiny = readTinyConfigs(weightsDir) !== undefined;
  const size = tiny ? o.tinySize ?? 128 : 512;
  await note(
    tiny
      ? `**${TINY_NOTICE}.** Weights: \`${weightsDir}\`, ${size} px. Set \`${WEIGHTS_ENV}\` to Hallo's ` +
        "`pretrained_models/` folder for the real model."
      : `Hallo's weights from \`${weightsDir}\`, ${size} px as upstream.`,
  );
  return { weightsDir, tiny, size };
}
