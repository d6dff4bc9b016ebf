/**
 * ORT profiler traces read back as time per op class and per run (src/runtime/profile.ts), on a hand-written
 * trace and on the trace a real session writes; and the peak helpers of src/runtime/peak.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Graph } from "../src/onnx/graph.ts";
import { parseProfile, readProfile } from "../src/runtime/profile.ts";
import { theoreticalPeak } from "../src/runtime/peak.ts";
import { Session } from "../src/runtime/session.ts";
import { f32 } from "../src/tensor.ts";

const node = (name: string, op: string, ts: number, dur: number) => ({
  cat: "Node",
  name: `${name}_kernel_time`,
  ts,
  dur,
  args: { op_name: op },
});

Deno.test("a trace splits into its runs; kernel time is summed per op class and per op", () => {
  const trace = [
    { cat: "Session", name: "session_initialization", ts: 0, dur: 50 },
    { cat: "Session", name: "model_run", ts: 100, dur: 1000 },
    node("a/Conv_0", "FusedConv", 110, 300),
    node("b/Gemm_1", "Gemm", 420, 200),
    node("c/MultiHeadAttention_2", "MultiHeadAttention", 630, 100),
    node("d/InstanceNormalization_3", "InstanceNormalization", 740, 50),
    node("e/Add_4", "Add", 800, 10),
    { cat: "Session", name: "model_run", ts: 2000, dur: 500 },
    node("a/Conv_0", "FusedConv", 2010, 250),
  ];
  const runs = parseProfile(trace);
  assert.equal(runs.length, 2);
  assert.equal(runs[0].seconds, 0.001);
  assert.deepEqual(runs[0].byClass, {
    conv: 300e-6,
    matmul: 200e-6,
    attention: 100e-6,
    norm: 50e-6,
    other: 10e-6,
  });
  assert.deepEqual(runs[1].byClass, { conv: 250e-6, matmul: 0, attention: 0, norm: 0, other: 0 });
  assert.equal(runs[0].byOp.FusedConv, 300e-6);
  assert.throws(
    () => parseProfile([{ cat: "Session", name: "x" }], "t.json"),
    /t.json: the profile holds no model_run/,
  );
  assert.throws(() => parseProfile({}, "t.json"), /t.json: not an ORT profile/);
});

Deno.test("a session created with profilePrefix writes a trace with every run's MatMul time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo-profile-test-" });
  try {
    const g = new Graph("mm");
    const a = g.input("a", [64, 64]);
    g.output(g.op1("MatMul", [a, a], { path: "mm" }), "y");
    // ORT opens the trace file when the session is created: its folder must exist by then
    await Deno.mkdir(join(dir, "prof"));
    const s = await Session.create(g.encode(dir), dir, {
      threads: 1,
      profilePrefix: join(dir, "prof", "ort"),
    });
    const feeds = { a: f32([64, 64], new Float32Array(64 * 64).fill(0.5)) };
    await s.run(feeds);
    await s.run(feeds);
    s.endProfiling();
    await s.release();
    const runs = await readProfile(join(dir, "prof"));
    assert.equal(runs.length, 2);
    for (const r of runs) {
      assert.ok(r.byClass.matmul > 0, "the MatMul kernel is timed");
      assert.ok(r.byClass.matmul <= r.seconds, "kernel time fits inside its run");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("theoretical peak: cores x 32 FLOP/cycle (AVX2 + FMA) x clock from /proc/cpuinfo text", () => {
  const cpuinfo = "model name\t: Test CPU\ncpu MHz\t\t: 2000.000\nflags\t\t: sse avx avx2 fma\n";
  const p = theoreticalPeak(cpuinfo, 2);
  assert.equal(p.flopsPerCycle, 32);
  assert.equal(p.gflops, 128);
  assert.equal(p.model, "Test CPU");
  assert.equal(theoreticalPeak("cpu MHz : 1000\nflags : sse2\n", 1).gflops, 8);
});
