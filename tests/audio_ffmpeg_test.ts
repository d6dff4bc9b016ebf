import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ensureExecutable,
  FfmpegError,
  ffmpegPath,
  ffmpegSink,
  runFfmpeg,
  streamFfmpeg,
} from "../src/util/ffmpeg.ts";
import { readWav } from "../src/stages/audio/wav.ts";

Deno.test("ffmpegPath gives an executable that runs", async () => {
  const p = await ffmpegPath();
  assert.ok((Deno.statSync(p).mode! & 0o111) !== 0);
  const { stdout } = await runFfmpeg(["-version"]);
  assert.match(new TextDecoder().decode(stdout), /^ffmpeg version/);
});

Deno.test("ensureExecutable sets the execute bit, and names a missing binary", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const f = join(dir, "tool");
    Deno.writeTextFileSync(f, "#!/bin/sh\n");
    Deno.chmodSync(f, 0o644);
    assert.equal(ensureExecutable(f, join(dir, "cache")), f);
    assert.ok((Deno.statSync(f).mode! & 0o111) !== 0);
    assert.throws(() => ensureExecutable(join(dir, "nope"), dir), /nope does not exist/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("runFfmpeg failure is an FfmpegError naming the input with ffmpeg's message", async () => {
  await assert.rejects(
    runFfmpeg(["-v", "error", "-i", "/nonexistent/in.wav", "-f", "null", "-"], {
      input: "/nonexistent/in.wav",
    }),
    (e: Error) => {
      assert.ok(e instanceof FfmpegError);
      assert.match(e.message, /ffmpeg failed on \/nonexistent\/in\.wav \(exit \d+\): .*No such file/);
      return true;
    },
  );
});

Deno.test("runFfmpeg feeds stdin; streamFfmpeg yields stdout and reports failure after it", async () => {
  const pcm = new Uint8Array(3200); // 0.1 s of s16le silence at 16 kHz
  const { stdout } = await runFfmpeg([
    "-v",
    "error",
    "-f",
    "s16le",
    "-ar",
    "16000",
    "-ac",
    "1",
    "-i",
    "pipe:0",
    "-f",
    "f32le",
    "pipe:1",
  ], {
    stdin: pcm,
  });
  assert.equal(stdout.length, 6400);
  let n = 0;
  await assert.rejects(async () => {
    for await (
      const c of streamFfmpeg(["-v", "error", "-i", "/nonexistent.wav", "-f", "wav", "pipe:1"], {
        input: "x.wav",
      })
    ) {
      n += c.length;
    }
  }, /ffmpeg failed on x\.wav/);
  assert.equal(n, 0);
});

Deno.test("ffmpegSink: data written piece by piece becomes a file; a bad output is an FfmpegError on close", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const out = join(dir, "ramp.wav");
    const sink = await ffmpegSink([
      "-v",
      "error",
      "-f",
      "s16le",
      "-ar",
      "8000",
      "-ac",
      "1",
      "-i",
      "pipe:0",
      out,
    ]);
    for (let k = 0; k < 4; k++) {
      await sink.write(new Uint8Array(Int16Array.from({ length: 1000 }, (_, i) => i + k).buffer));
    }
    await sink.close();
    const w = await readWav(out);
    assert.equal(w.channels[0].length, 4000);
    assert.equal(w.channels[0][1001] * 32768, 2); // piece 1, sample 1: i + k = 1 + 1
    const bad = await ffmpegSink(["-v", "error", "-f", "s16le", "-i", "pipe:0", "-f", "nosuchformat", "x"], {
      input: "frames",
    });
    await assert.rejects(async () => {
      await bad.write(new Uint8Array(64));
      await bad.close();
    }, /ffmpeg failed on frames/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
