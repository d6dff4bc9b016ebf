/**
 * `deno task hallo doctor` on this machine: exits 0, names every provider as available or missing (the CPU and
 * WebGPU on lavapipe available, CUDA missing with the install step named), finds the Vulkan loader and the
 * adapter; libraries are found on LD_LIBRARY_PATH and in named folders, with how they were found.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { DoctorReport } from "../src/runtime/doctor.ts";
import { findLibrary } from "../src/runtime/doctor.ts";
import { ensureRuntimeDir } from "../src/runtime/providers.ts";
import { withEnv } from "./helpers/env.ts";
import { runCli } from "./helpers/cli.ts";

Deno.test("doctor: exits 0 and reports WebGPU available on lavapipe, CUDA missing with its fix", async () => {
  const run = (args: string[]) => runCli("doctor", args);
  const r = await run(["--json"]);
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out) as DoctorReport;
  const p = Object.fromEntries(report.providers.map((x) => [x.device, x]));
  assert.deepEqual(Object.keys(p).sort(), ["cpu", "cuda", "webgpu"]);
  assert.equal(p.cpu.ok, true);
  assert.equal(p.webgpu.ok, true, `WebGPU must start here (lavapipe, see .ci/run): ${p.webgpu.error}`);
  assert.equal(p.cuda.ok, false, "no CUDA provider is expected on this machine");
  assert.match(p.cuda.fix!, /deno install --allow-scripts=npm:onnxruntime-node/);
  assert.ok(report.vulkan.loader.found, "the Vulkan loader libvulkan.so.1");
  assert.ok(report.vulkan.icds.some((i) => /lvp/.test(i.library)), "lavapipe's ICD");
  assert.match(report.vulkan.adapter?.description ?? "", /llvmpipe/);
  for (const l of report.cuda) assert.ok(l.found || l.fix.length > 0, `${l.what}: a fix is named`);

  const text = await run([]);
  assert.equal(text.code, 0);
  const out = text.out;
  assert.match(out, /available webgpu/);
  assert.match(
    out,
    /missing\s+cuda[\s\S]*fix: the CUDA execution provider is not in the onnxruntime-node npm tarball/,
  );
  assert.equal((await run(["--bogus"])).code, 2);
});

Deno.test("doctor: a library is found on LD_LIBRARY_PATH, then in a named folder, else the fix is kept", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "hallo-doctor-" });
  try {
    const onPath = join(tmp, "ld"), named = join(tmp, "named");
    await Deno.mkdir(onPath);
    await Deno.mkdir(named);
    await Deno.writeFile(join(onPath, "libhallo_a.so.1"), new Uint8Array());
    await Deno.writeFile(join(named, "libhallo_b.so.2"), new Uint8Array());
    await withEnv({ LD_LIBRARY_PATH: `/nonexistent:${onPath}` }, () => {
      const a = findLibrary("a", ["libhallo_a.so.1"], "fix a", [named]);
      assert.deepEqual(a.found, { path: join(onPath, "libhallo_a.so.1"), via: "LD_LIBRARY_PATH" });
      const b = findLibrary("b", ["libhallo_b.so.2"], "fix b", [named]);
      assert.equal(b.found?.path, join(named, "libhallo_b.so.2"));
      assert.match(b.found!.via, /not on the linker path: add it to LD_LIBRARY_PATH/);
      const c = findLibrary("c", ["libhallo_c.so.3"], "fix c", [named]);
      assert.equal(c.found, undefined);
      assert.equal(c.fix, "fix c");
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("ensureRuntimeDir: unset, a private hallo-runtime-<uid> in TMPDIR is made and set; a set one is kept", async () => {
  // The test task gives the tests an XDG_RUNTIME_DIR of their own, so the unset case is made here.
  const tmp = await Deno.makeTempDir({ prefix: "hallo-xdg-test-" });
  try {
    await withEnv({ XDG_RUNTIME_DIR: undefined, TMPDIR: tmp }, async () => {
      const dir = ensureRuntimeDir();
      assert.equal(dir, join(tmp, `hallo-runtime-${Deno.uid()}`));
      assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
      assert.equal(Deno.env.get("XDG_RUNTIME_DIR"), dir);
    });
    await withEnv({ XDG_RUNTIME_DIR: "/run/user/1234", TMPDIR: join(tmp, "other") }, () => {
      assert.equal(ensureRuntimeDir(), "/run/user/1234");
    });
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), [`hallo-runtime-${Deno.uid()}`]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
