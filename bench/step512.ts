/**
 * One denoising step at Hallo's real size with full-size random weights, in one process so its peak RSS is
 * the step's: the reference UNet on the reference image and the 2 motion frames with CFG (batch 6) writes
 * the bank, then the denoising UNet reads it for 16 frames + 2 motion frames with CFG, run one CFG half at a
 * time (`cfgBatch: "halves"`: a batch-1 graph called for uncond then cond, as the pipeline runs it when the joint
 * batch-2 call does not fit). Each session is released before the next is created, as a step runs them one
 * after the other. Prints one JSON line.
 *
 * Usage: deno run -A bench/step512.ts [--latent 64] [--frames 16] [--chunk-bytes N]
 *        deno run -A bench/step512.ts --self-check [--latent 32] [--frames 8]
 * `--self-check` runs the denoising UNet on the same weights and inputs twice, as the joint batch-2 graph and
 * in CFG halves, prints the relative L2 difference of their noise_pred and exits 1 above 1e-5.
 * BENCH_KEEP=DIR keeps (and reuses) the random checkpoints there; BENCH_MMAP=0 pre-packs the weights (default:
 * in place, as the pipeline loads them); BENCH_ARENA=1|0 forces ORT's CPU arena on or off (default: off for the
 * halves graph, on otherwise, as loadHalloModels does).
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
import type { F32Tensor, Tensor } from "../src/tensor.ts";
import { halfRows, mergeHalves } from "../src/stages/networks/cfg_halves.ts";
import { compare } from "../src/parity/compare.ts";
import { ensureRandomCheckpoint, peakRssMiB, recordedKeys, timed } from "./util.ts";

const args = Deno.args;
const flag = (name: string, dflt: number) =>
  args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt;
const selfCheck = args.includes("--self-check");
const latent = flag("--latent", selfCheck ? 32 : 64);
const frames = flag("--frames", selfCheck ? 8 : 16);
const chunkBytes = args.includes("--chunk-bytes") ? flag("--chunk-bytes", 0) : undefined;
const motion = 2, batch = 2, ctxTokens = 4, audioTokens = 32;
const mmapWeights = Deno.env.get("BENCH_MMAP") !== "0";
// off for the halves graph, as loadHalloModels loads it; BENCH_ARENA=1 or 0 forces it
const arenaEnv = Deno.env.get("BENCH_ARENA");
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
  await ensureRandomCheckpoint(file, recordedKeys(build));
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
const halvesShape = { ...denShape, batch: 1, cfgHalves: true };
const buildRef = (w: WeightSource) => buildReferenceUNet(cfg, w, refShape);
const buildDen = (w: WeightSource, o: BuildOptions = {}, halves = false) =>
  buildDenoisingUNet(cfg, HALLO_UNET_KWARGS, w, halves ? halvesShape : denShape, o);

/**
 * The denoising UNet's batch-2 inputs besides the bank (those of the joint graph `denInputs`, whatever graph
 * runs): deterministic, timestep and motion_scale as a step has.
 */
function denoisingFeeds(bank: Record<string, Tensor>): Record<string, Tensor> {
  const f: Record<string, Tensor> = { ...bank };
  for (const i of denInputs) {
    if (f[i.name]) continue;
    f[i.name] = i.name === "timestep"
      ? { dtype: "float32", shape: [1], data: Float32Array.of(874) }
      : i.name === "motion_scale"
      ? { dtype: "float32", shape: [3], data: Float32Array.of(1, 1, 1) }
      : randn((i.dims ?? []).map(Number), i.name.length);
  }
  return f;
}

/** Inputs without a CFG batch axis: the bank (both copies; a halves graph picks from them) and the scalars. */
const shared = (name: string) => name.startsWith("bank.") || name === "timestep" || name === "motion_scale";

/** CFG half `half` of batch-2 feeds, as `predictNoise` cuts them for a CFG-halves graph. */
function halfFeeds(feeds: Record<string, Tensor>, half: 0 | 1): Record<string, Tensor> {
  const out: Record<string, Tensor> = {
    cfg_half: { dtype: "int64", shape: [1], data: BigInt64Array.of(BigInt(half)) },
  };
  for (const [k, v] of Object.entries(feeds)) out[k] = shared(k) ? v : halfRows(v as F32Tensor, half);
  return out;
}

/**
 * Builds `g`, creates its session and runs it: once on `feeds(g)`, or with `halves` once per CFG half of
 * batch-2 `feeds` (noise_pred concatenated [uncond, cond]); `forward_s` per run.
 */
async function forward(
  g: Graph,
  dir: string,
  feeds: (g: Graph) => Record<string, Tensor>,
  halves = false,
) {
  const [bytes, build_s] = await timed(() => g.encode(dir));
  const [session, session_s] = await timed(() =>
    Session.create(bytes, dir, {
      threads: 2,
      mmapWeights,
      cpuArena: arenaEnv === undefined ? !halves : arenaEnv !== "0",
    })
  );
  try {
    if (!halves) {
      const [out, forward_s] = await timed(() => session.run(feeds(g)));
      return { out, build_s, session_s, forward_s: [forward_s] };
    }
    const all = feeds(g);
    const [u, forward_u] = await timed(() => session.run(halfFeeds(all, 0)));
    const [c, forward_c] = await timed(() => session.run(halfFeeds(all, 1)));
    return {
      out: mergeHalves(cfg, u, c),
      build_s,
      session_s,
      forward_s: [forward_u, forward_c],
    };
  } finally {
    await session.release();
  }
}

// The joint (batch-2) graph's inputs: the layout every feed is made in.
const denInputs = buildDen(new LayoutRecorder()).inputs;
const keep = Deno.env.get("BENCH_KEEP");
const dir = keep ?? await Deno.makeTempDir({ prefix: "hallo-step512-" });
if (keep) await Deno.mkdir(keep, { recursive: true });
try {
  const denFile = await checkpoint(dir, "denoising_unet-full", (w) => buildDen(w));
  // The bank as the reference UNet's outputs, or random in their shapes (values do not matter to time or memory).
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
    const o: BuildOptions = chunkBytes === undefined ? {} : { chunkBytes };
    const runDen = async (halves: boolean) => {
      const g = buildDen(WeightStore.open(denFile), o, halves);
      const r = await forward(g, dir, () => denoisingFeeds(bank), halves);
      return { pred: r.out.noise_pred.data as Float32Array, forward_s: r.forward_s };
    };
    // Today's forward (the joint batch-2 graph) against the memory-bounded one (CFG halves).
    const whole = await runDen(false);
    const halves = await runDen(true);
    const rel = compare(halves.pred, whole.pred, "noise_pred").rel_l2;
    console.log(JSON.stringify({
      bench: "step512-self-check",
      compares: "denoising UNet noise_pred: CFG halves vs the joint batch-2 graph",
      latent,
      frames,
      motion_frames: motion,
      rel_l2: rel,
      joint_forward_s: whole.forward_s[0],
      halves_forward_s: halves.forward_s,
      ok: rel <= 1e-5,
      peak_rss_gib: peakRssMiB() / 1024,
      load_before: load,
    }));
    if (!(rel <= 1e-5)) Deno.exit(1);
  } else {
    const refFile = await checkpoint(dir, "reference_unet-full", buildRef);
    const ref = await forward(buildRef(WeightStore.open(refFile)), dir, () => ({
      sample: randn([refShape.batch, 4, latent, latent]),
      timestep: { dtype: "float32", shape: [1], data: Float32Array.of(0) },
      encoder_hidden_states: randn([batch, ctxTokens, cfg.cross_attention_dim], 2),
    }));
    const bank = bankOf(ref.out);
    ref.out = {};
    const o: BuildOptions = chunkBytes === undefined ? {} : { chunkBytes };
    const den = await forward(
      buildDen(WeightStore.open(denFile), o, true),
      dir,
      () => denoisingFeeds(bank),
      true,
    );
    const pred = den.out.noise_pred.data as Float32Array;
    const [forward_uncond_s, forward_cond_s] = den.forward_s;
    console.log(JSON.stringify({
      bench: "step512",
      what: `${latent * 8}x${latent * 8}: reference UNet (1+${motion} images, CFG), denoising UNet ` +
        `(${frames}+${motion} frames, CFG in halves), full-size random weights`,
      cfg_batch: "halves",
      seconds: ref.forward_s[0] + forward_uncond_s + forward_cond_s,
      peak_rss_gib: peakRssMiB() / 1024,
      reference_forward_s: ref.forward_s[0],
      denoising_forward_s: forward_uncond_s + forward_cond_s,
      denoising_forward_uncond_s: forward_uncond_s,
      denoising_forward_cond_s: forward_cond_s,
      reference_session_s: ref.session_s,
      denoising_session_s: den.session_s,
      chunk_bytes: chunkBytes ?? "default",
      mmap: mmapWeights,
      cpu_arena: arenaEnv === undefined ? false : arenaEnv !== "0",
      finite: pred.every(Number.isFinite),
      load_before: load,
      load_after: loadavg(),
    }));
  }
} finally {
  if (!keep) await Deno.remove(dir, { recursive: true });
}
