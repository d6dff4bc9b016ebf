/**
 * Pure visualiser parts on synthetic data: colormaps, PCA, the sweep grid figure (Plotly cells, labels,
 * PNG pixels), run-directory frame reading, motion energy per mask with known answers, the report's HTML
 * escaping and the Jupyter bundle.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import sharp from "sharp";
import { BLUE_RED, colormapTable, plotlyColorscale, VIRIDIS } from "../src/viz/colormap.ts";
import { displayBundle, VizError } from "../src/viz/figure.ts";
import { describeGrid, gridFigure } from "../src/viz/grid.ts";
import { readRunFrames, runFrame, runGeometry } from "../src/stages/generate/run_dir.ts";
import { assertRenderersAgree } from "./helpers/figure_agreement.ts";
import { pcaRgb } from "../src/viz/pca.ts";
import { rgbImage } from "../src/viz/raster.ts";
import { motionEnergy } from "../src/report/measures.ts";
import { renderReportHtml, scriptJson } from "../src/report/html.ts";
import { ReportError, writeRunReport } from "../src/report/report.ts";
import type { PreparedInputs } from "../src/stages/generate/run.ts";
import { makeRunIdentity, RunDir, runFiles } from "../src/stages/generate/run_dir.ts";
import { u8Image } from "../src/stages/image/types.ts";

Deno.test("colormaps: anchors reproduced at the ends, same scale for Plotly", () => {
  for (const cmap of [VIRIDIS, BLUE_RED]) {
    const lut = colormapTable(cmap);
    assert.deepEqual([...lut.slice(0, 3)], [...cmap[0][1]]);
    assert.deepEqual([...lut.slice(255 * 3)], [...cmap[cmap.length - 1][1]]);
    const scale = plotlyColorscale(cmap);
    assert.equal(scale.length, cmap.length);
    assert.equal(scale[0][1], `rgb(${cmap[0][1].join(",")})`);
  }
  // BLUE_RED's middle is its white anchor.
  const mid = colormapTable(BLUE_RED).slice(127 * 3, 128 * 3);
  assert.ok(mid.every((v) => v > 240), `middle ${mid}`);
});

Deno.test("pcaRgb: finds the dominant direction and orders the components", () => {
  const n = 500, c = 6;
  const x = new Float32Array(n * c);
  for (let r = 0; r < n; r++) {
    const a = Math.sin(r * 0.37) * 10, b = Math.cos(r * 1.3) * 3, e = Math.sin(r * 2.1) * 0.5;
    // Direction 1 = (1, 1, 0, ...)/sqrt2 with std ~7, direction 2 = e3 with std ~2, then small noise.
    x[r * c] = a / Math.SQRT2;
    x[r * c + 1] = a / Math.SQRT2;
    x[r * c + 2] = b;
    x[r * c + 3] = e;
  }
  const p = pcaRgb(x, n, c);
  assert.equal(p.explained.length, 3);
  assert.ok(p.explained[0] > p.explained[1] && p.explained[1] > p.explained[2], `${p.explained}`);
  assert.ok(
    Math.abs(p.explained.reduce((s, v) => s + v, 0) - 1) < 1e-6,
    "three directions carry all variance",
  );
  // The first projection is the signal a, up to sign: |Pearson correlation| ~ 1.
  let sxy = 0, sxx = 0, syy = 0;
  for (let r = 0; r < n; r++) {
    const u = p.projections[r * 3], v = Math.sin(r * 0.37);
    sxy += u * v;
    sxx += u * u;
    syy += v * v;
  }
  assert.ok(Math.abs(sxy / Math.sqrt(sxx * syy)) > 0.999, `correlation ${sxy / Math.sqrt(sxx * syy)}`);
  assert.equal(p.rgb.length, n * 3);
  assert.throws(() => pcaRgb(x, n + 1, c), /rows/);
});

Deno.test("gridFigure: cells, labels, holes and PNG pixels", async () => {
  const colors: [number, number, number][] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [
    0,
    255,
    255,
  ]];
  const cells = [
    [rgbImage(40, 30, colors[0]), rgbImage(40, 30, colors[1]), rgbImage(40, 30, colors[2])],
    [rgbImage(40, 30, colors[3]), null, rgbImage(40, 30, colors[4])],
  ];
  const fig = await gridFigure({
    title: "sweep",
    rowLabels: ["cfg 1", "cfg 3.5"],
    colLabels: ["steps 10", "steps 20", "steps 40"],
    cells,
    rowTitle: "cfg",
    colTitle: "steps",
    thumbSize: 80,
  });
  assert.equal(fig.name, "grid");
  assert.equal(fig.summary.missing, 1);
  const images = fig.plotly.data.filter((t) => t.type === "image");
  assert.equal(images.length, 5);
  for (const t of images) assert.match(String(t.source), /^data:image\/jpeg;base64,/);
  assert.equal(images[4].name, "cfg 3.5 / steps 40");
  const texts = (fig.plotly.layout.annotations as { text: string }[]).map((a) => a.text);
  for (const l of ["cfg 1", "cfg 3.5", "steps 10", "steps 20", "steps 40"]) assert.ok(texts.includes(l), l);
  assert.match(String((fig.plotly.layout.title as { text: string }).text), /rows: cfg, columns: steps/);
  // Every image trace has its own axes.
  assert.equal(new Set(images.map((t) => t.xaxis)).size, 5);
  // PNG: every colour is there (thumbs scaled to 80 px wide), and white where the hole is.
  const { data, info } = await sharp(fig.png).raw().toBuffer({ resolveWithObject: true });
  const has = (c: number[]) => {
    for (let i = 0; i < data.length; i += info.channels) {
      if (data[i] === c[0] && data[i + 1] === c[1] && data[i + 2] === c[2]) return true;
    }
    return false;
  };
  for (const c of colors) assert.ok(has(c), `colour ${c} missing from the PNG`);
  assert.ok(info.width >= 3 * 80 && info.height >= 2 * 60);
  // The Plotly thumbnails (JPEG) are the PNG's pixels.
  const agree = await assertRenderersAgree(
    describeGrid({ title: "sweep", rowLabels: ["a", "b"], colLabels: ["1", "2", "3"], cells, thumbSize: 80 }),
  );
  assert.deepEqual([agree.panels, agree.images], [5, 5]);
  await assert.rejects(
    () => gridFigure({ title: "x", rowLabels: ["a"], colLabels: ["b", "c"], cells: [[null]] }),
    VizError,
  );
});

Deno.test("displayBundle: Plotly JSON and a base64 PNG; Jupyter display symbol", async () => {
  const fig = await gridFigure({
    title: "one",
    rowLabels: ["r"],
    colLabels: ["c"],
    cells: [[rgbImage(8, 8)]],
  });
  const b = displayBundle(fig);
  assert.deepEqual(Object.keys(b).sort(), ["application/vnd.plotly.v1+json", "image/png"]);
  assert.equal(b["application/vnd.plotly.v1+json"], fig.plotly);
  assert.deepEqual([...Buffer.from(b["image/png"], "base64").subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  const display = (fig as unknown as Record<symbol, () => unknown>)[Symbol.for("Jupyter.display")];
  assert.deepEqual(display(), b);
  // plotly.js itself is never inlined.
  assert.ok(!JSON.stringify(b).includes("Plotly.newPlot"));
});

/** A run directory written through its owner module (identity of no real run: readers do not look at it). */
async function syntheticRun(
  dir: string,
  layout: { clips: number; audioLength: number; width: number; height: number; framesPerClip: number },
  clip: (c: number) => Uint8Array,
  finished = layout.clips,
): Promise<void> {
  const identity = makeRunIdentity({ image: "0", audio: "0" }, {
    faceExpandRatio: 1.2,
    size: layout.width,
    separate: true,
    device: "cpu",
    dtype: "float32",
    steps: 1,
    cfg: 1,
    poseWeight: 1,
    faceWeight: 1,
    lipWeight: 1,
    seed: 0,
  }, dir);
  const run = await RunDir.open(dir, { identity });
  await run.begin({ ...layout, motionFrames: 1 });
  const motion = new Float32Array(3 * layout.width * layout.height);
  for (let c = 0; c < finished; c++) await run.writeClip(c, clip(c), motion, 0);
  await run.close();
}

Deno.test("run directory frames: geometry, single frames, all frames, clear errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "viz-run-" });
  try {
    const W = 4, H = 2, F = 3;
    await syntheticRun(dir, { clips: 2, audioLength: 5, width: W, height: H, framesPerClip: F }, (c) => {
      const buf = new Uint8Array(F * W * H * 3);
      for (let f = 0; f < F; f++) buf.fill(10 * (c * F + f), f * W * H * 3, (f + 1) * W * H * 3);
      return buf;
    });
    const g = await runGeometry(dir);
    assert.deepEqual(g, { width: W, height: H, clips: 2, frames: 5, framesPerClip: F, finished: 2 });
    assert.equal((await runFrame(dir, 4)).data[0], 40);
    const all = [];
    for await (const f of readRunFrames(dir)) all.push(f[0]);
    assert.deepEqual(all, [0, 10, 20, 30, 40]);
    await assert.rejects(() => runFrame(dir, 5), /frame 5 out of range \(5 frames\)/);
    // A clip damaged on disk is refused, never shown.
    await Deno.writeFile(runFiles.frames(dir, 1), new Uint8Array(F * W * H * 3));
    await assert.rejects(() => runFrame(dir, 4), /0001\.rgb does not match its sha256/);
    await Deno.writeTextFile(join(dir, "run.json"), "{}");
    await assert.rejects(() => runGeometry(dir), /run\.json: not a run record/);
    await assert.rejects(() => runGeometry(join(dir, "nope")), /nope\/run\.json: cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("motionEnergy: mask-weighted mean absolute frame difference, known values", async () => {
  const S = 64;
  const full = u8Image(S, S, 1, new Uint8Array(S * S).fill(255));
  const none = u8Image(S, S, 1);
  const left = u8Image(S, S, 1, Uint8Array.from({ length: S * S }, (_, i) => (i % S < S / 2 ? 255 : 0)));
  const right = u8Image(S, S, 1, Uint8Array.from({ length: S * S }, (_, i) => (i % S < S / 2 ? 0 : 255)));
  const f0 = new Uint8Array(S * S * 3).fill(100);
  const f1 = f0.slice();
  for (let p = 0; p < S * S; p++) if (p % S < S / 2) f1.fill(151, p * 3, p * 3 + 3); // +51 = 0.2 on the left
  const me = await motionEnergy([f0, f1, f1], S, S, { lip: left, face: full, background: right });
  assert.equal(me.frames, 3);
  assert.equal(me.lip.length, 2);
  assert.ok(Math.abs(me.lip[0] - 0.2) < 1e-6, `lip ${me.lip[0]}`);
  assert.ok(Math.abs(me.face[0] - 0.1) < 1e-6, `face ${me.face[0]}`);
  assert.ok(Math.abs(me.background[0]) < 1e-6, `background ${me.background[0]}`);
  assert.deepEqual([me.lip[1], me.face[1], me.background[1]], [0, 0, 0]);
  assert.ok(Math.abs(me.mean.lip - 0.1) < 1e-6);
  // An empty mask gives 0, not NaN; a wrong frame size is an error.
  const e = await motionEnergy([f0, f1], S, S, { lip: none, face: none, background: none });
  assert.deepEqual(e.lip, [0]);
  await assert.rejects(
    () => motionEnergy([f0, f0.subarray(3)], S, S, { lip: full, face: full, background: full }),
    /frame 1 has/,
  );
});

Deno.test("report HTML: text escaped, figure JSON cannot end its script element", () => {
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
  const fig = {
    name: "a b",
    title: "<b>t</b>",
    plotly: { data: [{ type: "scatter", name: "</script><script>alert(1)</script>" }], layout: {} },
    png,
    summary: {},
  };
  const html = renderReportHtml({
    title: "R & D",
    notices: ["<warn>"],
    tables: [{ title: "T", rows: [["k", "<v>"]] }],
    figures: [fig, fig],
    plotlySrc: "plotly.js",
  });
  assert.ok(html.includes("<title>R &amp; D</title>"));
  assert.ok(html.includes("&lt;warn&gt;") && html.includes("&lt;v&gt;"));
  assert.equal(html.match(/<\/script>/g)?.length, html.match(/<script/g)?.length, "balanced script elements");
  assert.ok(!html.includes("alert(1)</script>"));
  assert.ok(html.includes('id="plot-a-b"') && html.includes('id="plot-a-b-1"'), "unique ids");
  assert.equal(html.match(/<script src=/g)?.length, 1, "one plotly.js");
  assert.equal(JSON.parse(scriptJson({ s: "</script>" })).s, "</script>");
});

Deno.test("writeRunReport: a folder that is not a run directory is a one-line ReportError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "viz-norun-" });
  try {
    const noInputs = {} as PreparedInputs;
    await assert.rejects(() => writeRunReport(dir, noInputs, join(dir, "r.html")), (e: Error) => {
      assert.ok(e instanceof ReportError);
      assert.match(e.message, /run\.json/);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
    await syntheticRun(
      dir,
      { clips: 1, audioLength: 4, width: 8, height: 8, framesPerClip: 4 },
      () => new Uint8Array(4 * 8 * 8 * 3),
      0,
    );
    await assert.rejects(() => writeRunReport(dir, noInputs, join(dir, "r.html")), /no finished clip/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
