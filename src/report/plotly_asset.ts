/**
 * The one local copy of plotly.js a report loads: found in the project's npm packages (plotly.js-dist, as
 * mapped in deno.json) and copied next to the report, so the report opens offline and from file://.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** File name of the copy next to a report. */
export const PLOTLY_FILE = "plotly.js";

/** Thrown when plotly.js-dist is not installed. */
export class PlotlyMissingError extends Error {
  override name = "PlotlyMissingError";
}

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

/** Candidates, most specific first: Deno's resolution of the mapped name, node's, then a node_modules scan. */
function candidates(): string[] {
  const out: string[] = [];
  try {
    const url = import.meta.resolve("plotly.js-dist");
    if (url.startsWith("file:")) out.push(fileURLToPath(url));
  } catch { /* not mapped or not installed */ }
  try {
    out.push(createRequire(import.meta.url).resolve("plotly.js-dist/plotly.js"));
  } catch { /* not installed where node looks */ }
  // node_modules/.deno/plotly.js-dist@<version>/node_modules/plotly.js-dist/plotly.js, from here upwards.
  for (let dir = dirname(fileURLToPath(import.meta.url));; dir = dirname(dir)) {
    const store = join(dir, "node_modules", ".deno");
    try {
      for (const e of Deno.readDirSync(store)) {
        if (e.name.startsWith("plotly.js-dist@")) {
          out.push(join(store, e.name, "node_modules", "plotly.js-dist", "plotly.js"));
        }
      }
    } catch { /* no store here */ }
    if (dirname(dir) === dir) break;
  }
  return out;
}

/** Path of the installed plotly.js bundle; a PlotlyMissingError says how to install it. */
export function plotlyBundlePath(): string {
  const found = candidates().find(isFile);
  if (!found) {
    throw new PlotlyMissingError(
      "plotly.js-dist is not installed (node_modules); run `deno install` in the project folder",
    );
  }
  return found;
}

/** Copies plotly.js next to the report (once: an equal-sized copy is kept); returns the copy's path. */
export async function copyPlotlyNextTo(reportDir: string): Promise<string> {
  const src = plotlyBundlePath();
  const dst = join(reportDir, PLOTLY_FILE);
  const size = (await Deno.stat(src)).size;
  let existing = -1;
  try {
    existing = (await Deno.stat(dst)).size;
  } catch { /* not there yet */ }
  if (existing !== size) {
    const tmp = `${dst}.tmp-${Deno.pid}`;
    await Deno.copyFile(src, tmp);
    await Deno.rename(tmp, dst);
  }
  return dst;
}
