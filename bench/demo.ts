/**
 * The demo's end-to-end time as a new user meets it: a fresh clone of this checkout's committed tree in a temp
 * folder, `deno install` (the npm packages come from Deno's cache: "after Deno and the npm packages are
 * fetched"), then `deno task demo` timed from start to exit, tiny weights made on the spot. Prints one JSON line.
 *
 * Usage: deno run -A bench/demo.ts
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { loadavg } from "node:os";

const root = fileURLToPath(new URL("..", import.meta.url));

async function sh(cmd: string, args: string[], cwd: string, quiet = true): Promise<void> {
  const r = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: quiet ? "null" : "inherit",
    stderr: quiet ? "piped" : "inherit",
  }).output();
  if (!r.success) {
    const err = quiet ? new TextDecoder().decode(r.stderr).trim().split("\n").pop() : "";
    throw new Error(`bench demo: ${cmd} ${args.join(" ")} failed in ${cwd}${err ? `: ${err}` : ""}`);
  }
}

const tmp = await Deno.makeTempDir({ prefix: "hallo-bench-demo-" });
try {
  const clone = join(tmp, "hallo-lab");
  await sh("git", ["clone", "-q", root, clone], tmp);
  await sh(Deno.execPath(), ["install", "--quiet"], clone);
  const load = loadavg();
  const t0 = performance.now();
  await sh(Deno.execPath(), ["task", "--quiet", "demo"], clone, false);
  const seconds = (performance.now() - t0) / 1000;
  const mp4 = await Deno.stat(join(clone, "out", "demo.mp4"));
  console.log(JSON.stringify({
    bench: "demo",
    what: "deno task demo on a fresh clone of the committed tree (tiny random weights made on the spot)",
    seconds,
    mp4_bytes: mp4.size,
    load_before: load,
    load_after: loadavg(),
  }));
} finally {
  await Deno.remove(tmp, { recursive: true });
}
