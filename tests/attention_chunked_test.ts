/**
 * Memory-bounded UNet graphs (src/onnx/attention_chunked.ts): attention and feed-forward split over the batch
 * compute what the whole batch does, and small graphs are built exactly as without the option.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildDenoisingUNet, type DenoisingUNetShape } from "../src/models/denoising_unet.ts";
import { parseUNetConfig, type UNetConfig } from "../src/models/unet_config.ts";
import type { BuildOptions } from "../src/models/unet_parts.ts";
import { partsFor } from "../src/onnx/attention_chunked.ts";
import { Session } from "../src/runtime/session.ts";
import type { F32Tensor, Tensor } from "../src/tensor.ts";
import { halfRows } from "../src/stages/networks/cfg_halves.ts";
import { TINY_AUDIO_PROJ, TINY_UNET_KWARGS } from "../src/tiny/configs.ts";
import { WeightStore } from "../src/weights/store.ts";
import { tinyModel } from "./helpers/shared.ts";

const SHAPE: DenoisingUNetShape = {
  batch: 2,
  frames: 4,
  height: 8,
  width: 8,
  contextTokens: 4,
  audioTokens: TINY_AUDIO_PROJ.context_tokens,
  motionFrames: 2,
};

function tiny(): { dir: string; cfg: UNetConfig; store: WeightStore } {
  const dir = tinyModel("hallo");
  const raw = JSON.parse(Deno.readTextFileSync(tinyModel("stable-diffusion-v1-5", "unet", "config.json")));
  return { dir, cfg: parseUNetConfig(raw), store: WeightStore.open(join(dir, "net.pth")) };
}

function build(o: BuildOptions) {
  const { dir, cfg, store } = tiny();
  return { dir, graph: buildDenoisingUNet(cfg, TINY_UNET_KWARGS, store, SHAPE, o) };
}

/** Deterministic inputs for every graph input (timestep and motion_scale as a real step has them). */
function feeds(inputs: readonly { name: string; dims?: readonly unknown[] }[]): Record<string, Tensor> {
  const f: Record<string, Tensor> = {};
  for (const i of inputs) {
    const shape = (i.dims ?? []).map(Number);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let k = 0; k < n; k++) data[k] = Math.sin(k * 12.9898 + i.name.length) * 0.8;
    if (i.name === "timestep") data[0] = 874;
    if (i.name === "motion_scale") data.fill(1);
    f[i.name] = { dtype: "float32", shape, data };
  }
  return f;
}

Deno.test("partsFor splits only what exceeds the budget, into equal parts of the smallest batch", () => {
  assert.equal(partsFor(128 * 2 ** 20, 16, 2 ** 20, 8), 1);
  assert.equal(partsFor(4 * 2 ** 20, 16, 2 ** 20, 8), 4);
  // 5 parts would not divide 16 frames evenly (ORT's Split refuses an empty last part): 8.
  assert.equal(partsFor(4 * 2 ** 20, 20, 2 ** 20, 16), 8);
  assert.equal(partsFor(1, 16, 2 ** 20, 8), 8);
  assert.equal(partsFor(Infinity, 16, 2 ** 20, 8), 1);
});

Deno.test("small UNet graphs are byte-identical with and without the chunk budget", () => {
  const a = build({});
  const b = build({ chunkBytes: Infinity });
  assert.ok(!a.graph.nodes.some((n) => n.opType === "Split" && n.name.includes(".attn1/")));
  assert.deepEqual(a.graph.encode(a.dir), b.graph.encode(b.dir));
});

Deno.test("attention and feed-forward split over the batch give the unsplit denoising UNet's output", async () => {
  const whole = build({});
  // 64 KiB splits the tiny UNet's level-0 blocks in 4 (frames) and its motion modules in 6 (positions).
  const parts = build({ chunkBytes: 64 * 1024 });
  const splits = parts.graph.nodes.filter((n) => n.opType === "Split").length;
  assert.ok(splits > 20, `forced chunking built only ${splits} Split nodes`);
  // Module outputs keep their upstream names, so probes on them still find the whole tensors.
  for (
    const name of ["down_blocks.0.attentions.0.transformer_blocks.0.attn1", "mid_block.motion_modules.0"]
  ) {
    assert.ok(parts.graph.hasValue(name), name);
  }
  const x = feeds(whole.graph.inputs);
  const run = async (g: typeof whole) => {
    const s = await Session.create(g.graph.encode(g.dir), g.dir, { threads: 1 });
    try {
      return (await s.run(x)).noise_pred.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const a = await run(whole);
  const b = await run(parts);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2;
  }
  assert.ok(den > 0);
  const rel = Math.sqrt(num / den);
  assert.ok(rel < 1e-6, `relative L2 ${rel}`);
});

Deno.test("a CFG-halves graph splits into the batch-2 graph's parts and its two calls give the batch-2 output", async () => {
  const { dir, cfg, store } = tiny();
  const o = { chunkBytes: 64 * 1024 };
  const joint = { dir, graph: buildDenoisingUNet(cfg, TINY_UNET_KWARGS, store, SHAPE, o) };
  const halves = {
    dir,
    graph: buildDenoisingUNet(cfg, TINY_UNET_KWARGS, store, { ...SHAPE, batch: 1, cfgHalves: true }, o),
  };
  // The bank-reading attention of level 0 in as many parts as the batch-2 graph's cond half: the same part size.
  const attn1Parts = (g: typeof joint) =>
    g.graph.nodes.filter((n) => n.opType === "Split" && n.name.includes("down_blocks.0.attentions.0"))
      .map((n) => n.outputs.length);
  assert.ok(attn1Parts(joint).length > 0);
  assert.deepEqual(attn1Parts(halves)[0], attn1Parts(joint)[0]);
  const x = feeds(joint.graph.inputs);
  const shared = (k: string) => k.startsWith("bank.") || k === "timestep" || k === "motion_scale";
  const half = (h: 0 | 1): Record<string, Tensor> => ({
    ...Object.fromEntries(
      Object.entries(x).map(([k, v]) => [k, shared(k) ? v : halfRows(v as F32Tensor, h)]),
    ),
    cfg_half: { dtype: "int64", shape: [1], data: BigInt64Array.of(BigInt(h)) },
  });
  const session = async (g: typeof joint) =>
    await Session.create(g.graph.encode(g.dir), g.dir, { threads: 1 });
  const sj = await session(joint);
  const a = (await sj.run(x)).noise_pred.data as Float32Array;
  await sj.release();
  const sh = await session(halves);
  const u = (await sh.run(half(0))).noise_pred.data as Float32Array;
  const c = (await sh.run(half(1))).noise_pred.data as Float32Array;
  await sh.release();
  assert.equal(u.length + c.length, a.length);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    const b = i < u.length ? u[i] : c[i - u.length];
    num += (a[i] - b) ** 2;
    den += a[i] ** 2;
  }
  assert.ok(den > 0);
  const rel = Math.sqrt(num / den);
  // Batch-1 and batch-2 kernels may round differently on these generic inputs (1.1e-6 measured); a half fed
  // the wrong rows or bank copy is off by orders of magnitude more.
  assert.ok(rel < 1e-5, `relative L2 ${rel}`);
});
