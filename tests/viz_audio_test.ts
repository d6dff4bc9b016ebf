/**
 * The audio figure of the bundled speech clip through tiny random wav2vec2 (no separation): the waveform on
 * the video-frame axis, one feature heatmap per layer of the right size and values, the window table with
 * its clamped edges, clip boundaries and padding.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { prepareAudio } from "../src/stages/audio/prepare.ts";
import { ensureTinyWeights } from "../src/tiny/random.ts";
import { audioFigure, describeAudio, envelope, mostVaryingDims } from "../src/viz/audio.ts";
import { assertRenderersAgree } from "./helpers/figure_agreement.ts";
import { VizError } from "../src/viz/figure.ts";
import { f32 } from "../src/tensor.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SPEECH = join(ROOT, "fixtures", "speech.wav");

type Heat = { name: string; z: number[][]; x: number[]; y: string[]; zmin: number; zmax: number };

Deno.test("audioFigure: waveform, per-layer features and window alignment", async () => {
  const work = await Deno.makeTempDir({ prefix: "viz-audio-" });
  try {
    const tiny = (await ensureTinyWeights(join(work, "tiny"))).dir;
    const audio = await prepareAudio(SPEECH, {
      weightsDir: tiny,
      separate: false,
      cacheDir: join(work, "cache"),
    });
    const [L, layers, dim] = audio.embedding.shape;
    const fig = await audioFigure(audio, { input: SPEECH });
    const { data, layout } = fig.plotly;

    // Waveform envelope: x in video frames up to the audio's end, y in [-1, 1], max >= min.
    const [lo, hi] = data.slice(0, 2) as unknown as { x: number[]; y: number[]; fill?: string }[];
    assert.equal(hi.fill, "tonexty");
    const secs = audio.numSamples / 16000;
    assert.ok(Math.abs(hi.x[hi.x.length - 1] - secs * 25) < 0.5, `last x ${hi.x[hi.x.length - 1]}`);
    assert.ok(hi.x.length <= 600 && hi.x.length > 100);
    for (let i = 0; i < hi.y.length; i++) {
      assert.ok(lo.y[i] <= hi.y[i] && lo.y[i] >= -1 && hi.y[i] <= 1);
    }
    assert.ok(Math.max(...hi.y) > 0.3, "speech is audible in the envelope");

    // One heatmap per wav2vec2 layer: dims x frames, symmetric colour range, values = the embedding.
    const heat = data.filter((t) => t.type === "heatmap") as unknown as Heat[];
    assert.equal(heat.length, layers + 1);
    for (let l = 0; l < layers; l++) {
      const h = heat[l];
      assert.equal(h.name, `layer ${l + 1}`);
      assert.equal(h.z.length, dim);
      assert.ok(h.z.every((r) => r.length === L));
      assert.equal(h.zmin, -h.zmax);
      assert.deepEqual(h.y, Array.from({ length: dim }, (_, d) => `d${d}`));
      for (const [f, d] of [[0, 0], [L - 1, dim - 1], [17, 5]]) {
        const want = audio.embedding.data[(f * layers + l) * dim + d];
        assert.ok(
          Math.abs(h.z[d][f] - want) <= Math.abs(want) * 1e-3 + 1e-6,
          `layer ${l} frame ${f} dim ${d}`,
        );
      }
    }

    // Windows: slot offsets -2..+2, clamped at both ends of the padded sequence.
    const w = heat[layers];
    assert.equal(w.z.length, 5);
    assert.deepEqual(w.y, ["slot -2", "slot -1", "slot +0", "slot +1", "slot +2"]);
    assert.ok(w.z[2].every((v) => v === 0));
    assert.deepEqual([w.z[0][0], w.z[0][1], w.z[0][2], w.z[0][10]], [0, -1, -2, -2]);
    assert.deepEqual([w.z[4][L - 1], w.z[4][L - 2], w.z[4][L - 3]], [0, 1, 2]);
    assert.equal(fig.summary.windowMaxAbsDiff, 0, "the windows are the embedding gathered by the table");

    // Clip boundaries every 16 frames and the padding past audio_length, on every row.
    const shapes = layout.shapes as { type: string; x0: number; x1: number; xref: string }[];
    const first = shapes.filter((s) => s.xref === "x");
    assert.deepEqual(
      first.filter((s) => s.type === "line").map((s) => s.x0),
      [16, 32, 48, 64].filter((b) => b < L),
    );
    const pad = first.find((s) => s.type === "rect")!;
    assert.deepEqual([pad.x0, pad.x1], [audio.audioLength, L]);
    assert.equal(shapes.length, (layers + 2) * (L / 16));
    assert.deepEqual(fig.summary.dimsShown, Array(layers).fill(dim));
    assert.equal(fig.summary.clips, L / 16);

    // The PNG draws the same rows: every feature and window pixel is the colour of the Plotly trace's value.
    const agree = await assertRenderersAgree(await describeAudio(audio, { input: SPEECH }));
    assert.deepEqual([agree.panels, agree.charts, agree.heatmaps], [layers + 2, layers + 2, layers + 1]);

    // Without an input file, only the features and windows.
    const bare = await audioFigure(audio);
    assert.equal(bare.plotly.data.filter((t) => t.type === "scatter").length, 0);
    await assert.rejects(
      () => audioFigure({ ...audio, windows: f32([L - 1, 5, layers, dim]) }),
      VizError,
    );
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("audio helpers: envelope bins and most varying dims", () => {
  const s = Float32Array.from({ length: 16000 }, (_, i) => (i < 8000 ? 0 : (i % 2 ? 0.5 : -0.25)));
  const e = envelope(s, 2, 25);
  assert.deepEqual(e.lo, [0, -0.25]);
  assert.deepEqual(e.hi, [0, 0.5]);
  assert.deepEqual(e.x, [6.25, 18.75]);
  // dims 1 and 3 vary, 0 and 2 are constant.
  const emb = f32([4, 1, 4], Float32Array.from([1, 0, 1, 5, 1, 2, 1, -5, 1, 0, 1, 5, 1, 2, 1, -5]));
  assert.deepEqual(mostVaryingDims(emb, 0, 2), [1, 3]);
  assert.deepEqual(mostVaryingDims(emb, 0, 8), [0, 1, 2, 3]);
});
