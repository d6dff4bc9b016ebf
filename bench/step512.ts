/**
 * One denoising step at Hallo's real size with full-size random weights, in one process so its peak RSS is
 * the step's: the reference UNet on the reference image and the 2 motion frames with CFG (batch 6) writes
 * the bank, then the denoising UNet reads it for 16 frames + 2 motion frames with CFG. Each session is
 * released before the next is created, as a step runs them one after the other. Prints one JSON line.
 *
 * Usage: deno run -A bench/step512.ts [--latent 64] [--frames 16] [--chunk-bytes N]
 *        deno run -A bench/step512.ts --self-check [--latent 32] [--frames 8]
 * `--self-check` runs the denoising UNet twice on the same weights and inputs, once with attention and
 * feed-forward split over the batch (forced) and once whole, and prints their relative L2 difference.
 * BENCH_KEEP=DIR keeps (and reuses) the random checkpoints there; BENCH_MMAP=1 keeps weights memory-mapped;
 * BENCH_ARENA=0 turns off ORT's CPU arena; BENCH_BATCH=1 runs one CFG half (a memory probe, not a step).
 */
import { join } from "node:path";
import { loadavg } from "node:os";
import type { Graph, WeightSource } from "../src/onnx/graph.ts";
import { buildReferenceUNet, referenceBankOutputs } from "../src/models/reference_unet.ts";
import { buildDenoisingUNet, denoisingBankInputs } from "../src/models/denoising_unet.ts";
import { HALLO_UNET_KWARGS, parseUNetConfig } from "../src/models/unet_config.ts";
import { SD15_UNET_CONFIG } from "../src/models/full_configs.ts";
import type { BuildOptions } from "../src/models/unet_parts.ts";
import { LayoutRecorder } from "../src/tiny/layout.ts";
import { WeightStore } from "../src/weights/store.ts";
import { Session } from "../src/runtime/session.ts";
import type { Tensor } from "../src/tensor.ts";
import { peakRssMiB, timed, writeRandomSafetensors } from "./util.ts";

const args = Deno.args;
const flag = (name: string, dflt: number) =>
  args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt;
const selfCheck = args.includes("--self-check");
const latent = flag("--latent", selfCheck ? 32 : 64);
const frames = flag("--frames", selfCheck ? 8 : 16);
const chunkBytes = args.includes("--chunk-bytes") ? flag("--chunk-bytes", 0) : undefined;
const motion = 2, batch = Number(Deno.env.get("BENCH_BATCH") ?? 2), ctxTokens = 4, audioTokens = 32;
const mmapWeights = Deno.env.get("BENCH_MMAP") === "1";
const cpuArena = Deno.env.get("BENCH_ARENA") !== "0";
const cfg = parseUNetConfig(structuredClone(SD15_UNET_CONFIG) as Record<string, unknown>);

function randn(shape: readonly number[], seed = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.sin(i * 12.9898 + seed) * 0.8;
  return { dtype: "float32", shape: [...shape], data: d };
}

/** Writes (or, under BENCH_KEEP, reuses) a random checkpoint for the keys `build` binds. */
async function checkpoint(dir: string, name: string, build: (w: WeightSource) => Graph): Promise<string> {
  const file = join(dir, `${name}.safetensors`);
  if (await Deno.stat(file).then(() => true, () => false)) return file;
  const rec = new LayoutRecorder();
  build(rec);
  await writeRandomSafetensors(file, rec.tensors().map((t) => ({ name: t.name, shape: [...t.shape] })));
  return file;
}

const refShape = {
  batch: batch * (1 + motion),
  contextBatch: batch,
  contextTokens: ctxTokens,
  height: latent,
  width: latent,
};
const denShape = {
  batch,
  frames,
  height: latent,
  width: latent,
  contextTokens: ctxTokens,
  audioTokens,
  motionFrames: motion,
};
const buildRef = (w: WeightSource) => buildReferenceUNet(cfg, w, refShape);
const buildDen = (w: WeightSource, o: BuildOptions = {}) =>
  buildDenoisingUNet(cfg, HALLO_UNET_KWARGS, w, denShape, o);

/** The denoising UNet's inputs besides the bank: deterministic, timestep and motion_scale as a step has. */
function denoisingFeeds(g: Graph, bank: Record<string, Tensor>): Record<string, Tensor> {
  const f: Record<string, Tensor> = { ...bank };
  for (const i of g.inputs) {
    if (f[i.name]) continue;
    f[i.name] = i.name === "timestep"
      ? { dtype: "float32", shape: [1], data: Float32Array.of(874) }
      : i.name === "motion_scale"
      ? { dtype: "float32", shape: [3], data: Float32Array.of(1, 1, 1) }
      : randn((i.dims ?? []).map(Number), i.name.length);
  }
  return f;
}

async function forward(g: Graph, dir: string, feeds: (g: Graph) => Record<string, Tensor>) {
  const [bytes, build_s] = await timed(() => g.encode(dir));
  const [session, session_s] = await timed(() =>
    Session.create(bytes, dir, { threads: 2, mmapWeights, cpuArena })
  );
  try {
    const [out, forward_s] = await timed(() => session.run(feeds(g)));
    return { out, build_s, session_s, forward_s };
  } finally {
    await session.release();
  }
}

const keep = Deno.env.get("BENCH_KEEP");
const dir = keep ?? await Deno.makeTempDir({ prefix: "hallo-step512-" });
if (keep) await Deno.mkdir(keep, { recursive: true });
try {
  const refFile = await checkpoint(dir, "reference_unet-full", buildRef);
  const denFile = await checkpoint(dir, "denoising_unet-full", (w) => buildDen(w));
  // The bank as the reference UNet's outputs, or random in their shapes (values do not matter to time or memory).
  const denInputs = buildDen(new LayoutRecorder()).inputs;
  const bankOf = (out?: Record<string, Tensor>) => {
    const bank: Record<string, Tensor> = {};
    const outs = referenceBankOutputs(cfg);
    denoisingBankInputs(cfg).forEach((name, i) => {
      const dims = (denInputs.find((x) => x.name === name)!.dims ?? []).map(Number);
      bank[name] = out?.[outs[i]] ?? randn(dims, i);
    });
    return bank;
  };
  const load = loadavg();
  if (selfCheck) {
    const bank = bankOf();
    const runDen = async (o: BuildOptions) => {
      const r = await forward(buildDen(WeightStore.open(denFile), o), dir, (g) => denoisingFeeds(g, bank));
      return r.out.noise_pred.data as Float32Array;
    };
    // 16 MiB splits every level's attention and feed-forward at 32x32 with 8+2 frames (level 0 in 8 parts)
    // without a part per row, which would multiply the graph; Infinity keeps them whole.
    const [split, whole] = [
      await runDen({ chunkBytes: 16 * 2 ** 20 }),
      await runDen({ chunkBytes: Infinity }),
    ];
    let num = 0, den = 0;
    for (let i = 0; i < whole.length; i++) {
      num += (split[i] - whole[i]) ** 2;
      den += whole[i] ** 2;
    }
    const rel = Math.sqrt(num / den);
    console.log(JSON.stringify({
      bench: "step512-self-check",
      latent,
      frames,
      motion_frames: motion,
      rel_l2: rel,
      ok: rel <= 1e-5,
      peak_rss_gib: peakRssMiB() / 1024,
      load_before: load,
    }));
    if (!(rel <= 1e-5)) Deno.exit(1);
  } else {
    const ref = await forward(buildRef(WeightStore.open(refFile)), dir, () => ({
      sample: randn([refShape.batch, 4, latent, latent]),
      timestep: { dtype: "float32", shape: [1], data: Float32Array.of(0) },
      encoder_hidden_states: randn([batch, ctxTokens, cfg.cross_attention_dim], 2),
    }));
    const bank = bankOf(ref.out);
    ref.out = {};
    const o: BuildOptions = chunkBytes === undefined ? {} : { chunkBytes };
    const den = await forward(buildDen(WeightStore.open(denFile), o), dir, (g) => denoisingFeeds(g, bank));
    const pred = den.out.noise_pred.data as Float32Array;
    console.log(JSON.stringify({
      bench: "step512",
      what: `${latent * 8}x${latent * 8}: reference UNet (1+${motion} images, CFG), denoising UNet ` +
        `(${frames}+${motion} frames, CFG), full-size random weights`,
      seconds: ref.forward_s + den.forward_s,
      peak_rss_gib: peakRssMiB() / 1024,
      reference_forward_s: ref.forward_s,
      denoising_forward_s: den.forward_s,
      reference_session_s: ref.session_s,
      denoising_session_s: den.session_s,
      chunk_bytes: chunkBytes ?? "default",
      mmap: mmapWeights,
      finite: pred.every(Number.isFinite),
      load_before: load,
      load_after: loadavg(),
    }));
  }
} finally {
  if (!keep) await Deno.remove(dir, { recursive: true });
}
