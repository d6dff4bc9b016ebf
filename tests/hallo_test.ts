/**
 * The front door on tiny random weights (64x64, 4-frame clips, 2 steps): `Hallo.animate` and the same clips
 * walked stage by stage (`clip`, `bank`, `denoise`, `decode`) give the same frames, clip 1 included (its motion
 * frames from clip 0's video, its noise the second draw of the seed); the events of a video say which clip and
 * step they belong to; misuse is a named one-line error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  fixture,
  GenerationError,
  Hallo,
  type HalloEvent,
  initialNoise,
  latentShape,
  manualSeed,
  stepProgress,
  videoToFrames,
} from "../mod.ts";
import { runFiles } from "../src/stages/generate/run_dir.ts";
import { tinyWeightsDir } from "./helpers/tiny_temp.ts";

const STEPS = 2;

Deno.test("Hallo: animate and the stage-by-stage walk give the same clips; events carry clip and step", async () => {
  const dir = await tinyWeightsDir();
  const hallo = await Hallo.load(dir, { size: 64, frames: 4, threads: 1 });
  const work = await Deno.makeTempDir({ prefix: "hallo-front-door-" });
  try {
    const prepared = await hallo.prepare(fixture("astronaut.png"), fixture("speech.wav"), { cacheDir: work });
    const events: HalloEvent[] = [];
    const res = await hallo.animate(fixture("astronaut.png"), fixture("speech.wav"), {
      prepared,
      out: join(work, "v.mp4"),
      steps: STEPS,
      maxClips: 2,
      onEvent: (e) => events.push(e),
    });
    assert.equal(res.computed, 2);
    assert.equal(res.complete, false);
    const clips = hallo.clips;
    assert.equal(res.clips, clips);

    // Events: STEPS step events per clip then its clip event, each with its place; progress counts up.
    assert.deepEqual(
      events.map((e) =>
        `${e.kind} ${e.clip?.index}/${e.clip?.count}${e.kind === "step" ? ` ${e.step.index}` : ""}`
      ),
      [
        `step 0/${clips} 0`,
        `step 0/${clips} 1`,
        `clip 0/${clips}`,
        `step 1/${clips} 0`,
        `step 1/${clips} 1`,
        `clip 1/${clips}`,
      ],
    );
    const done = events.map(stepProgress).filter((p) => p !== undefined).map((p) => p!.done);
    assert.deepEqual(done, [1, 2, 3, 4]);
    assert.equal(stepProgress(events[0])!.total, clips * STEPS);
    for (const e of events) {
      if (e.kind === "step") assert.deepEqual(e.step.next.shape, latentShape(hallo.models));
    }

    // The same two clips by hand.
    let previous;
    for (const i of [0, 1]) {
      const clip = await hallo.clip(i, previous);
      const it = hallo.denoise(clip, { steps: STEPS, seed: 42 });
      let r = await it.next();
      for (; !r.done; r = await it.next()) assert.deepEqual(r.value.latents.shape, [1, 4, 4, 8, 8]);
      previous = await hallo.decode(r.value);
      const frames = videoToFrames(previous);
      const mine = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
      frames.forEach((f, k) => mine.set(f, k * f.length));
      assert.deepEqual(mine, await Deno.readFile(runFiles.frames(res.runDir, i)), `clip ${i} frames`);
    }

    // Clip i's noise is the (i+1)-th draw of the seed: the one function the sampler and resume share.
    const g = manualSeed(7);
    const shape = latentShape(hallo.models);
    initialNoise(g, shape);
    assert.deepEqual(hallo.noise(1, 7).data, initialNoise(g, shape).data);

    await assert.rejects(() => hallo.clip(1), GenerationError);
    await assert.rejects(() => hallo.clip(clips), /out of range/);
  } finally {
    await hallo.release();
    await Deno.remove(work, { recursive: true });
  }
});
