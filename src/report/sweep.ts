/**
 * The sweep's HTML report: one self-contained page (no scripts, no external assets) beside the videos it
 * links to: the grid video, a table of the settings with links to each run's mp4 and run.json, what each
 * run shared, and the motion energies (mean, and a per-frame sparkline drawn as inline SVG).
 */
import { join } from "node:path";
import type { SweepSummary } from "../stages/generate/sweep.ts";

const esc = (s: unknown) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );

const fmt = (x: number | null | undefined, digits = 4) =>
  x === null || x === undefined ? "–" : x.toFixed(digits);

/** A tiny line chart of `values` scaled to `max` (shared across rows so they compare). */
function sparkline(values: number[], max: number, w = 160, h = 28): string {
  if (values.length < 2 || !(max > 0)) return "";
  const pts = values.map((v, i) =>
    `${(i / (values.length - 1) * (w - 2) + 1).toFixed(1)},${(h - 1 - v / max * (h - 2)).toFixed(1)}`
  );
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><polyline fill="none" stroke="#c33" ` +
    `stroke-width="1" points="${pts.join(" ")}"/></svg>`;
}

/** The report's HTML for a finished sweep (links relative to the sweep folder). */
export function sweepReportHtml(s: SweepSummary): string {
  const regions = ["lip", "face", "background"] as const;
  const maxLip = Math.max(0, ...s.runs.flatMap((r) => r.motionEnergy.lip.perFrame));
  const rows = s.runs.map((r) => {
    const e = regions.map((k) => `<td class="n">${fmt(r.motionEnergy[k].mean)}</td>`).join("");
    const shared = [
      r.shared.prepare ? "prep" : "",
      r.shared.models ? "models" : "",
      r.shared.referenceUNetCachedClips ? `ref-bank x${r.shared.referenceUNetCachedClips}` : "",
    ].filter(Boolean).join(", ") || "–";
    return `<tr><td><a href="${esc(r.out)}">${esc(r.label)}</a></td>` +
      `<td class="n">${r.settings.cfg}</td><td class="n">${r.settings.poseWeight}</td>` +
      `<td class="n">${r.settings.faceWeight}</td><td class="n">${r.settings.lipWeight}</td>` +
      `<td class="n">${r.frames}</td><td class="n">${fmt(r.timings.generate_s as number, 1)}</td>` +
      `<td>${esc(shared)}</td>${e}<td>${sparkline(r.motionEnergy.lip.perFrame, maxLip)}</td>` +
      `<td><a href="${esc(r.runDir)}/run.json">run.json</a></td></tr>`;
  }).join("\n");
  const timings = Object.entries(s.timings).map(([k, v]) => `${esc(k)} ${v.toFixed(2)}`).join(" · ");
  const warnings = s.warnings.length
    ? `<h2>Warnings</h2><ul>${s.warnings.map((w) => `<li>${esc(w)}</li>`).join("")}</ul>`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hallo sweep</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f5f5f5; padding: 0 3px; }
</style></head><body>
<h1>Sweep: ${s.runs.length} settings</h1>
<p>Image <code>${esc(s.image)}</code> (sha256 ${esc(s.hashes.image.slice(0, 12))}…), audio <code>${
    esc(s.audio)
  }</code> (sha256 ${
    esc(s.hashes.audio.slice(0, 12))
  }…); ${s.size}x${s.size}, ${s.steps} DDIM steps, seed ${s.seed};
weights <code>${esc(s.weightsDir)}</code>.</p>
<video src="${esc(s.grid.file)}" controls width="${s.grid.width}" style="max-width:100%"></video>
<h2>Runs</h2>
<table><thead><tr><th>run</th><th>cfg</th><th>pose</th><th>face</th><th>lip</th><th>frames</th>
<th>generate s</th><th>shared</th><th>lip energy</th><th>face energy</th><th>background energy</th>
<th>lip energy per frame</th><th>record</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<p>Motion energy: for consecutive frames, the mean absolute RGB difference (averaged over channels, /255),
weighted per pixel by the 64x64 blurred lip, face (without lips) or background mask that the UNet reads,
bilinearly upsampled to the frame size. A higher lip weight should raise the lip energy relative to the
others; sparklines share one scale. “shared”: work this run reused from an earlier run of the sweep
(preparation, loaded networks, reference-UNet bank of clip 0).</p>
<h2>Timings (s)</h2><p>${timings}</p>
${warnings}
</body></html>
`;
}

/**
 * Writes `report.html` into the sweep folder `dir` and records it in `dir/sweep.json` (`report`, and
 * `timings.report_s`); returns the summary as recorded.
 */
export async function writeSweepReport(dir: string, s: SweepSummary): Promise<SweepSummary> {
  const t0 = performance.now();
  const report = "report.html";
  await Deno.writeTextFile(join(dir, report), sweepReportHtml(s));
  const out: SweepSummary = {
    ...s,
    report,
    timings: { ...s.timings, report_s: (performance.now() - t0) / 1000 },
  };
  await Deno.writeTextFile(join(dir, "sweep.json"), JSON.stringify(out, null, 2));
  return out;
}
