/**
 * Replay across devices on tiny random weights (64 px, 4-frame clips, 2 steps): a step recorded on the CPU
 * replays on WebGPU (Mesa lavapipe) with a difference that is not zero (the kernels differ) yet within the
 * cross-device tolerance (1e-2 of the recorded values' largest magnitude in fp32), and `deno task hallo replay`
 * exits 0; once a recorded value is moved by twice that tolerance the CLI exits 1 with one line naming the
 * clip, the step and the difference. An fp16 run (its run.json says so) replays in fp16 on WebGPU within the
 * same 1e-2. Fails, never skips, where WebGPU does not start.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fixture, Hallo, REPLAY_RELATIVE_TOLERANCE } from "../mod.ts";
import { readRunStep, runFiles } from "../src/stages/generate/run_dir.ts";
import { readSafetensors } from "../src/weights/safetensors.ts";
import { withFileSource } from "../src/weights/source.ts";
import { WeightStore } from "../src/weights/store.ts";
import { runCli } from "./helpers/cli.ts";
import { withEnv } from "./helpers/env.ts";
import { tinyWeightsDir } from "./helpers/tiny_temp.ts";
import { requireWebGpu } from "./helpers/webgpu.ts";

// Clip 1 at its first step: where CPU and WebGPU differed most when measured (9.4e-4 of the largest value).
const CLIP = 1;
const STEP = 0;
const LINE =
  /max \|replay - recorded\| = (\S+) \(tolerance (\S+) = (\S+) x max \|recorded\| (\S+); recorded on cpu float32\)/;

function maxAbs(t: Float32Array): number {
  return t.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

/** `deno task hallo replay` of CLIP/STEP on WebGPU; its graphs compiled into `graphs`. */
async function replayOnWebGpu(runDir: string, out: string, graphs: string, clip = CLIP, step = STEP) {
  return await runCli("replay", [
    ...["--run-dir", runDir, "--out", out, "--clip", String(clip), "--step", String(step)],
    ...["--device", "webgpu", "--threads", "1"],
  ], { env: { HALLO_GRAPH_CACHE: graphs } });
}

Deno.test("replay: a CPU-recorded step replays on WebGPU within the fp32 tolerance; moved past it, the CLI exits 1", async () => {
  await requireWebGpu();
  const dir = await tinyWeightsDir();
  const work = await Deno.makeTempDir({ prefix: "hallo-replay-devices-" });
  const hallo = await Hallo.load(dir, { size: 64, frames: 4, threads: 1, cacheDir: work });
  try {
    const res = await hallo.animate(fixture("astronaut.png"), fixture("speech.wav"), {
      out: join(work, "v.mp4"),
      steps: 2,
      maxClips: 2,
      recordSteps: true,
    });
    const runDir = res.runDir;
    const rec = await readRunStep(runDir, CLIP, STEP);
    const scale = Math.max(maxAbs(rec.noisePred.data), maxAbs(rec.nextLatents.data));
    const tolerance = REPLAY_RELATIVE_TOLERANCE.float32 * scale;

    const out = join(work, "step.safetensors");
    const graphs = join(work, "graphs");
    const ok = await replayOnWebGpu(runDir, out, graphs);
    assert.equal(ok.code, 0, ok.out + ok.err);
    const m = ok.out.match(LINE);
    assert.ok(m, ok.out);
    const [diff, tol, rel, printedScale] = m.slice(1).map(Number);
    assert.equal(rel, REPLAY_RELATIVE_TOLERANCE.float32);
    assert.equal(printedScale, scale);
    assert.equal(tol, tolerance);
    assert.ok(diff > 0, "WebGPU's kernels differ from the CPU's: a zero difference means it ran elsewhere");
    assert.ok(diff <= tol, `${diff} > ${tol}`);
    // The printed difference is the written step's against the recording.
    const written = WeightStore.open(out);
    const seen = Math.max(
      maxAbsDiff(written.readF32("noise_pred"), rec.noisePred.data),
      maxAbsDiff(written.readF32("next_latents"), rec.nextLatents.data),
    );
    assert.equal(seen, diff);

    // The recorded noise_pred moved by twice the tolerance at one value: the same replay now fails.
    const file = runFiles.steps(runDir, CLIP);
    const at = withFileSource(file, (src) => readSafetensors(src).tensors.get(`noise_pred.${STEP}`)!.offset);
    const f = await Deno.open(file, { read: true, write: true });
    await f.seek(at, Deno.SeekMode.Start);
    await f.write(new Uint8Array(new Float32Array([rec.noisePred.data[0] + 2 * tolerance]).buffer));
    f.close();
    const bad = await replayOnWebGpu(runDir, out, graphs);
    assert.equal(bad.code, 1, bad.out + bad.err);
    const lines = bad.err.split("\n").filter((l) => l.startsWith("replay: "));
    assert.equal(lines.length, 1, bad.err);
    const b = lines[0].match(
      /^replay: clip 1 step 0 differs from the recording by (\S+) > tolerance (\S+) \(recorded on cpu float32, replayed on webgpu float32\)$/,
    );
    assert.ok(b, lines[0]);
    const [badDiff, badTol] = b.slice(1).map(Number);
    assert.ok(badDiff >= 2 * tolerance - diff && badDiff > badTol, lines[0]);
  } finally {
    await hallo.release();
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("replay: a CPU-recorded fp16 step replays in fp16 on WebGPU within the fp16 tolerance (1e-2)", async () => {
  await requireWebGpu();
  const dir = await tinyWeightsDir();
  const work = await Deno.makeTempDir({ prefix: "hallo-replay-fp16-" });
  const graphs = join(work, "graphs");
  try {
    const res = await withEnv({ HALLO_GRAPH_CACHE: graphs }, async () => {
      const hallo = await Hallo.load(dir, {
        size: 64,
        frames: 4,
        threads: 1,
        cacheDir: work,
        dtype: "float16",
      });
      try {
        return await hallo.animate(fixture("astronaut.png"), fixture("speech.wav"), {
          out: join(work, "v.mp4"),
          steps: 2,
          maxClips: 1,
          recordSteps: true,
        });
      } finally {
        await hallo.release();
      }
    });
    // Step 1 of clip 0: where the two devices differed most when measured (2.3e-3 of the largest value).
    const rec = await readRunStep(res.runDir, 0, 1);
    const scale = Math.max(maxAbs(rec.noisePred.data), maxAbs(rec.nextLatents.data));
    const ok = await replayOnWebGpu(res.runDir, join(work, "step.safetensors"), graphs, 0, 1);
    assert.equal(ok.code, 0, ok.out + ok.err);
    const m = ok.out.match(
      /max \|replay - recorded\| = (\S+) \(tolerance (\S+) = (\S+) x max \|recorded\| (\S+); recorded on cpu float16\)/,
    );
    assert.ok(m, ok.out);
    const [diff, tol, rel, printedScale] = m.slice(1).map(Number);
    assert.equal(rel, REPLAY_RELATIVE_TOLERANCE.float16);
    assert.equal(printedScale, scale);
    assert.ok(diff > 0, "WebGPU's kernels differ from the CPU's: a zero difference means it ran elsewhere");
    assert.ok(diff <= tol, `${diff} > ${tol}`);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
