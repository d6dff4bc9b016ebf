/**
 * One forward of one network at one geometry, with random weights, profiled: FLOPs per op class counted
 * from the graph, kernel time per op class from ORT's profiler, session creation and peak RSS. A warm-up
 * forward, then the measured one (both profiled; the last is used). Prints one JSON line.
 * Usage: deno run -A bench/roofline_one.ts <reference_unet|denoising_unet|vae_decoder> <size px> <frames>
 *        [nocfg|halves]
 * `halves`: the CFG pair as the two runs of the `cfgBatch: "halves"` graph (cfg_half 0, then 1; the
 * memory-bounded form at 512x512): one forward is both runs, its FLOPs the sum of both.
 * BENCH_KEEP=DIR keeps (and reuses) the random checkpoint there.
 */
import { join } from "node:path";
import { DataType } from "../src/onnx/proto.ts";
import { readProfile } from "../src/runtime/profile.ts";
import { Session } from "../src/runtime/session.ts";
import {
  buildCostNetwork,
  costInputDims,
  type CostNetwork,
  fullSizeConfigs,
  networkCost,
  type RunGeometry,
} from "../src/stages/generate/cost_networks.ts";
import type { Tensor } from "../src/tensor.ts";
import { WeightStore } from "../src/weights/store.ts";
import { LayoutRecorder } from "../src/tiny/layout.ts";
import { ensureRandomCheckpoint, peakRssMiB, timed } from "./util.ts";

const [network, sizeArg, framesArg, cfgArg] = Deno.args as [CostNetwork, string, string, string?];
const halves = cfgArg === "halves";
const geo: RunGeometry = {
  size: Number(sizeArg),
  frames: Number(framesArg),
  guidance: cfgArg !== "nocfg",
  ...(halves ? { cfgBatch: "halves" as const } : {}),
};
// ORT's profiler costs the 64x64 halves forward gigabytes (killed at 17.3 GB with it); BENCH_PROFILE=0 skips
// it: the forward is timed whole and no time per op class is read.
const profile = Deno.env.get("BENCH_PROFILE") !== "0";
/** Graph runs per forward. */
const runs = halves ? 2 : 1;
const configs = fullSizeConfigs();

function fill(dims: number[], name: string, elemType: number): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  if (elemType === DataType.INT64) return { dtype: "int64", shape: dims, data: new BigInt64Array(n) };
  const d = new Float32Array(n);
  if (name === "timestep") d.fill(874);
  else if (name === "motion_scale") d.fill(1);
  else for (let i = 0; i < n; i++) d[i] = Math.sin(i * 12.9898 + 1) * 0.8;
  return { dtype: "float32", shape: dims, data: d };
}

const rec = network === "vae_decoder"
  ? new LayoutRecorder((k) => k.endsWith(".query.weight"))
  : new LayoutRecorder();
// built over `rec`, which records the keys the random checkpoint needs
const cost = networkCost(network, geo, configs, rec);
const inputDims = costInputDims(network, geo, configs);
const keep = Deno.env.get("BENCH_KEEP");
const dir = keep ?? await Deno.makeTempDir({ prefix: "hallo-roofline-" });
const profDir = await Deno.makeTempDir({ prefix: "hallo-profile-" });
try {
  await Deno.mkdir(dir, { recursive: true });
  // the keys a network binds do not depend on the geometry: one checkpoint per network
  const file = join(dir, `${network}-full.safetensors`);
  await ensureRandomCheckpoint(file, rec.tensors());
  const g = buildCostNetwork(network, geo, configs, WeightStore.open(file));
  const [session, session_s] = await timed(() =>
    Session.create(g.encode(dir), dir, {
      threads: 2,
      mmapWeights: true,
      cpuArena: !halves,
      ...(profile ? { profilePrefix: join(profDir, "ort") } : {}),
    })
  );
  const feeds: Record<string, Tensor> = {};
  for (const i of g.inputs) {
    feeds[i.name] = fill(inputDims[i.name] ?? (i.dims as number[]), i.name, i.elemType);
  }
  const forward = async () => {
    for (let h = 0; h < runs; h++) {
      if (halves) feeds.cfg_half = { dtype: "int64", shape: [1], data: BigInt64Array.of(BigInt(h)) };
      await session.run(feeds);
    }
  };
  const [, first_s] = await timed(forward);
  const [, forward_s] = await timed(forward);
  if (profile) session.endProfiling();
  await session.release();
  const profiled = profile ? (await readProfile(profDir)).slice(-runs) : [];
  const sum = (k: "byClass" | "byOp") => {
    const out: Record<string, number> = {};
    for (const r of profiled) for (const [c, v] of Object.entries(r[k])) out[c] = (out[c] ?? 0) + v;
    return out;
  };
  console.log(JSON.stringify({
    network,
    ...geo,
    cfg_batch: halves ? "halves" : "joint",
    flops: cost.flops,
    total_flops: cost.totalFlops,
    weight_bytes: cost.weightBytes,
    activation_peak_bytes: cost.activationPeakBytes,
    attention_scores_bytes: cost.attentionScoresBytes,
    session_s,
    first_s,
    forward_s,
    profiled_s: profile ? profiled.reduce((a, r) => a + r.seconds, 0) : null,
    class_s: sum("byClass"),
    op_s: sum("byOp"),
    peak_rss_mib: peakRssMiB(),
  }));
} finally {
  if (!keep) await Deno.remove(dir, { recursive: true });
  await Deno.remove(profDir, { recursive: true });
}
