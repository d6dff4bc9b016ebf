/**
 * The `animate` CLI end to end on tiny random weights at a small size: bad options fail before any heavy
 * work, `--cfg 1` runs the conditional branch alone, the mp4 is h264 + aac at 25 fps with audio_length
 * frames, and a run killed after its first clip resumes to exactly the frames of an uninterrupted run.
 * Run directories: a resume with other inputs or options, a second run on a busy run dir, an `--out` over
 * the image and a resume of nothing fail before any work; a killed run's stale lock is taken over; a
 * zero-filled clip is computed again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureTinyWeights } from "../src/tiny/random.ts";
import { probeMedia } from "../src/stages/video/mp4.ts";
import { readRunFrames, readRunRecord, runFiles } from "../src/stages/generate/run_dir.ts";
import { encodeWavPcm16, readWav } from "../src/stages/audio/wav.ts";
import { cliCommand, runCli } from "./helpers/cli.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const IMAGE = join(ROOT, "fixtures", "astronaut.png");
const SPEECH = join(ROOT, "fixtures", "speech.wav");
const work = await Deno.makeTempDir({ prefix: "hallo-animate-" });
globalThis.addEventListener("unload", () => Deno.removeSync(work, { recursive: true }));
const tiny = (await ensureTinyWeights(join(work, "tiny"))).dir;
const env = { HALLO_GRAPH_CACHE: join(work, "graphs") };

const cli = (args: string[]) => cliCommand("animate", args, { env });
const animate = (args: string[]) => runCli("animate", args, { env });

const base = (out: string, extra: string[] = []) => [
  "--image",
  IMAGE,
  "--audio",
  SPEECH,
  "--out",
  out,
  "--weights",
  tiny,
  "--size",
  "128",
  "--threads",
  "1",
  ...extra,
];

Deno.test("animate: bad options fail fast with one line naming the problem", async () => {
  const out = join(work, "bad.mp4");
  const cases: [string[], RegExp][] = [
    [
      base(out).map((a) => a === IMAGE ? join(work, "missing.png") : a),
      /--image .*missing\.png: cannot read/,
    ],
    [base(out).map((a) => a === SPEECH ? work : a), /--audio .*: not a file/],
    [base("/proc/hallo/x.mp4"), /--out \/proc\/hallo\/x\.mp4: cannot be written/],
    [base(out, ["--steps", "0"]), /--steps must be >= 1/],
    [base(out, ["--steps", "2.5"]), /--steps must be an integer/],
    [base(out, ["--cfg=-1"]), /--cfg must be >= 0/],
    [base(out, ["--cfg", "-1"]), /--cfg must be >= 0, got -1/],
    [base(out, ["--cfg", "abc"]), /--cfg must be a number/],
    [base(out, ["--device", "tpu"]), /unknown device 'tpu'/],
    [base(out, ["--size", "100"]), /--size must be a multiple of 64/],
    [base(out, ["--cfg-batch", "third"]), /--cfg-batch must be joint or halves, got 'third'/],
    [
      base(out, ["--measure", "identiy"]),
      /--measure: unknown measure 'identiy' \(identity; guidance by region/,
    ],
    [base(out, ["--weights", join(work, "empty")]), /needs weights not found/],
  ];
  await Deno.mkdir(join(work, "empty"), { recursive: true });
  for (const [args, re] of cases) {
    const r = await animate(args);
    assert.notEqual(r.code, 0, `${args.join(" ")} should fail`);
    assert.match(r.err, re);
    assert.equal(r.err.trim().split("\n").length, 1, `one line expected, got: ${r.err}`);
    assert.ok(r.seconds < 15, `failed after ${r.seconds} s: too late`);
  }
});

/** Clips run.json lists as finished (0 while there is none). */
const finishedClips = (runDir: string) => readRunRecord(runDir).then((r) => r.finished.length, () => 0);

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

// One quick run (--cfg 1, one step) that several tests look at.
const CFG1 = join(work, "cfg1.mp4");
const CFG1_ARGS = ["--cfg", "1", "--steps", "1"];
let cfg1Run: ReturnType<typeof animate> | undefined;
const cfg1 = () => cfg1Run ??= animate(base(CFG1, CFG1_ARGS));

Deno.test("animate: --cfg 1 runs the conditional branch alone and writes an h264 + aac mp4", async () => {
  const out = CFG1;
  const r = await cfg1();
  assert.equal(r.code, 0, r.err);
  const info = await probeMedia(out);
  assert.equal(info.videoCodec, "h264");
  assert.equal(info.pixFmt, "yuv420p");
  assert.equal(info.audioCodec, "aac");
  assert.equal(info.fps, 25);
  // speech.wav: 42,226 samples at 16 kHz -> ceil(42226/16000*25) = 66 frames.
  assert.equal(info.frames, 66);
  assert.ok(Math.abs(info.duration! - 66 / 25) <= 0.04 + 1e-9, `duration ${info.duration}`);
  const rec = JSON.parse(await Deno.readTextFile(join(work, "cfg1.run", "run.json")));
  assert.equal(rec.status, "complete");
  assert.equal(rec.settings.cfg, 1);
  assert.match(rec.inputs.image.sha256, /^[0-9a-f]{64}$/);
  assert.equal(rec.identity.image, rec.inputs.image.sha256);
  assert.deepEqual(rec.finished.map((c: { clip: number }) => c.clip), [0, 1, 2, 3, 4]);
  // Without guidance no measure applies: none recorded, no measures file.
  assert.deepEqual(rec.measures, { guidance: false, identity: [] });
  assert.equal(rec.cfg_batch, "joint", "no guidance: one batch-1 call, recorded as joint");
  assert.ok(rec.finished.every((c: { measures_sha256?: string }) => c.measures_sha256 === undefined));
  assert.ok(!await exists(join(work, "cfg1.run", "run.lock")), "the lock goes with the run");
});

Deno.test("animate: --resume with a different image, audio, face expand ratio or measures is a one-line error before any work", async () => {
  assert.equal((await cfg1()).code, 0);
  const runDir = join(work, "cfg1.run");
  // Another image (a trailing byte after PNG's end) and another audio (its first second).
  const image = join(work, "other.png");
  await Deno.writeFile(image, new Uint8Array([...await Deno.readFile(IMAGE), 0]));
  const audio = join(work, "other.wav");
  const w = await readWav(SPEECH);
  const s = w.channels[0].subarray(0, w.sampleRate);
  const i16 = Int16Array.from(s, (v) => Math.max(-32768, Math.min(32767, Math.round(v * 32768))));
  await Deno.writeFile(audio, encodeWavPcm16(i16, 1, w.sampleRate));
  const record = await Deno.readFile(runFiles.record(runDir));
  const video = await Deno.readFile(CFG1);
  const cases: [string[], RegExp][] = [
    [
      base(CFG1, CFG1_ARGS).map((a) => a === IMAGE ? image : a),
      /a different --image \(sha256 [0-9a-f]{12}… there, [0-9a-f]{12}… now\)$/,
    ],
    [
      base(CFG1, CFG1_ARGS).map((a) => a === SPEECH ? audio : a),
      /a different --audio \(sha256 [0-9a-f]{12}… there, [0-9a-f]{12}… now\)$/,
    ],
    [
      base(CFG1, [...CFG1_ARGS, "--face-expand-ratio", "1.4"]),
      /a different --face-expand-ratio \(1\.2 there, 1\.4 now\)$/,
    ],
    [base(CFG1, ["--cfg", "1", "--steps", "2"]), /a different --steps \(1 there, 2 now\)$/],
  ];
  for (const [args, re] of cases) {
    const r = await animate([...args, "--resume"]);
    assert.equal(r.code, 1, r.err);
    const line = r.err.trim();
    assert.equal(line.split("\n").length, 1, `one line expected, got: ${r.err}`);
    assert.match(line, new RegExp(`^animate: run dir ${runDir} was made with `));
    assert.match(line, re);
    assert.deepEqual(await Deno.readFile(runFiles.record(runDir)), record, "run.json must not be rewritten");
    assert.deepEqual(await Deno.readFile(CFG1), video, "the video must stay");
    assert.ok(!await exists(runFiles.lock(runDir)));
  }
  // The measures too: identity drift is a trend over clips, so a resume cannot start measuring it midway.
  const r = await animate([...base(CFG1, [...CFG1_ARGS, "--measure", "identity"]), "--resume"]);
  assert.equal(r.code, 1, r.err);
  assert.match(
    r.err.trim(),
    new RegExp(
      `^animate: run dir ${runDir} was measured with no measures, this run with --measure identity ` +
        `\\(down_blocks\\.2\\.attentions\\.0\\.transformer_blocks\\.0\\.attn1, up_blocks\\.1\\..*\\)$`,
    ),
  );
  assert.deepEqual(await Deno.readFile(runFiles.record(runDir)), record, "run.json must not be rewritten");
  assert.ok(!await exists(runFiles.lock(runDir)));
});

Deno.test("animate: --out equal to --image is refused and the image is untouched", async () => {
  const photo = join(work, "photo.png");
  await Deno.copyFile(IMAGE, photo);
  const before = await Deno.readFile(photo);
  const r = await animate(base(photo, CFG1_ARGS).map((a) => a === IMAGE ? photo : a));
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err.trim(),
    /^animate: --out .*photo\.png is the --image file; refusing to overwrite an input$/,
  );
  assert.deepEqual(await Deno.readFile(photo), before);
  assert.ok(!await exists(join(work, "photo.run")), "no run dir for a refused run");
});

Deno.test("animate: a failed --resume leaves no empty run dir behind", async () => {
  const runDir = join(work, "never.run");
  const r = await animate(base(join(work, "never.mp4"), [...CFG1_ARGS, "--resume"]));
  assert.equal(r.code, 1, r.err);
  assert.match(r.err.trim(), /^animate: run dir .*never\.run has no run\.json to resume from$/);
  assert.ok(!await exists(runDir));
  assert.ok(!await exists(join(work, "never.mp4")));
});

Deno.test("animate: a second run on a busy run dir fails at once; a killed run's stale lock is taken over and it resumes to the uninterrupted run's frames; a zero-filled clip is recomputed", async () => {
  const steps = ["--steps", "6"];
  const whole = join(work, "whole.mp4");
  const r = await animate(base(whole, steps));
  assert.equal(r.code, 0, r.err);

  const cut = join(work, "cut.mp4");
  const runDir = join(work, "cut.run");
  const child = cli(base(cut, steps)).spawn();
  const t0 = performance.now();
  while (await finishedClips(runDir) < 1) {
    assert.ok(performance.now() - t0 < 120_000, "first clip never finished");
    await new Promise((res) => setTimeout(res, 10));
  }
  // A second run on the same run dir (even to another --out) is turned away before any work.
  const second = await animate(base(join(work, "second.mp4"), [...steps, "--run-dir", runDir]));
  assert.equal(second.code, 1, second.err);
  assert.match(
    second.err.trim(),
    new RegExp(
      `^animate: run dir ${runDir} is in use by pid ${child.pid} on .* \\(lock file .*run\\.lock\\)`,
    ),
  );
  assert.ok(!second.err.includes("preparing"), "the second run must fail before preparing");
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.ok(await finishedClips(runDir) < 5, "the run finished before it could be killed");
  await assert.rejects(Deno.stat(cut));
  const stale = JSON.parse(await Deno.readTextFile(runFiles.lock(runDir)));
  assert.equal(stale.pid, child.pid, "a killed run leaves its lock");

  const sameAsWhole = async () => {
    for (let c = 0; c < 5; c++) {
      const a = await Deno.readFile(runFiles.frames(join(work, "whole.run"), c));
      const b = await Deno.readFile(runFiles.frames(runDir, c));
      assert.ok(a.length > 0 && a.every((v, i) => v === b[i]), `clip ${c} differs after resume`);
    }
    const frames = [];
    for await (const f of readRunFrames(runDir)) frames.push(f);
    assert.equal(frames.length, 66);
  };
  const resumed = await animate(base(cut, [...steps, "--resume"]));
  assert.equal(resumed.code, 0, resumed.err);
  assert.match(resumed.err, new RegExp(`took over the stale lock of pid ${child.pid}`));
  assert.ok(!await exists(runFiles.lock(runDir)));
  await sameAsWhole();
  assert.equal((await probeMedia(cut)).frames, 66);

  // A clip zeroed on disk (right size) is found by its checksum, computed again, and the frames are right.
  const clip = runFiles.frames(runDir, 4);
  await Deno.writeFile(clip, new Uint8Array((await Deno.stat(clip)).size));
  const repaired = await animate(base(cut, [...steps, "--resume"]));
  assert.equal(repaired.code, 0, repaired.err);
  assert.match(repaired.err, /warning: .*0004\.rgb does not match its sha256 in run\.json \(damaged\)/);
  await sameAsWhole();
  assert.equal((await probeMedia(cut)).frames, 66);
  const partials = [...Deno.readDirSync(work)].filter((e) => e.name.includes(".partial"));
  assert.deepEqual(partials, []);
});
