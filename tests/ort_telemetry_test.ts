/**
 * A process that opens ORT sessions through src/runtime leaves nothing in its temp folder: onnxruntime-node's
 * telemetry, left on, writes `mat-debug-<pid>.log` and `.ses` there and never removes them.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Runs `code` in a child Deno whose TMPDIR is a fresh folder, without ORT_DISABLE_TELEMETRY or CI; returns what
 * it left.
 */
async function leftInTmp(code: string): Promise<string[]> {
  const tmp = Deno.makeTempDirSync({ prefix: "hallo-ort-telemetry-" });
  try {
    const env = Deno.env.toObject();
    delete env.ORT_DISABLE_TELEMETRY;
    // ORT also leaves its telemetry off when CI is set (as .ci/run sets it): without it, the bare-ORT half
    // shows that the check can fail
    delete env.CI;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      cwd: ROOT,
      clearEnv: true,
      env: { ...env, TMPDIR: tmp },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    return [...Deno.readDirSync(tmp)].map((e) => e.name.replace(/-\d+\.log$/, "-<pid>.log")).sort();
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
}

Deno.test("a session opened through src/runtime leaves nothing in TMPDIR; one opened on bare ORT leaves telemetry files", async () => {
  const providers = new URL("../src/runtime/providers.ts", import.meta.url).href;
  assert.deepEqual(
    await leftInTmp(`const { probeProvider } = await import(${JSON.stringify(providers)});
      const r = await probeProvider("cpu");
      if (!r.ok) throw new Error(r.error);`),
    [],
  );
  // The same one-node graph on onnxruntime-node alone: what src/runtime/ort_telemetry.ts prevents (were ORT to
  // stop writing these files, that module could go).
  const graph = new URL("../src/onnx/graph.ts", import.meta.url).href;
  assert.deepEqual(
    await leftInTmp(`const ort = await import("onnxruntime-node");
      const { Graph } = await import(${JSON.stringify(graph)});
      const g = new Graph("probe");
      g.output(g.op1("Add", [g.input("x", [2]), g.input("y", [2])], { path: "add" }), "z");
      const s = await ort.InferenceSession.create(g.encode(Deno.cwd()));
      await s.release();`),
    [".ses", "mat-debug-<pid>.log"],
  );
});
