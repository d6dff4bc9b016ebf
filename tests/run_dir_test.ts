/**
 * The run directory without any network: a resume of another identity is a one-line error naming what
 * differs and writes nothing; the lock turns a second opener away and takes over the lock of a dead pid;
 * clips are verified by their sha256 (a zero-filled clip of the right size is computed again, never read);
 * outputs over inputs are refused; a failed run or resume leaves no empty run directory behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkRunPaths,
  identityDifference,
  lockIsStale,
  makeRunIdentity,
  readRunFrames,
  readRunMeasures,
  RunDir,
  RunDirError,
  RunDirLockedError,
  runFiles,
  type RunIdentity,
  type RunLayout,
  RunPathError,
} from "../src/stages/generate/run_dir.ts";

const OPTIONS = {
  faceExpandRatio: 1.2,
  size: 8,
  separate: true,
  device: "cpu",
  dtype: "float32",
  steps: 4,
  cfg: 3.5,
  poseWeight: 1,
  faceWeight: 1,
  lipWeight: 1,
  seed: 42,
};
const HASHES = { image: "a".repeat(64), audio: "b".repeat(64) };
const LAYOUT: RunLayout = {
  clips: 3,
  audioLength: 10,
  width: 4,
  height: 2,
  framesPerClip: 4,
  motionFrames: 2,
};
const FRAME_BYTES = 4 * 4 * 2 * 3;
const MOTION_FLOATS = 2 * 3 * 4 * 2;

const tempDir = () => Deno.makeTempDir({ prefix: "hallo-rundir-" });

/** Deterministic clip contents: clip c, byte i -> (c * 31 + i) mod 251 + 1, never zero. */
function clipBytes(c: number): { frames: Uint8Array; motion: Float32Array } {
  return {
    frames: Uint8Array.from({ length: FRAME_BYTES }, (_, i) => ((c * 31 + i) % 251) + 1),
    motion: Float32Array.from({ length: MOTION_FLOATS }, (_, i) => c + i / 100),
  };
}

/** A run directory with `n` finished clips of `identity`, closed. */
async function recordedRun(dir: string, identity: RunIdentity, n: number): Promise<void> {
  const run = await RunDir.open(dir, { identity });
  const start = await run.begin(LAYOUT, { command: ["test"] });
  assert.equal(start, 0);
  for (let c = 0; c < n; c++) {
    const { frames, motion } = clipBytes(c);
    await run.writeClip(c, frames, motion, 0.1);
  }
  if (n === LAYOUT.clips) await run.complete();
  await run.close();
}

/** Files under `dir` with their bytes, to prove nothing changed. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name), r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(p, r);
      else out[r] = Array.from(await Deno.readFile(p)).join(",");
    }
  };
  await walk(dir, "");
  return out;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

const identity = (o: Partial<RunIdentity> = {}): RunIdentity => ({
  ...makeRunIdentity(HASHES, OPTIONS, "/nonexistent-weights"),
  ...o,
});

Deno.test("resume with a different image, audio, face expand ratio or separation model: one line naming it; nothing written", async () => {
  const root = await tempDir();
  try {
    const dir = join(root, "r.run");
    await recordedRun(dir, identity(), 2);
    const before = await snapshot(dir);
    const cases: [Partial<RunIdentity>, RegExp][] = [
      [
        { image: "c".repeat(64) },
        /was made with a different --image \(sha256 aaaaaaaaaaaa… there, cccccccccccc… now\)$/,
      ],
      [
        { audio: "d".repeat(64) },
        /was made with a different --audio \(sha256 bbbbbbbbbbbb… there, dddddddddddd… now\)$/,
      ],
      [{ faceExpandRatio: 1.4 }, /was made with a different --face-expand-ratio \(1\.2 there, 1\.4 now\)$/],
      [{ dtype: "float16", seed: 7 }, /a different --dtype \(float32 there, float16 now\); also --seed$/],
      [{ separate: false }, /a different vocal separation \(--no-separate\) \(on there, off now\)$/],
      [
        { separator: "9 bytes, modified y" },
        /a different separation model \( there, 9 bytes, modified y now\)$/,
      ],
      [
        { weights: { "hallo/net.pth": "5 bytes, modified x" } },
        /different weights \(hallo\/net\.pth: absent there, 5 bytes, modified x now\)/,
      ],
    ];
    for (const [change, re] of cases) {
      await assert.rejects(RunDir.open(dir, { identity: identity(change), resume: true }), (e: Error) => {
        assert.ok(e instanceof RunDirError, String(e));
        assert.match(e.message, new RegExp(`^run dir ${dir} was made with `));
        assert.match(e.message, re);
        assert.ok(!e.message.includes("\n"));
        return true;
      });
      assert.deepEqual(await snapshot(dir), before, "a refused resume must leave the run dir as it was");
    }
    // The same identity resumes at the first unfinished clip.
    const run = await RunDir.open(dir, { identity: identity(), resume: true });
    assert.equal(await run.begin(LAYOUT), 2);
    await run.close();
    assert.equal(identityDifference(identity(), identity()), undefined);
    assert.match(
      identityDifference({ steps: 4 }, identity())!,
      /another version of hallo-lab \(run format 1/,
    );
    // A run.json of the earlier layout (no format) is named as such.
    await Deno.writeTextFile(runFiles.record(dir), JSON.stringify({ identity: { steps: 4 }, clips: 3 }));
    await assert.rejects(
      RunDir.open(dir, { identity: identity(), resume: true }),
      /run\.json: written by another version of hallo-lab \(run format 1, this one reads 2\); run it again without --resume$/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a second opener of a locked run dir fails at once naming the holder; the lock goes with close", async () => {
  const root = await tempDir();
  try {
    const dir = join(root, "r.run");
    const first = await RunDir.open(dir, { identity: identity() });
    const lock = JSON.parse(await Deno.readTextFile(runFiles.lock(dir)));
    assert.equal(lock.pid, Deno.pid);
    assert.equal(lock.hostname, Deno.hostname());
    for (const resume of [false, true]) {
      if (resume) await first.begin(LAYOUT);
      await assert.rejects(RunDir.open(dir, { identity: identity(), resume }), (e: Error) => {
        assert.ok(e instanceof RunDirLockedError, String(e));
        assert.match(e.message, new RegExp(`^run dir ${dir} is in use by pid ${Deno.pid} on `));
        assert.match(e.message, /lock file .*run\.lock/);
        return true;
      });
    }
    await first.close();
    await assert.rejects(Deno.stat(runFiles.lock(dir)), Deno.errors.NotFound);
    const second = await RunDir.open(dir, { identity: identity(), resume: true });
    assert.equal(second.tookOverLock, undefined);
    await second.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the stale lock of a dead pid is taken over", async () => {
  const root = await tempDir();
  try {
    const dir = join(root, "r.run");
    await recordedRun(dir, identity(), 1);
    const pid = await deadPid();
    const stale = { pid, hostname: Deno.hostname(), started: "2020-01-01T00:00:00.000Z" };
    await Deno.writeTextFile(runFiles.lock(dir), JSON.stringify(stale));
    assert.ok(lockIsStale(stale));
    assert.ok(!lockIsStale({ ...stale, pid: Deno.pid }), "a live pid is not stale");
    assert.ok(
      !lockIsStale({ ...stale, hostname: `not-${Deno.hostname()}` }),
      "another host's lock is not judged",
    );
    const run = await RunDir.open(dir, { identity: identity(), resume: true });
    assert.deepEqual(run.tookOverLock, stale);
    assert.equal(JSON.parse(await Deno.readTextFile(runFiles.lock(dir))).pid, Deno.pid);
    assert.equal(await run.begin(LAYOUT), 1);
    await run.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a zero-filled clip of the right size is computed again on resume, never read", async () => {
  const root = await tempDir();
  try {
    const dir = join(root, "r.run");
    await recordedRun(dir, identity(), 3);
    const rec = JSON.parse(await Deno.readTextFile(runFiles.record(dir)));
    assert.equal(rec.status, "complete");
    assert.match(rec.finished[1].frames_sha256, /^[0-9a-f]{64}$/);
    await Deno.writeFile(runFiles.frames(dir, 1), new Uint8Array(FRAME_BYTES));
    // Readers refuse it.
    await assert.rejects(
      Array.fromAsync(readRunFrames(dir)),
      /0001\.rgb does not match its sha256 in run\.json \(damaged\)/,
    );
    // A resume keeps clip 0 and computes clip 1 on (its motion frames are read from clip 0, verified).
    const run = await RunDir.open(dir, { identity: identity(), resume: true });
    assert.equal(await run.begin(LAYOUT), 1);
    assert.match(
      run.problems[0],
      /0001\.rgb does not match its sha256.*clip 1 and those after it are computed again/,
    );
    assert.deepEqual(await run.readMotion(0), clipBytes(0).motion);
    for (let c = 1; c < 3; c++) await run.writeClip(c, clipBytes(c).frames, clipBytes(c).motion, 0);
    await run.complete();
    await run.close();
    const frames = await Array.fromAsync(readRunFrames(dir));
    assert.equal(frames.length, LAYOUT.audioLength);
    const want = [0, 1, 2].flatMap((c) => {
      const b = clipBytes(c).frames, n = FRAME_BYTES / 4;
      return [0, 1, 2, 3].map((i) => b.subarray(i * n, (i + 1) * n));
    }).slice(0, LAYOUT.audioLength);
    assert.deepEqual(frames, want);
    // A motion file of the wrong size is damage too.
    await Deno.writeFile(runFiles.motion(dir, 0), new Uint8Array(8));
    const again = await RunDir.open(dir, { identity: identity(), resume: true });
    assert.equal(await again.begin(LAYOUT), 0);
    assert.match(again.problems[0], /0000\.motion\.f32 has 8 bytes/);
    await again.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a fresh run never mixes in the clips of an earlier run in the same dir", async () => {
  const root = await tempDir();
  try {
    const dir = join(root, "r.run");
    await recordedRun(dir, identity(), 3);
    const other = identity({ seed: 1 });
    const run = await RunDir.open(dir, { identity: other });
    assert.equal(await run.begin(LAYOUT), 0);
    await run.writeClip(0, clipBytes(9).frames, clipBytes(9).motion, 0);
    await run.close();
    await assert.rejects(Deno.stat(runFiles.frames(dir, 1)), Deno.errors.NotFound);
    const resumed = await RunDir.open(dir, { identity: other, resume: true });
    assert.equal(await resumed.begin(LAYOUT), 1);
    await resumed.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** What clip `c` measured (numbers a JSON round trip keeps exactly; an empty mask's null included). */
const measuresOf = (c: number) => ({
  steps: 1,
  guidance: [
    { step: 0, region: "lip", condDelta: c + 0.5, update: 0.25 },
    { step: 0, region: "face", condDelta: null, update: null },
  ],
  identity: [{ layer: "down_blocks.2.attentions.0.transformer_blocks.0.attn1", step: 0, mean: c / 8 }],
});

Deno.test("measures: written with their clip and verified; a damaged file is computed again; a fresh run drops them", async () => {
  const root = await tempDir();
  try {
    const dir = join(root, "r.run");
    const run = await RunDir.open(dir, { identity: identity() });
    await run.begin(LAYOUT);
    for (let c = 0; c < 3; c++) {
      await run.writeClip(
        c,
        clipBytes(c).frames,
        clipBytes(c).motion,
        0,
        c === 1 ? undefined : measuresOf(c),
      );
    }
    await run.close();
    // Clip 1 measured nothing; a partial reader reads only the clips it is given.
    assert.deepEqual(await readRunMeasures(dir), [measuresOf(0), undefined, measuresOf(2)]);
    assert.deepEqual(await readRunMeasures(dir, { finished: 1 }), [measuresOf(0)]);
    const rec = JSON.parse(await Deno.readTextFile(runFiles.record(dir)));
    assert.match(rec.finished[0].measures_sha256, /^[0-9a-f]{64}$/);
    assert.equal(rec.finished[1].measures_sha256, undefined);

    // A damaged measures file: readers refuse it, a resume computes its clip again with the clips after it.
    await Deno.writeTextFile(runFiles.measures(dir, 2), JSON.stringify(measuresOf(7)));
    await assert.rejects(readRunMeasures(dir), /0002\.measures\.json does not match its sha256 in run\.json/);
    const resumed = await RunDir.open(dir, { identity: identity(), resume: true });
    assert.equal(await resumed.begin(LAYOUT), 2);
    assert.match(resumed.problems[0], /0002\.measures\.json does not match.*clip 2 and those after it/);
    await resumed.writeClip(2, clipBytes(2).frames, clipBytes(2).motion, 0, measuresOf(2));
    await resumed.close();
    assert.deepEqual(await readRunMeasures(dir), [measuresOf(0), undefined, measuresOf(2)]);

    // A fresh run of other inputs in the same dir: no measures of the earlier run remain.
    const fresh = await RunDir.open(dir, { identity: identity({ image: "c".repeat(64) }) });
    await fresh.begin(LAYOUT);
    await fresh.writeClip(0, clipBytes(0).frames, clipBytes(0).motion, 0);
    await fresh.close();
    assert.deepEqual(await readRunMeasures(dir), [undefined]);
    for (const c of [0, 2]) await assert.rejects(Deno.stat(runFiles.measures(dir, c)), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a failed resume or failed fresh run leaves no empty run dir; one with content is kept", async () => {
  const root = await tempDir();
  try {
    const missing = join(root, "missing.run");
    await assert.rejects(
      RunDir.open(missing, { identity: identity(), resume: true }),
      /run dir .*missing\.run has no run\.json to resume from/,
    );
    await assert.rejects(Deno.stat(missing), Deno.errors.NotFound);
    // A fresh run that fails before its first clip removes the directory it created.
    const fresh = join(root, "fresh.run");
    const run = await RunDir.open(fresh, { identity: identity() });
    await run.begin(LAYOUT);
    await run.close({ failed: true });
    await assert.rejects(Deno.stat(fresh), Deno.errors.NotFound);
    // ... but never a directory that existed, nor one with a finished clip.
    const kept = join(root, "kept.run");
    await recordedRun(kept, identity(), 1);
    const before = await snapshot(kept);
    const again = await RunDir.open(kept, { identity: identity(), resume: true });
    await again.close({ failed: true });
    assert.deepEqual(await snapshot(kept), before);
    const partial = join(root, "partial.run");
    const p = await RunDir.open(partial, { identity: identity() });
    await p.begin(LAYOUT);
    await p.writeClip(0, clipBytes(0).frames, clipBytes(0).motion, 0);
    await p.close({ failed: true });
    assert.ok((await Deno.stat(runFiles.frames(partial, 0))).isFile);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an output that resolves to an input or to the run dir's own files is refused", async () => {
  const root = await tempDir();
  try {
    const image = join(root, "face.png"), audio = join(root, "speech.wav");
    await Deno.writeFile(image, new Uint8Array([1, 2, 3]));
    await Deno.writeFile(audio, new Uint8Array([4, 5]));
    await Deno.symlink(image, join(root, "link.mp4"));
    await Deno.link(audio, join(root, "hard.mp4"));
    const inputs = { "--image": image, "--audio": audio };
    const runDir = join(root, "o.run");
    const refused: [string, RegExp][] = [
      [image, /^--out .*face\.png is the --image file; refusing to overwrite an input$/],
      [join(root, ".", "sub", "..", "face.png"), /is the --image file/],
      [join(root, "link.mp4"), /is the --image file/],
      [join(root, "hard.mp4"), /is the --audio file/],
      [runDir, /is inside the run dir .*'s own files/],
      [join(runDir, "run.json"), /is inside the run dir/],
      [join(runDir, "clips", "0000.rgb"), /is inside the run dir/],
    ];
    for (const [out, re] of refused) {
      assert.throws(() => checkRunPaths({ "--out": out }, inputs, runDir), (e: Error) => {
        assert.ok(e instanceof RunPathError);
        assert.match(e.message, re);
        return true;
      });
    }
    assert.throws(
      () =>
        checkRunPaths(
          { "--out": join(root, "x.mp4") },
          { "--image": join(runDir, "clips", "0001.rgb") },
          runDir,
        ),
      /--image .* is a file of the run dir/,
    );
    checkRunPaths({ "--out": join(root, "o.mp4") }, inputs, runDir);
    checkRunPaths({ "--out": join(runDir, "video.mp4") }, inputs, runDir);
    assert.deepEqual(await Deno.readFile(image), new Uint8Array([1, 2, 3]));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a separation model given by path is part of the run identity; the weights folder's is not", async () => {
  const root = await tempDir();
  try {
    const model = join(root, "separator.onnx");
    await Deno.writeFile(model, new Uint8Array(9));
    const given = makeRunIdentity(HASHES, { ...OPTIONS, separatorModel: model }, "/nonexistent-weights");
    assert.match(given.separator, /^9 bytes, modified /);
    assert.equal(makeRunIdentity(HASHES, OPTIONS, "/nonexistent-weights").separator, "");
    assert.throws(
      () => makeRunIdentity(HASHES, { ...OPTIONS, separatorModel: join(root, "gone.onnx") }, "/x"),
      /gone\.onnx: cannot read the separation model/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
