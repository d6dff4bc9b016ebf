/**
 * The report page: run facts as tables, the video, and every figure as Plotly JSON drawn by the local
 * plotly.js, with its PNG as the fallback (shown until Plotly has drawn, and kept when it cannot). The page
 * records its own errors (window errors, failed resources, console.error) into `window.__reportErrors` and
 * sets `body[data-status]` when every figure is done, so a headless browser can check it.
 */
import { Buffer } from "node:buffer";
import type { VizFigure } from "../viz/figure.ts";

/** A table of facts: rows of [name, value]. */
export interface FactTable {
  title: string;
  rows: [string, string][];
}

export interface ReportPage {
  title: string;
  /** Lines shown prominently (tiny weights, warnings). */
  notices: string[];
  tables: FactTable[];
  /** Video file, relative to the report. */
  video?: string;
  figures: VizFigure[];
  /** plotly.js, relative to the report. */
  plotlySrc: string;
}

/** Escapes text for HTML. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** JSON safe inside a <script> element (no `</script>`, no `<!--`). */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(
    /\u2029/g,
    "\\u2029",
  );
}

/** Element ids from figure names (unique per page). */
function ids(figures: VizFigure[]): string[] {
  const seen = new Map<string, number>();
  return figures.map((f) => {
    const base = f.name.replace(/[^A-Za-z0-9_-]/g, "-") || "figure";
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    return n ? `${base}-${n}` : base;
  });
}

const STYLE = `
body { font-family: DejaVu Sans, Helvetica, Arial, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
td { border: 1px solid #ddd; padding: 3px 8px; vertical-align: top; } td:first-child { color: #555; }
.notice { background: #fff3cd; border: 1px solid #e0c36b; padding: 6px 10px; margin: 6px 0; font-size: 13px; }
.plot { overflow-x: auto; }
section.drawn img.fallback { display: none; }
img.fallback { max-width: 100%; border: 1px solid #eee; }
#report-errors:empty { display: none; }
#report-errors { color: #a00; white-space: pre-wrap; }
`;

/** Runs before plotly.js, so that its failures are recorded too. */
const RECORDER = `
window.__reportErrors = [];
(function () {
  var record = function (m) { window.__reportErrors.push(String(m)); };
  window.addEventListener("error", function (e) {
    var t = e.target;
    record(t && t !== window && (t.src || t.href) ? "failed to load " + (t.src || t.href) : e.message);
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    record("unhandled rejection: " + (e.reason && e.reason.message ? e.reason.message : e.reason));
  });
  var original = console.error.bind(console);
  console.error = function () {
    record(Array.prototype.map.call(arguments, String).join(" "));
    original.apply(null, arguments);
  };
})();
`;

/** Draws every figure, then sets body[data-status] ("done", "errors" or "no-plotly"). */
const DRAW = `
(async function () {
  var finish = function (status) {
    document.getElementById("report-errors").textContent = window.__reportErrors.join("\\n");
    document.body.dataset.status = status;
  };
  if (!window.Plotly) {
    window.__reportErrors.push("plotly.js did not load: the PNG figures are shown instead");
    finish("no-plotly");
    return;
  }
  var divs = document.querySelectorAll("div.plot");
  for (var i = 0; i < divs.length; i++) {
    var div = divs[i];
    try {
      var fig = JSON.parse(document.getElementById("json-" + div.dataset.fig).textContent);
      await Plotly.newPlot(div, fig.data, fig.layout, { displaylogo: false, responsive: false });
      div.dataset.drawn = "1";
      div.closest("section").classList.add("drawn");
    } catch (e) {
      window.__reportErrors.push("figure " + div.dataset.fig + ": " + (e && e.message ? e.message : e));
    }
  }
  finish(window.__reportErrors.length ? "errors" : "done");
})();
`;

/** The report's HTML. */
export function renderReportHtml(page: ReportPage): string {
  const figIds = ids(page.figures);
  const tables = page.tables.map((t) =>
    `<h2>${escapeHtml(t.title)}</h2><table>${
      t.rows.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`).join("")
    }</table>`
  ).join("\n");
  const figures = page.figures.map((f, i) => {
    const id = figIds[i];
    const png = Buffer.from(f.png).toString("base64");
    return `<section class="figure" id="fig-${id}">
<h2>${escapeHtml(f.title)}</h2>
<div class="plot" id="plot-${id}" data-fig="${id}"></div>
<img class="fallback" alt="${escapeHtml(f.title)} (static)" src="data:image/png;base64,${png}">
<script type="application/json" id="json-${id}">${scriptJson(f.plotly)}</script>
</section>`;
  }).join("\n");
  const video = page.video
    ? `<h2>Video</h2><video controls preload="none" src="${
      escapeHtml(page.video)
    }" style="max-width:512px"></video>`
    : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(page.title)}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
<script>${RECORDER}</script>
<script src="${escapeHtml(page.plotlySrc)}"></script>
</head>
<body>
<h1>${escapeHtml(page.title)}</h1>
${page.notices.map((n) => `<div class="notice">${escapeHtml(n)}</div>`).join("\n")}
<pre id="report-errors"></pre>
${video}
${tables}
${figures}
<script>${DRAW}</script>
</body>
</html>
`;
}
