/**
 * One network on a GPU device against the CPU EP, with random weights: the CPU forward first (its outputs are
 * the reference; its session is released before the device's is created, so one copy of the weights is
 * loaded at a time), then the device session (every compute node on the device, `strictDevice`), a first
 * and a warm forward, the relative L2 of every output against the CPU's, and the share of a step spent
 * moving data: the step's inputs uploaded and outputs downloaded by themselves (x*1 graphs whose outputs stay
 * on the GPU / come back to the CPU), over the whole step. Prints one JSON line.
 */
import { join } from "node:path";
import { Graph } from "../src/onnx/graph.ts";
import { buildFor } from "../src/onnx/layers.ts";
import type { Device } from "../src/runtime/device.ts";
import { Session } from "../src/runtime/session.ts";
import { toOrt } from "../src/runtime/tensors.ts";
import type { Tensor } from "../src/tensor.ts";
import { compare } from "../src/parity/compare.ts";
import { WeightStore } from "../src/weights/store.ts";
import type { Spec } from "./network_one.ts";
import { ensureRandomCheckpoint, paramCount, peakRssMiB, recordedKeys, timed } from "./util.ts";

/** `y_i = x_i * 1` for float32 tensors of the given shapes: the smallest graph that moves them. */
function passGraph(shapes: Record<string, readonly number[]>): Graph {
  const g = new Graph("move");
  for (const [name, shape] of Object.entries(shapes)) {
    const x = g.input(name, shape);
    g.output(g.op1("Mul", [x, g.floats(`${name}/one`, [1], [])], { path: name }), `${name}.out`);
  }
  return g;
}

/** Seconds to upload `feeds` and download tensors shaped like `outs`, on `device` (best of three). */
async function movingSeconds(
  device: Device,
  dir: string,
  feeds: Record<string, Tensor>,
  outs: Record<string, Tensor>,
): Promise<{ up_s: number; down_s: number }> {
  const shapes = (ts: Record<string, Tensor>) =>
    Object.fromEntries(
      Object.entries(ts).filter(([, t]) => t.dtype === "float32").map(([k, t]) => [k, t.shape]),
    );
  const resident = (g: Graph) => Session.create(g.encode(dir), dir, { device, outputsOnDevice: true });
  const up = await resident(passGraph(shapes(feeds)));
  const outGraph = passGraph(shapes(outs));
  const upOuts = await resident(outGraph);
  const down = await Session.create(outGraph.encode(dir), dir, { device });
  let up_s = Infinity, down_s = Infinity;
  try {
    const host = (ts: Record<string, Tensor>) =>
      Object.fromEntries(Object.keys(shapes(ts)).map((k) => [k, toOrt(ts[k])]));
    const hostFeeds = host(feeds), hostOuts = host(outs);
    for (let i = 0; i < 3; i++) {
      const [onGpu, t] = await timed(() => up.runOnDevice(hostFeeds));
      up_s = Math.min(up_s, t);
      for (const v of Object.values(onGpu)) v.dispose();
      // the download's inputs are made resident first (not timed), then only device -> host is timed
      const outsOnGpu = await upOuts.runOnDevice(hostOuts);
      const inputs = Object.fromEntries(Object.keys(hostOuts).map((k) => [k, outsOnGpu[`${k}.out`]]));
      const [back, d] = await timed(() => down.runOnDevice(inputs));
      down_s = Math.min(down_s, d);
      for (const v of [...Object.values(outsOnGpu), ...Object.values(back)]) v.dispose();
    }
  } finally {
    for (const x of [up, upOuts, down]) await x.release();
  }
  return { up_s, down_s };
}

/** Runs `s` on the CPU EP and on `device`; prints one JSON line. */
export async function benchDevice(network: string, size: string, device: Device, s: Spec): Promise<void> {
  const keep = Deno.env.get("BENCH_KEEP");
  const dir = keep ?? await Deno.makeTempDir({ prefix: "hallo-bench-" });
  if (keep) await Deno.mkdir(keep, { recursive: true });
  try {
    const file = join(dir, `${network}-${size}.safetensors`);
    const keys = recordedKeys((w) => s.build(w));
    const params = paramCount(keys);
    await ensureRandomCheckpoint(file, keys);
    const feeds = s.feeds();

    const cpuBytes = buildFor("cpu", () => s.build(WeightStore.open(file))).encode(dir);
    // memory-mapped weights: the full denoising UNet is 6.1 GB, and this machine may be shared
    const cpu = await Session.create(cpuBytes, dir, { threads: 2, mmapWeights: true });
    const [ref, cpu_forward_s] = await timed(() => cpu.run(feeds));
    await cpu.release();

    const g = buildFor(device, () => s.build(WeightStore.open(file)));
    const [session, session_s] = await timed(() =>
      Session.create(g.encode(dir), dir, { device, graph: g, name: network, strictDevice: true })
    );
    const [out, forward_s] = await timed(() => session.run(feeds));
    let forward2_s = Infinity;
    for (let i = 0; i < 2; i++) forward2_s = Math.min(forward2_s, (await timed(() => session.run(feeds)))[1]);
    await session.release();
    const rel: Record<string, number> = {};
    for (const [k, v] of Object.entries(ref)) {
      rel[k] = compare(out[k].data as Float32Array, v.data as Float32Array, k).rel_l2;
    }
    const worst = Math.max(...Object.values(rel));

    const moving = device === "webgpu" ? await movingSeconds(device, dir, feeds, ref) : undefined;
    console.log(JSON.stringify({
      network,
      size,
      device,
      what: s.what,
      params,
      session_s,
      forward_s,
      forward2_s,
      cpu_forward_s,
      rel_l2_max: worst,
      rel_l2: rel,
      cpu_nodes: session.placement?.cpuCompute.length ?? 0,
      up_s: moving?.up_s,
      down_s: moving?.down_s,
      moving_share: moving ? (moving.up_s + moving.down_s) / forward2_s : undefined,
      peak_rss_mib: peakRssMiB(),
    }));
  } finally {
    if (!keep) await Deno.remove(dir, { recursive: true });
  }
}
