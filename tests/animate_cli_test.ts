/**
 * The `animate` CLI end to end on tiny random weights at a small size: bad options fail before any heavy
 * work, `--cfg 1` runs the conditional branch alone, the mp4 is h264 + aac at 25 fps with audio_length
 * frames, and a run killed after its first clip resumes to exactly the frames of an uninterrupted run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureTinyWeights } from "../src/tiny/random.ts";
import { probeMedia } from "../src/stages/video/mp4.ts";
import { runFiles } from "../src/stages/generate/animate.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const IMAGE = join(ROOT, "fixtures", "astronaut.png");
const SPEECH = join(ROOT, "fixtures", "speech.wav");
const work = await Deno.makeTempDir({ prefix: "hallo-animate-" });
const tiny = (await ensureTinyWeights(join(work, "tiny"))).dir;
const env = { HALLO_GRAPH_CACHE: join(work, "graphs") };

function cli(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "src", "cli", "main.ts"), "animate", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  });
}

async function animate(args: string[]): Promise<{ code: number; err: string; out: string; seconds: number }> {
  const t0 = performance.now();
  const r = await cli(args).output();
  const dec = new TextDecoder();
  return {
    code: r.code,
    err: dec.decode(r.stderr),
    out: dec.decode(r.stdout),
    seconds: (performance.now() - t0) / 1000,
  };
}

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
    [base(out, ["--cfg", "-1"]), /argument is ambiguous/],
    [base(out, ["--cfg", "abc"]), /--cfg must be a number/],
    [base(out, ["--device", "tpu"]), /unknown device 'tpu'/],
    [base(out, ["--size", "100"]), /--size must be a multiple of 64/],
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

Deno.test("animate: --cfg 1 runs the conditional branch alone and writes an h264 + aac mp4", async () => {
  const out = join(work, "cfg1.mp4");
  const r = await animate(base(out, ["--cfg", "1", "--steps", "1"]));
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
});

Deno.test("animate: a run killed after its first clip resumes to the uninterrupted run's frames", async () => {
  const steps = ["--steps", "6"];
  const whole = join(work, "whole.mp4");
  const r = await animate(base(whole, steps));
  assert.equal(r.code, 0, r.err);

  const cut = join(work, "cut.mp4");
  const runDir = join(work, "cut.run");
  const child = cli(base(cut, steps)).spawn();
  const t0 = performance.now();
  while (true) {
    const done = await Deno.stat(runFiles.done(runDir, 0)).then(() => true, () => false);
    if (done) break;
    assert.ok(performance.now() - t0 < 120_000, "first clip never finished");
    await new Promise((res) => setTimeout(res, 10));
  }
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  const last = await Deno.stat(runFiles.done(runDir, 4)).then(() => true, () => false);
  assert.ok(!last, "the run finished before it could be killed");
  await assert.rejects(Deno.stat(cut));

  const resumed = await animate(base(cut, [...steps, "--resume"]));
  assert.equal(resumed.code, 0, resumed.err);
  for (let c = 0; c < 5; c++) {
    const a = await Deno.readFile(runFiles.frames(join(work, "whole.run"), c));
    const b = await Deno.readFile(runFiles.frames(runDir, c));
    assert.ok(a.length > 0 && a.every((v, i) => v === b[i]), `clip ${c} differs after resume`);
  }
  assert.equal((await probeMedia(cut)).frames, 66);
});

Deno.test({
  name: "animate: cleanup",
  fn: async () => await Deno.remove(work, { recursive: true }),
});
