/**
 * Options are checked before any heavy work, for every command: negative numbers in both `--x -1` and
 * `--x=-1` spellings reach the range checks (which name the range), `--seed 1e30` is refused at once, an
 * unusable `--device` fails before the image or audio is read, a file that is not audio fails before the image
 * stage, and NaN / inf samples are named as such with the file. Commands run in process, their output captured.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run as animate } from "../src/cli/animate.ts";
import { joinNegativeValues, MAX_SEED, num } from "../src/cli/options.ts";
import { run as prepareAudio } from "../src/cli/prepare_audio.ts";
import { run as prepareImage } from "../src/cli/prepare_image.ts";
import { run as sweep } from "../src/cli/sweep.ts";
import { probeDevice } from "../src/runtime/probe.ts";
import { AudioDecodeError, decodeAudio } from "../src/stages/audio/decode.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const IMAGE = join(ROOT, "fixtures", "astronaut.png");
const SPEECH = join(ROOT, "fixtures", "speech.wav");

/** Runs a command's `run(args)` with console output captured. */
async function capture(
  cmd: (args: string[]) => Promise<number>,
  args: string[],
): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [];
  const out: string[] = [];
  const saved = { error: console.error, log: console.log };
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    const code = await cmd(args);
    return { code, err: err.join("\n"), out: out.join("\n") };
  } finally {
    console.error = saved.error;
    console.log = saved.log;
  }
}

/** A folder with `not_an_image.png` and `not_audio.wav`: text that fails any decoder that reads it. */
async function junkFiles(): Promise<{ dir: string; image: string; audio: string }> {
  const dir = await Deno.makeTempDir({ prefix: "hallo_opts_" });
  const image = join(dir, "not_an_image.png");
  const audio = join(dir, "not_audio.wav");
  await Deno.writeTextFile(image, "this is not an image\n".repeat(20));
  await Deno.writeTextFile(audio, "this is not audio\n".repeat(20));
  return { dir, image, audio };
}

/** A 16 kHz mono float32 WAV of `samples`. */
function floatWav(samples: number[]): Uint8Array {
  const data = new Float32Array(samples);
  const b = new Uint8Array(44 + data.byteLength);
  const v = new DataView(b.buffer);
  const tag = (o: number, s: string) => [...s].forEach((c, i) => b[o + i] = c.charCodeAt(0));
  tag(0, "RIFF");
  v.setUint32(4, 36 + data.byteLength, true);
  tag(8, "WAVE");
  tag(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 3, true); // IEEE float
  v.setUint16(22, 1, true);
  v.setUint32(24, 16000, true);
  v.setUint32(28, 16000 * 4, true);
  v.setUint16(32, 4, true);
  v.setUint16(34, 32, true);
  tag(36, "data");
  v.setUint32(40, data.byteLength, true);
  b.set(new Uint8Array(data.buffer), 44);
  return b;
}

Deno.test("options: `--x -1` becomes `--x=-1` for options taking a value, nothing else changes", () => {
  const spec = { cfg: { type: "string" }, steps: { type: "string" }, resume: { type: "boolean" } } as const;
  assert.deepEqual(
    joinNegativeValues(["--cfg", "-1", "--steps", "-.5", "--resume", "-x", "--cfg", "-1,2"], spec),
    ["--cfg=-1", "--steps=-.5", "--resume", "-x", "--cfg=-1,2"],
  );
  assert.deepEqual(joinNegativeValues(["--cfg", "--steps", "3"], spec), ["--cfg", "--steps", "3"]);
  assert.deepEqual(joinNegativeValues(["--", "--cfg", "-1"], spec), ["--", "--cfg", "-1"]);
});

Deno.test("options: range errors name the allowed range", () => {
  assert.throws(
    () => num("steps", "-1", 40, { min: 1, int: true }),
    /^UsageError: --steps must be >= 1 \(an integer\), got -1$/,
  );
  assert.throws(
    () => num("steps", "2.5", 40, { min: 1, int: true }),
    /--steps must be an integer >= 1, got '2\.5'/,
  );
  assert.throws(
    () => num("cfg", "x", 3.5, { min: 0 }),
    /--cfg must be a number, got 'x' \(allowed: a number >= 0\)/,
  );
  assert.throws(
    () => num("seed", "1e30", 42, { min: 0, max: MAX_SEED, int: true }),
    /--seed must be from 0 to 9007199254740991 \(an integer\), got 1e30/,
  );
  assert.equal(num("pose-weight", "-0.5", 1), -0.5);
});

Deno.test("animate and sweep: negative numbers in both spellings reach the range checks; --seed 1e30 is refused", async () => {
  // No image or audio exists: each error must come from the option itself, before any file is looked at.
  const files = ["--image", "/nonexistent/i.png", "--audio", "/nonexistent/a.wav", "--out", "/nonexistent/o"];
  const cases: [(a: string[]) => Promise<number>, string[], RegExp][] = [
    [animate, ["--steps", "-1"], /^animate: --steps must be >= 1 \(an integer\), got -1$/],
    [animate, ["--steps=-1"], /^animate: --steps must be >= 1 \(an integer\), got -1$/],
    [animate, ["--cfg", "-1"], /^animate: --cfg must be >= 0, got -1$/],
    [animate, ["--cfg=-1"], /^animate: --cfg must be >= 0, got -1$/],
    [
      animate,
      ["--seed", "-1"],
      /^animate: --seed must be from 0 to 9007199254740991 \(an integer\), got -1$/,
    ],
    [
      animate,
      ["--seed", "1e30"],
      /^animate: --seed must be from 0 to 9007199254740991 \(an integer\), got 1e30$/,
    ],
    [animate, ["--face-expand-ratio", "-2"], /^animate: --face-expand-ratio must be >= 0\.01, got -2$/],
    [animate, ["--threads", "-4"], /^animate: --threads must be >= 1 \(an integer\), got -4$/],
    [sweep, ["--cfg", "-1,2"], /^sweep: --cfg must be >= 0, got -1$/],
    [sweep, ["--cfg=2,-1"], /^sweep: --cfg must be >= 0, got -1$/],
    [
      sweep,
      ["--seed", "1e30"],
      /^sweep: --seed must be from 0 to 9007199254740991 \(an integer\), got 1e30$/,
    ],
  ];
  for (const [cmd, extra, re] of cases) {
    const r = await capture(cmd, [...files, ...extra]);
    assert.equal(r.code, 2, `${extra.join(" ")}: ${r.err}`);
    assert.match(r.err, re, extra.join(" "));
  }
  // A negative value that is valid passes the checks (it then fails on the missing image, not the option).
  const ok = await capture(animate, [...files, "--pose-weight", "-0.5"]);
  assert.match(ok.err, /^animate: --image \/nonexistent\/i\.png: cannot read/);
});

Deno.test("prepare-image and prepare-audio: negative numbers in the space form are range errors, not 'ambiguous'", async () => {
  const img = await capture(prepareImage, [
    "--image",
    IMAGE,
    "--out",
    "/nonexistent",
    "--face-expand-ratio",
    "-1",
  ]);
  assert.equal(img.code, 1);
  assert.match(img.err, /^hallo prepare-image: --face-expand-ratio must be a positive number, got '-1'$/);
  const aud = await capture(prepareAudio, ["--audio", SPEECH, "--out", "/nonexistent", "--fps", "-25"]);
  assert.equal(aud.code, 2);
  assert.match(aud.err, /^hallo prepare-audio: --fps must be a positive integer, got '-25'/);
});

Deno.test("--device cuda without CUDA fails before the image or audio is read, for every command", async () => {
  const cuda = await probeDevice("cuda").then(() => true, (e) => e as Error);
  const { dir, image, audio } = await junkFiles();
  try {
    const out = join(dir, "o.mp4");
    const runs: [string, (a: string[]) => Promise<number>, string[]][] = [
      ["animate", animate, ["--image", image, "--audio", audio, "--out", out, "--device", "cuda"]],
      ["sweep", sweep, ["--image", image, "--audio", audio, "--out", join(dir, "s"), "--device", "cuda"]],
      ["prepare-image", prepareImage, ["--image", image, "--out", join(dir, "pi"), "--device", "cuda"]],
      ["prepare-audio", prepareAudio, ["--audio", audio, "--out", join(dir, "pa"), "--device", "cuda"]],
    ];
    for (const [name, cmd, args] of runs) {
      const r = await capture(cmd, args);
      assert.notEqual(r.code, 0, name);
      if (cuda === true) {
        // A machine with CUDA: the device passes and the junk input is what fails.
        assert.doesNotMatch(r.err, /device 'cuda' is not available/, name);
      } else {
        assert.match(r.err, /device 'cuda' is not available: the CUDA execution provider/, name);
        assert.doesNotMatch(r.err, /not_an_image|not_audio/, `${name} read its input first: ${r.err}`);
        assert.equal(r.err.split("\n").length, 1, name);
      }
    }
    // Nothing was prepared or written.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "not_an_image.png",
      "not_audio.wav",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file that is not audio fails before the image stage, naming the file", async () => {
  const { dir, image, audio } = await junkFiles();
  try {
    // The image is junk as well: had the image stage run first, its error would be about the image.
    for (
      const [name, cmd, args] of [
        ["animate", animate, ["--image", image, "--audio", audio, "--out", join(dir, "o.mp4")]],
        ["sweep", sweep, ["--image", image, "--audio", audio, "--out", join(dir, "s")]],
      ] as const
    ) {
      const r = await capture(cmd, [...args]);
      assert.equal(r.code, 2, name);
      assert.match(
        r.err,
        new RegExp(
          `^${name}: --audio ${audio.replaceAll(".", "\\.")}: not an audio or video file ffmpeg can read`,
        ),
      );
    }
    const pa = await capture(prepareAudio, ["--audio", audio, "--out", join(dir, "pa")]);
    assert.equal(pa.code, 1);
    assert.match(pa.err, /^hallo prepare-audio: --audio .*not_audio\.wav: not an audio or video file/);
    assert.equal(await Deno.stat(join(dir, "pa")).then(() => true, () => false), false, "no output folder");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("NaN and inf samples: the error names the file, the sample and says NaN, +inf or -inf", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo_opts_" });
  try {
    const cases: [string, number, string][] = [
      ["nan.wav", NaN, "NaN"],
      ["inf.wav", Infinity, "\\+inf"],
      ["neg_inf.wav", -Infinity, "-inf"],
    ];
    for (const [name, bad, says] of cases) {
      const path = join(dir, name);
      const samples = Array.from({ length: 32000 }, (_, i) => Math.sin(i / 10) * 0.1);
      samples[16000] = bad;
      await Deno.writeFile(path, floatWav(samples));
      await assert.rejects(
        () => decodeAudio(path, { sampleRate: 16000, channels: 1 }),
        (e: unknown) => {
          assert.ok(e instanceof AudioDecodeError);
          assert.equal(
            e.message,
            `${path}: sample 16000 (channel 0, at 1.000 s) is ${
              says.replace("\\", "")
            }; audio samples must be finite`,
          );
          return true;
        },
      );
      // In the first second the CLI's early check sees it before any other work.
      samples[16000] = 0;
      samples[100] = bad;
      await Deno.writeFile(path, floatWav(samples));
      const r = await capture(prepareAudio, ["--audio", path, "--out", join(dir, "out"), "--no-separate"]);
      assert.equal(r.code, 1);
      assert.match(r.err, new RegExp(`^hallo prepare-audio: --audio .*${name}: sample 100 .* is ${says};`));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
