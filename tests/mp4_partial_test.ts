/**
 * writeMp4's temporary files: each write has its own `<out>.<host>-<pid>-<n>.partial.mp4`, and after a
 * successful write the partial files of writers that are gone (a killed process, whose orphaned ffmpeg may
 * still finish its file) are removed, while those of live writers stay.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { probeMedia, writeMp4 } from "../src/stages/video/mp4.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MP4 = new URL("../src/stages/video/mp4.ts", import.meta.url).href;
const S = 64;
const host = Deno.hostname().replace(/[^A-Za-z0-9_]/g, "_");
const frames = (n: number) => Array.from({ length: n }, (_, i) => new Uint8Array(S * S * 3).fill(i * 20));
const partialsOf = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".partial.mp4")).sort();

Deno.test("writeMp4 removes the partial files of dead writers after a successful write, keeps live ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo-mp4-" });
  const sleeper = new Deno.Command("sleep", { args: ["60"], stdout: "null", stderr: "null" }).spawn();
  try {
    const done = new Deno.Command("true").spawn();
    await done.status;
    const out = join(dir, "v.mp4");
    const names = {
      old: "v.mp4.partial.mp4",
      dead: `v.mp4.${host}-${done.pid}-0.partial.mp4`,
      live: `v.mp4.${host}-${sleeper.pid}-3.partial.mp4`,
      otherHost: `v.mp4.not_${host}-${done.pid}-0.partial.mp4`,
      otherOut: `w.mp4.${host}-${done.pid}-0.partial.mp4`,
    };
    for (const n of Object.values(names)) await Deno.writeFile(join(dir, n), new Uint8Array(10));
    assert.equal(await writeMp4(frames(3), out, { width: S, height: S }), 3);
    assert.equal((await probeMedia(out)).frames, 3);
    assert.deepEqual(partialsOf(dir), [names.live, names.otherHost, names.otherOut].sort());
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an mp4 write killed midway leaves no partial file after the next successful write", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo-mp4-" });
  try {
    const out = join(dir, "v.mp4");
    const code = `
      import { writeMp4 } from ${JSON.stringify(MP4)};
      async function* endless() {
        for (let i = 0;; i++) {
          yield new Uint8Array(${S * S * 3}).fill(i % 256);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      await writeMp4(endless(), ${JSON.stringify(out)}, { width: ${S}, height: ${S} });`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      cwd: ROOT,
      stdout: "null",
      stderr: "null",
    }).spawn();
    const partial = join(dir, `v.mp4.${host}-${child.pid}-0.partial.mp4`);
    const t0 = performance.now();
    while (!(await Deno.stat(partial).then((s) => s.size > 0, () => false))) {
      assert.ok(performance.now() - t0 < 60_000, "the writer never started its partial file");
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    await child.status;
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);

    assert.equal(await writeMp4(frames(2), out, { width: S, height: S }), 2);
    assert.equal((await probeMedia(out)).frames, 2);
    assert.deepEqual(partialsOf(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
