/**
 * The `sweep` CLI on tiny random weights at 128 px and 1 s of speech (2 clips): a 2x2 grid over cfg (both
 * guidance modes) and the lip weight shares preparation, networks and the first clip's reference-UNet bank
 * (asserted from run.json), a cached-bank run gives exactly the frames of a plain `animate` run, and the
 * grid video, sweep.json (with motion energies) and report.html are written. Bad options fail fast.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureTinyWeights } from "../src/tiny/random.ts";
import { encodeWavPcm16, readWav } from "../src/stages/audio/wav.ts";
import { probeMedia } from "../src/stages/video/mp4.ts";
import { runFiles } from "../src/stages/generate/run_dir.ts";
import { gridLayout, renderLabel } from "../src/stages/video/grid.ts";
import { maskWeights, MotionEnergyMeter } from "../src/stages/video/motion_energy.ts";
import { sweepLabel, sweepSettings, type SweepSummary } from "../src/stages/generate/sweep.ts";
import { u8Image } from "../src/stages/image/types.ts";
import { runCli } from "./helpers/cli.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const IMAGE = join(ROOT, "fixtures", "astronaut.png");
const work = await Deno.makeTempDir({ prefix: "hallo-sweep-" });
globalThis.addEventListener("unload", () => Deno.removeSync(work, { recursive: true }));
const tiny = (await ensureTinyWeights(join(work, "tiny"))).dir;
const env = { HALLO_GRAPH_CACHE: join(work, "graphs") };

// The first second of speech.wav: 25 frames, 2 clips of 16.
const SPEECH = join(work, "speech1s.wav");
{
  const w = await readWav(join(ROOT, "fixtures", "speech.wav"));
  const s = w.channels[0].subarray(0, w.sampleRate);
  const i16 = Int16Array.from(s, (v) => Math.max(-32768, Math.min(32767, Math.round(v * 32768))));
  await Deno.writeFile(SPEECH, encodeWavPcm16(i16, 1, w.sampleRate));
}

const hallo = (cmd: string, args: string[]) => runCli(cmd, args, { env });

const common = ["--image", IMAGE, "--audio", SPEECH, "--weights", tiny, "--size", "128", "--threads", "1"];

Deno.test("sweep: bad options fail fast with one line naming the problem", async () => {
  const out = join(work, "bad");
  await Deno.writeTextFile(join(work, "afile"), "x");
  const cases: [string[], RegExp][] = [
    [["--out", out, "--cfg", "1,,2"], /--cfg has an empty item in '1,,2'/],
    [["--out", out, "--lip-weight", "0.5,"], /--lip-weight has an empty item/],
    [["--out", out, "--cfg=-1"], /--cfg must be >= 0, got -1/],
    [["--out", out, "--cfg", "2,-0.5"], /--cfg must be >= 0, got -0\.5/],
    [["--out", out, "--cfg", "2,x"], /--cfg must be a number, got 'x'/],
    [["--out", out, "--pose-weight", "1,1"], /--pose-weight lists 1 twice/],
    [["--out", out, "--steps", "0"], /--steps must be >= 1/],
    [["--out", join(work, "afile")], /--out .*afile: cannot be written/],
    [[], /--out is required/],
  ];
  // Two at a time: the machine is shared.
  const results: Awaited<ReturnType<typeof hallo>>[] = [];
  for (let i = 0; i < cases.length; i += 2) {
    results.push(
      ...await Promise.all(cases.slice(i, i + 2).map(([extra]) => hallo("sweep", [...common, ...extra]))),
    );
  }
  for (const [k, [extra, re]] of cases.entries()) {
    const r = results[k];
    assert.equal(r.code, 2, `${extra.join(" ")} should be a usage error: ${r.err}`);
    assert.match(r.err, re);
    assert.equal(r.err.trim().split("\n").length, 1, `one line expected, got: ${r.err}`);
    assert.ok(r.seconds < 15, `failed after ${r.seconds} s: too late`);
  }
  await assert.rejects(Deno.stat(out), "a failed sweep must not create its folder");
});

Deno.test("sweep: 2x2 shares preparation, networks and the clip-0 bank; grid, sweep.json and report", async () => {
  const dir = join(work, "sweep");
  // A plain animate run of the last setting (every bank computed) runs beside the sweep: one thread each.
  const plain = join(work, "plain.mp4");
  const [r, a] = await Promise.all([
    hallo("sweep", [...common, "--out", dir, "--steps", "1", "--cfg", "1,2", "--lip-weight", "0.5,1.5"]),
    hallo("animate", [...common, "--out", plain, "--steps", "1", "--cfg", "2", "--lip-weight", "1.5"]),
  ]);
  assert.equal(r.code, 0, r.err);
  const labels = [
    "cfg1_pose1_face1_lip0.5",
    "cfg1_pose1_face1_lip1.5",
    "cfg2_pose1_face1_lip0.5",
    "cfg2_pose1_face1_lip1.5",
  ];

  // Preparation once, networks once per guidance mode, clip 0's bank from the cache after the first run of a mode.
  const rec = await Promise.all(
    labels.map(async (l) => JSON.parse(await Deno.readTextFile(join(dir, `${l}.run`, "run.json")))),
  );
  const shared = rec.map((
    x,
  ) => [x.timings.prepare_shared, x.timings.models_shared, x.timings.reference_unet_cached_clips]);
  assert.deepEqual(shared, [[false, false, 0], [true, true, 1], [true, false, 0], [true, true, 1]]);
  assert.ok(rec[0].timings.prepare_image_s > 0 && rec[0].timings.denoising_unet_session_s > 0);
  for (const x of rec.slice(1)) assert.equal(x.timings.prepare_image_s + x.timings.prepare_audio_s, 0);
  assert.ok(rec[2].timings.denoising_unet_session_s > 0, "the guidance networks were loaded for run 3");
  assert.equal(rec[3].timings.denoising_unet_session_s, 0);
  rec.forEach((x, i) => {
    assert.equal(x.status, "complete");
    assert.equal(x.identity.lipWeight, [0.5, 1.5][i % 2]);
    assert.equal(x.finished.length, 2);
    assert.equal(x.settings.lipWeight, [0.5, 1.5][i % 2]);
    assert.equal(x.clips, 2);
  });

  // Each video and the grid: h264, audio_length frames; the grid tiles 2x2 at 128 px plus label bands.
  for (const l of labels) assert.equal((await probeMedia(join(dir, `${l}.mp4`))).frames, 25);
  const sum: SweepSummary = JSON.parse(await Deno.readTextFile(join(dir, "sweep.json")));
  assert.deepEqual(sum.runs.map((x) => x.label), labels);
  assert.deepEqual(sum.axes, { cfg: [1, 2], poseWeight: [1], faceWeight: [1], lipWeight: [0.5, 1.5] });
  const grid = await probeMedia(join(dir, "grid.mp4"));
  assert.equal(grid.videoCodec, "h264");
  assert.equal(grid.audioCodec, "aac");
  assert.equal(grid.frames, 25);
  const g = sum.grid;
  assert.deepEqual([g.cols, g.rows, g.tileWidth, g.tileHeight], [2, 2, 128, 128]);
  assert.ok(g.bandHeight >= 20 && g.bandHeight % 2 === 0, `label band ${g.bandHeight}`);
  assert.deepEqual([grid.width, grid.height], [256, 2 * (128 + g.bandHeight)]);
  for (const run of sum.runs) {
    for (const k of ["lip", "face", "background"] as const) {
      const e = run.motionEnergy[k];
      assert.equal(e.perFrame.length, 24);
      assert.ok(e.mean !== null && e.mean > 0 && e.mean < 1, `${run.label} ${k} ${e.mean}`);
    }
  }
  const html = await Deno.readTextFile(join(dir, "report.html"));
  for (const l of labels) assert.ok(html.includes(`href="${l}.mp4"`), `report links ${l}.mp4`);
  assert.ok(html.includes(`src="grid.mp4"`));

  // The cached-bank run gives exactly the frames of a plain animate run (which computes every bank).
  assert.equal(a.code, 0, a.err);
  for (let c = 0; c < 2; c++) {
    const x = await Deno.readFile(runFiles.frames(join(work, "plain.run"), c));
    const y = await Deno.readFile(runFiles.frames(join(dir, `${labels[3]}.run`), c));
    assert.ok(x.length > 0 && x.every((v, i) => v === y[i]), `clip ${c} differs from the uncached run`);
  }
});

Deno.test("sweep: an --out folder where an output would overwrite the image is refused before any work", async () => {
  const dir = join(work, "clash");
  await Deno.mkdir(dir, { recursive: true });
  const image = join(dir, "cfg3.5_pose1_face1_lip1.mp4");
  await Deno.copyFile(IMAGE, image);
  const before = await Deno.readFile(image);
  const r = await hallo("sweep", [...common.map((a) => a === IMAGE ? image : a), "--out", dir]);
  assert.equal(r.code, 2, r.err);
  const last = r.err.trim().split("\n").pop()!;
  assert.match(last, /^sweep: --out cfg3\.5_pose1_face1_lip1\.mp4 .* is the --image file; refusing/);
  assert.ok(!r.err.includes("preparing"), "refused before preparing");
  assert.deepEqual(await Deno.readFile(image), before);
});

Deno.test("sweep: settings, labels and grid layout", () => {
  const s = sweepSettings({ cfg: [1, 3.5], poseWeight: [1], faceWeight: [0.5, 1], lipWeight: [2] }, {
    steps: 3,
    seed: 7,
  });
  assert.deepEqual(s.map(sweepLabel), [
    "cfg1_pose1_face0.5_lip2",
    "cfg1_pose1_face1_lip2",
    "cfg3.5_pose1_face0.5_lip2",
    "cfg3.5_pose1_face1_lip2",
  ]);
  assert.ok(s.every((x) => x.steps === 3 && x.seed === 7));
  assert.throws(() => sweepSettings({ cfg: [2, 2], poseWeight: [1], faceWeight: [1], lipWeight: [1] }, s[0]));
  // 12 tiles of 512: 4 columns within 1024 px -> 256 px tiles; nothing is upscaled; sizes stay even.
  const l = gridLayout(12, 512, 512);
  assert.deepEqual([l.cols, l.rows, l.tileWidth, l.tileHeight, l.width], [4, 3, 256, 256, 1024]);
  assert.equal(gridLayout(1, 128, 96).tileWidth, 128);
  const odd = gridLayout(3, 511, 301, { maxWidth: 1000 });
  assert.ok([odd.tileWidth, odd.tileHeight, odd.bandHeight].every((x) => x % 2 === 0));
});

Deno.test("sweep: label bands carry text; motion energy weights differences by the mask", async () => {
  const band = await renderLabel(["cfg 3.5  pose 1"], 128, 20, 12);
  assert.equal(band.length, 128 * 20 * 3);
  assert.ok(band.filter((v) => v > 200).length > 100, "no text drawn (no font?)");

  // 2x1 frames; mask covers only the left pixel. Left changes by 30 (all channels), right by 90.
  const left = maskWeights(u8Image(2, 1, 1, Uint8Array.from([255, 0])), 2, 1);
  const all = maskWeights(u8Image(1, 1, 1, Uint8Array.from([255])), 2, 1);
  const m = new MotionEnergyMeter({ left, all });
  m.push(Uint8Array.from([0, 0, 0, 0, 0, 0]));
  m.push(Uint8Array.from([30, 30, 30, 90, 90, 90]));
  m.push(Uint8Array.from([30, 30, 30, 90, 90, 90]));
  const r = m.result();
  assert.deepEqual(r.left.perFrame, [0.117647, 0]); // 30/255
  assert.deepEqual(r.all.perFrame, [0.235294, 0]); // 60/255
  assert.equal(r.left.mean, 0.058824);
  const empty = new MotionEnergyMeter({ none: maskWeights(u8Image(1, 1, 1), 2, 1) });
  empty.push(new Uint8Array(6));
  empty.push(new Uint8Array(6));
  assert.equal(empty.result().none.mean, null);
});
