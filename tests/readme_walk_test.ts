/**
 * README's "Looking inside" walk is a test: its code block, taken from README.md as it stands, runs against the
 * tiny random weights (64x64, 4-frame clips, 2 steps) in a temporary folder and prints what it says it prints.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The first ```ts block of README's "Looking inside" section. */
function walkSource(readme: string): string {
  const section = readme.split(/^## /m).find((s) => s.startsWith("Looking inside"));
  assert.ok(section, "README has no 'Looking inside' section");
  const block = section.match(/```ts\n([\s\S]*?)```/);
  assert.ok(block, "the 'Looking inside' section has no ts code block");
  return block[1];
}

Deno.test("README walk: the front-door example runs on tiny weights, step by step, then the whole video", async () => {
  const src = walkSource(await Deno.readTextFile(join(ROOT, "README.md")));
  assert.match(src, /from "\.\/mod\.ts"/, "the walk imports the public API only");
  const dir = await Deno.makeTempDir({ prefix: "hallo-readme-walk-" });
  try {
    const file = join(dir, "walk.ts");
    await Deno.writeTextFile(
      file,
      src.replaceAll('"./mod.ts"', `"${pathToFileURL(join(ROOT, "mod.ts")).href}"`),
    );
    const env = Deno.env.toObject();
    delete env.HALLO_WEIGHTS;
    // The walk's ensureTinyWeights() makes its set in this test's temp folder, not in the project.
    env.HALLO_TINY_DIR = join(dir, "tiny");
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", `--config=${join(ROOT, "deno.json")}`, file],
      cwd: dir,
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, `${out}\n${err}`);
    // Two steps of clip 0 with 4-frame latents of 64/8 = 8 pixels, then its 4 decoded frames.
    assert.match(out, /step 0 t \d+ next \[ 1, 4, 4, 8, 8 \]/);
    assert.match(out, /step 1 t \d+ next \[ 1, 4, 4, 8, 8 \]/);
    assert.match(out, /frames \[ 1, 3, 4, 64, 64 \]/);
    const clips = [...out.matchAll(/clip (\d+) of (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.ok(clips.length > 1, out);
    assert.deepEqual(clips.map(([i]) => i), clips.map((_, k) => k + 1), "every clip once, in order");
    const video = out.match(/video (\S+) (\d+) frames in (\S+)/);
    assert.ok(video, out);
    assert.equal(video[1], "walk.mp4");
    assert.ok((await Deno.stat(join(dir, "walk.mp4"))).size > 0, "the mp4 is written in the working folder");
    assert.ok((await Deno.stat(join(dir, "walk.run", "run.json"))).isFile, "beside its run directory");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
