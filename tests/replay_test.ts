/**
 * Replay on tiny random weights (64x64, 4-frame clips, 2 steps): a run made with `recordSteps` (and an
 * intervention at step 1) holds what re-runs any step of any clip; replaying step s of clip c reproduces the
 * recorded `noise_pred` and next latents bit for bit (the run's intervention re-applied), a patched replay
 * differs, and `deno task hallo replay` writes the step with its probes, exiting 1 once the recording is
 * altered (a NaN anywhere in it is never accepted).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fixture, Hallo } from "../mod.ts";
import type { F32Tensor } from "../src/tensor.ts";
import { readRunStep, runFiles } from "../src/stages/generate/run_dir.ts";
import { readSafetensors } from "../src/weights/safetensors.ts";
import { withFileSource } from "../src/weights/source.ts";
import { tinyWeightsDir } from "./helpers/tiny_temp.ts";
import { runCli } from "./helpers/cli.ts";

const STEPS = 2;
const LIP = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2";
const bytes = (t: F32Tensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/** Overwrites the float32 at byte `at` of `file`. */
async function writeF32(file: string, at: number, value: number): Promise<void> {
  const f = await Deno.open(file, { read: true, write: true });
  try {
    await f.seek(at, Deno.SeekMode.Start);
    await f.write(new Uint8Array(new Float32Array([value]).buffer));
  } finally {
    f.close();
  }
}

const cli = (args: string[]) => runCli("replay", args);

Deno.test("replay: every recorded step of every clip comes back bit for bit; the CLI writes it and judges it", async () => {
  const dir = await tinyWeightsDir();
  const hallo = await Hallo.load(dir, { size: 64, frames: 4, threads: 1 });
  const work = await Deno.makeTempDir({ prefix: "hallo-replay-" });
  try {
    const prepared = await hallo.prepare(fixture("astronaut.png"), fixture("speech.wav"), { cacheDir: work });
    const res = await hallo.animate(fixture("astronaut.png"), fixture("speech.wav"), {
      prepared,
      out: join(work, "v.mp4"),
      steps: STEPS,
      maxClips: 2,
      recordSteps: true,
      interventions: [{ kind: "audio-shift", by: 1, steps: [1] }],
    });
    const runDir = res.runDir;
    // Clip 0's first recorded latents are its seeded noise.
    assert.deepEqual(bytes((await readRunStep(runDir, 0, 0)).latents), bytes(hallo.noise(0, 42)));

    for (const clip of [0, 1]) {
      for (let step = 0; step < STEPS; step++) {
        const r = await hallo.replay(runDir, clip, step);
        assert.equal(r.tolerance, 0);
        assert.equal(r.maxDifference, 0, `clip ${clip} step ${step}`);
        assert.deepEqual(bytes(r.noisePred), bytes(r.recorded.noisePred));
        assert.deepEqual(bytes(r.nextLatents), bytes(r.recorded.nextLatents));
      }
    }
    const patched = await hallo.replay(runDir, 1, 0, { interventions: [{ kind: "audio-silence" }] });
    assert.ok(patched.maxDifference > 0, "a patched replay differs from the recording");

    // The CLI: the step and a probe written, difference 0 on this device.
    const out = join(work, "step.safetensors");
    const ok = await cli([
      "--run-dir",
      runDir,
      "--clip",
      "1",
      "--step",
      "1",
      "--out",
      out,
      "--probe",
      LIP,
      "--threads",
      "1",
    ]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /max \|replay - recorded\| = 0 \(tolerance 0;/);
    const names = withFileSource(out, (src) => [...readSafetensors(src).tensors.keys()].sort());
    assert.deepEqual(names, ["latents", "next_latents", "noise_pred", `probe.${LIP}.probs`]);

    // An altered recording (one value of clip 1's recorded noise_pred at step 1) fails the check.
    const file = runFiles.steps(runDir, 1);
    const at = withFileSource(file, (src) => readSafetensors(src).tensors.get("noise_pred.1")!.offset);
    await writeF32(file, at, 1234.5);
    const bad = await cli([
      "--run-dir",
      runDir,
      "--clip",
      "1",
      "--step",
      "1",
      "--out",
      out,
      "--threads",
      "1",
    ]);
    assert.equal(bad.code, 1, bad.out + bad.err);
    assert.match(bad.err, /^replay: clip 1 step 1 differs from the recording by \S+ > tolerance 0 /);
    // A NaN in the recording, even first of many values, is a difference no tolerance accepts.
    await writeF32(file, at, NaN);
    assert.ok(Number.isNaN((await hallo.replay(runDir, 1, 1)).maxDifference));

    const usage = await cli(["--clip", "0", "--step", "0", "--out", out]);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /--run-dir is required/);
  } finally {
    await hallo.release();
    await Deno.remove(work, { recursive: true });
  }
});
