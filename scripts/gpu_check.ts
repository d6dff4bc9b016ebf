/**
 * The prepared check for the GPU machine (the device tool's H200), dry-runnable here on the CPU at a tiny size.
 *
 *   deno run -A scripts/gpu_check.ts [--device webgpu|cuda|cpu] [--latent 64] [--frames 16] [--steps 40]
 *       [--parity-latent 16] [--parity-frames 2] [--dtypes fp32,fp16] [--work DIR] [--json FILE]
 *       [--upstream DIR] [--python python3]
 *   deno run -A scripts/gpu_check.ts --dry-run      # CPU, tiny sizes: what tests/gpu_check_test.ts runs
 *
 * What it prints, per precision (fp32, fp16), with full-size random weights made on the spot (3.4 GB
 * reference UNet, 6.1 GB denoising UNet, 0.3 GB VAE decoder, written once into --work):
 *   - parity: both UNets and the VAE decoder on the device against the CPU EP (relative L2), at the parity
 *     size (the CPU cannot run 64x64 latents with 16+2 frames in the time a lease has: minutes per forward);
 *   - speed at the timing size (512x512 = a 64x64 latent, 16+2 frames, CFG): one reference-UNet forward, one
 *     denoising-UNet forward (warm, best of 2), one VAE decode of the clip's frames, and from them seconds per
 *     frame for `--steps` DDIM steps: (reference + steps * denoising + decode) / frames;
 *   - peak GPU memory: `nvidia-smi --query-gpu=memory.used` sampled every 0.2 s while the forwards run (the
 *     whole card: the lease's machine runs nothing else).
 *
 * Plan on the device tool (64 MiB sent per call, tracked tree included; 10 min per command; 15 min of device
 * time; no Node, Deno or network there): `deno run -A scripts/gpu_pack.ts --sources DIR` packs deno (xz),
 * node_modules with onnxruntime-node for linux-x64, upstream's pinned sources and libvulkan1 into `.gpu/`,
 * splits them over staging calls that each fit beside the working tree, and writes the calls, back to back,
 * into `.gpu/COMMANDS.md` (scripts/gpu_remote.sh runs them there): stage (and unpack), then `check --dtypes
 * fp32` (writes the random weights into /var/tmp/hallo-gpu/work) and `check --dtypes fp16` (reuses them).
 * Measured (2026-12-02, this checkout): payload deno 2.9.6 xz -9e 28.3 MiB, node_modules 12.1 MiB, upstream
 * 0.7 MiB, libvulkan1 0.1 MiB (41.2 MiB; packing took 9 min on two shared cores); tracked tree 49.9 MiB
 * (72.4 MiB before tests/reference dropped its duplicate net.safetensors and stray compiled graphs), so four
 * staging calls of 63.0, 63.0, 63.0 and 51.9 MiB, then the two checks: six calls back to back. The remote path
 * (stage, unpack, check) was dry-run here from a clean export, offline, with an empty DENO_DIR.
 * `--upstream DIR` (what gpu_pack puts in upstream.tar.xz) adds the same UNet forwards in upstream PyTorch
 * (scripts/gpu_check_upstream.py) over the same random checkpoints, timed with CUDA events.
 * `--device webgpu` needs the carried Vulkan loader and NVIDIA's ICD (VK_DRIVER_FILES); `--device cuda` needs
 * a CUDA provider for onnxruntime-node, which the H200's CUDA 13 libraries do not serve for ORT 1.30 (its
 * NuGet provider links CUDA 12): webgpu is the route that can run there. On webgpu, fp16 computes in float32
 * over the fp16 weights (`computeDType`): its fp16 rows time float32 arithmetic, against upstream's true fp16.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { buildDenoisingUNet } from "../src/models/denoising_unet.ts";
import { SD15_UNET_CONFIG, SD_VAE_CONFIG } from "../src/models/full_configs.ts";
import { buildReferenceUNet } from "../src/models/reference_unet.ts";
import { HALLO_UNET_KWARGS, parseUNetConfig } from "../src/models/unet_config.ts";
import { buildVaeDecoder, parseVaeConfig } from "../src/models/vae.ts";
import type { Graph, GraphDType, WeightSource } from "../src/onnx/graph.ts";
import { type Device, parseDevice } from "../src/runtime/device.ts";
import { parseDType } from "../src/runtime/dtype.ts";
import { buildForDtype } from "../src/runtime/fp16_graph.ts";
import { Session } from "../src/runtime/session.ts";
import { TINY_UNET_CONFIG, TINY_UNET_KWARGS, TINY_VAE_CONFIG } from "../src/tiny/configs.ts";
import { WeightStore } from "../src/weights/store.ts";
import type { Tensor } from "../src/tensor.ts";
import { compare } from "../src/parity/compare.ts";
import { ensureRandomCheckpoint, recordedKeys } from "../bench/util.ts";

/** Sizes of one check: the timing geometry and the smaller parity geometry. */
export interface CheckOptions {
  device: Device;
  dtypes: GraphDType[];
  latent: number;
  frames: number;
  steps: number;
  parityLatent: number;
  parityFrames: number;
  /** Tiny networks (the dry run) instead of SD-1.5 sizes. */
  tiny: boolean;
  work: string;
  /** Upstream's sources as scripts/gpu_pack.ts lays them out: also run the UNets in upstream PyTorch. */
  upstream?: string;
  /** The Python that has torch (default `python3`, the GPU machine's). */
  python?: string;
}

/** What scripts/gpu_check_upstream.py prints in timing mode (one row per precision). */
export interface UpstreamFigures {
  torch: string;
  diffusers: string;
  gpu?: string;
  fallback_modules: string[];
  timing: {
    build_s: number;
    parameters: Record<string, number>;
    weights_not_in_file: Record<string, number>;
    rows: {
      dtype: string;
      reference_unet_s: number;
      denoising_unet_s: number;
      seconds_per_frame: number;
      noise_pred_finite: boolean;
      peak_memory_mib: number | null;
    }[];
  };
}

/** One network's figures at one precision. */
export interface NetworkFigures {
  network: string;
  dtype: GraphDType;
  parity_rel_l2: number;
  forward_s: number;
  warm_forward_s: number;
}

export interface CheckResult {
  options: CheckOptions;
  figures: NetworkFigures[];
  seconds_per_frame: Record<string, number>;
  peak_gpu_mib?: number;
  upstream?: UpstreamFigures;
}

type Net = "reference_unet" | "denoising_unet" | "vae_decoder";

function randn(shape: readonly number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.sin((i + seed) * 12.9898 + 1) * 0.8;
  return { dtype: "float32", shape: [...shape], data: d };
}

/** The graph builder and inputs of `net` at a latent size and frame count (CFG: batch 2, 2 motion frames). */
function network(net: Net, o: CheckOptions, latent: number, frames: number) {
  const unet = parseUNetConfig(structuredClone(o.tiny ? TINY_UNET_CONFIG : SD15_UNET_CONFIG) as never);
  const kw = o.tiny ? TINY_UNET_KWARGS : HALLO_UNET_KWARGS;
  const b = 2, motion = 2, tokens = 4, audioTokens = o.tiny ? 8 : 32;
  let g: Graph | undefined;
  const build = (w: WeightSource, dtype: GraphDType): Graph => {
    if (net === "reference_unet") {
      g = buildReferenceUNet(unet, w, {
        batch: b * (1 + motion),
        contextBatch: b,
        contextTokens: tokens,
        height: latent,
        width: latent,
      }, { dtype });
    } else if (net === "denoising_unet") {
      g = buildDenoisingUNet(unet, kw, w, {
        batch: b,
        frames,
        height: latent,
        width: latent,
        contextTokens: tokens,
        audioTokens,
        motionFrames: motion,
      }, { dtype });
    } else {
      g = buildVaeDecoder(w, parseVaeConfig(structuredClone(o.tiny ? TINY_VAE_CONFIG : SD_VAE_CONFIG)), {
        dtype,
      });
    }
    return g;
  };
  const feeds = (): Record<string, Tensor> => {
    const f: Record<string, Tensor> = {};
    for (const [i, inp] of g!.inputs.entries()) {
      // the VAE decoder's axes are symbolic: one frame's latent per run, as upstream decodes frame by frame
      const dims = (inp.dims ?? []).map((d) => typeof d === "number" ? d : d === "batch" ? 1 : latent);
      if (inp.name === "timestep") f[inp.name] = { dtype: "float32", shape: [1], data: Float32Array.of(874) };
      else if (inp.name === "motion_scale") {
        f[inp.name] = { dtype: "float32", shape: [3], data: Float32Array.of(1, 1, 1) };
      } else f[inp.name] = randn(dims, i * 7919);
    }
    return f;
  };
  return { build, feeds };
}

/** The random checkpoint of `net` in `o.work` (written once, reused by later calls on a warm machine). */
async function checkpoint(net: Net, o: CheckOptions): Promise<string> {
  const file = join(o.work, `${net}-${o.tiny ? "tiny" : "full"}.safetensors`);
  await ensureRandomCheckpoint(file, recordedKeys((w) => network(net, o, 8, 2).build(w, "float32")));
  return file;
}

async function open(
  net: Net,
  o: CheckOptions,
  file: string,
  device: Device,
  dtype: GraphDType,
  latent: number,
  frames: number,
) {
  const n = network(net, o, latent, frames);
  const store = WeightStore.open(file);
  const built = buildForDtype(net, dtype, (w, d) => n.build(w ?? store, d), {
    weights: store,
    files: [file],
    device,
  });
  const bytes = built.graph.encode(o.work);
  const session = await Session.create(bytes, o.work, {
    device,
    graph: built.graph,
    name: net,
    strictDevice: device !== "cpu",
  });
  return { session, feeds: n.feeds() };
}

/** Samples the card's used memory (MiB) until stopped; undefined where nvidia-smi is missing. */
function gpuMemorySampler(): { stop(): Promise<number | undefined> } {
  let peak: number | undefined;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const out = await new Deno.Command("nvidia-smi", {
          args: ["--query-gpu=memory.used", "--format=csv,noheader,nounits"],
          stdout: "piped",
          stderr: "null",
        }).output();
        const v = Number(new TextDecoder().decode(out.stdout).trim().split("\n")[0]);
        if (Number.isFinite(v)) peak = Math.max(peak ?? 0, v);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

const timeIt = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const r = await f();
  return [r, (performance.now() - t0) / 1000];
};

/** Runs the whole check; logs progress to stderr. */
export async function gpuCheck(o: CheckOptions): Promise<CheckResult> {
  await Deno.mkdir(o.work, { recursive: true });
  const figures: NetworkFigures[] = [];
  const nets: Net[] = ["reference_unet", "denoising_unet", "vae_decoder"];
  const files = Object.fromEntries(
    await Promise.all(nets.map(async (n) => [n, await checkpoint(n, o)] as const)),
  );
  const sampler = gpuMemorySampler();
  const spf: Record<string, number> = {};
  for (const dtype of o.dtypes) {
    const timing: Record<string, number> = {};
    for (const net of nets) {
      // parity at the small size: the CPU EP (float32 graph) is the reference
      const cpu = await open(net, o, files[net], "cpu", "float32", o.parityLatent, o.parityFrames);
      const ref = await cpu.session.run(cpu.feeds);
      await cpu.session.release();
      const dev = await open(net, o, files[net], o.device, dtype, o.parityLatent, o.parityFrames);
      const got = await dev.session.run(cpu.feeds);
      await dev.session.release();
      const parity = Math.max(
        ...Object.keys(ref).map((k) =>
          compare(got[k].data as Float32Array, ref[k].data as Float32Array, k).rel_l2
        ),
      );
      // speed at the timing size
      const big = await open(net, o, files[net], o.device, dtype, o.latent, o.frames);
      const [, first] = await timeIt(() => big.session.run(big.feeds));
      let warm = Infinity;
      for (let i = 0; i < 2; i++) warm = Math.min(warm, (await timeIt(() => big.session.run(big.feeds)))[1]);
      await big.session.release();
      timing[net] = warm;
      figures.push({ network: net, dtype, parity_rel_l2: parity, forward_s: first, warm_forward_s: warm });
      console.error(
        `gpu_check: ${net} ${dtype}: parity ${parity.toExponential(2)}, warm forward ${warm.toFixed(3)} s`,
      );
    }
    // the VAE graph decodes one latent per run (batch 1): a clip decodes `frames` of them
    const clip = timing.reference_unet + o.steps * timing.denoising_unet + o.frames * timing.vae_decoder;
    spf[dtype] = clip / o.frames;
  }
  const peak = await sampler.stop();
  const upstream = o.upstream ? await upstreamCheck(o, files) : undefined;
  return { options: o, figures, seconds_per_frame: spf, peak_gpu_mib: peak, upstream };
}

/** Upstream's `unet_additional_kwargs` (configs/inference/default.yaml) at the check's size. */
function upstreamKwargs(o: CheckOptions) {
  return {
    use_inflated_groupnorm: true,
    unet_use_cross_frame_attention: false,
    unet_use_temporal_attention: false,
    motion_module_decoder_only: false,
    motion_module_type: "Vanilla",
    ...(o.tiny ? TINY_UNET_KWARGS : HALLO_UNET_KWARGS),
  };
}

/**
 * The same UNet forwards in upstream PyTorch (scripts/gpu_check_upstream.py) at the timing size, over the ONNX
 * half's random checkpoints (`files`): on CUDA when the ONNX half runs on a GPU, else on the CPU in float32
 * (PyTorch 1.13's CPU kernels lack half matmuls).
 */
export async function upstreamCheck(
  o: CheckOptions,
  files: Record<string, string>,
): Promise<UpstreamFigures> {
  const config2d = join(o.work, "upstream-unet-config.json");
  const kwargs = join(o.work, "upstream-unet-kwargs.json");
  const json = join(o.work, "upstream.json");
  await Deno.writeTextFile(config2d, JSON.stringify(o.tiny ? TINY_UNET_CONFIG : SD15_UNET_CONFIG));
  await Deno.writeTextFile(kwargs, JSON.stringify(upstreamKwargs(o)));
  const cpu = o.device === "cpu";
  const dtypes = cpu ? ["float32"] : o.dtypes;
  const script = new URL("./gpu_check_upstream.py", import.meta.url).pathname;
  // stdout is the JSON (also in --json); stderr carries upstream's warnings and the progress lines
  const out = await new Deno.Command(o.python ?? "python3", {
    args: [
      script,
      "--upstream",
      o.upstream!,
      "--config2d",
      config2d,
      "--kwargs",
      kwargs,
      "--device",
      cpu ? "cpu" : "cuda",
      "--latent",
      String(o.latent),
      "--frames",
      String(o.frames),
      "--steps",
      String(o.steps),
      "--audio-tokens",
      String(o.tiny ? 8 : 32),
      "--dtypes",
      dtypes.map((d) => d === "float16" ? "fp16" : "fp32").join(","),
      // the same random weights as the ONNX half
      "--reference-weights",
      files.reference_unet,
      "--denoising-weights",
      files.denoising_unet,
      "--json",
      json,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`gpu_check_upstream.py failed (exit ${out.code}):\n${err.slice(-3000)}`);
  return JSON.parse(await Deno.readTextFile(json)) as UpstreamFigures;
}

function report(r: CheckResult): string {
  const o = r.options;
  const lines = [
    `device ${o.device}; timing: ${o.latent * 8}x${
      o.latent * 8
    } (latent ${o.latent}), ${o.frames}+2 frames, CFG, ` +
    `${o.steps} steps; parity: latent ${o.parityLatent}, ${o.parityFrames}+2 frames, against the CPU EP`,
    `${"network".padEnd(16)} ${"dtype".padEnd(8)} ${"parity".padStart(9)} ${"first s".padStart(9)} ${
      "warm s".padStart(9)
    }`,
  ];
  for (const f of r.figures) {
    lines.push(
      `${f.network.padEnd(16)} ${f.dtype.padEnd(8)} ${f.parity_rel_l2.toExponential(2).padStart(9)} ${
        f.forward_s.toFixed(3).padStart(9)
      } ${f.warm_forward_s.toFixed(3).padStart(9)}`,
    );
  }
  for (const [d, s] of Object.entries(r.seconds_per_frame)) {
    lines.push(`seconds per frame (${d}): ${s.toFixed(3)}`);
  }
  lines.push(
    `peak GPU memory: ${r.peak_gpu_mib === undefined ? "n/a (no nvidia-smi)" : `${r.peak_gpu_mib} MiB`}`,
  );
  if (r.upstream) {
    const u = r.upstream;
    lines.push(`upstream PyTorch ${u.torch}, diffusers ${u.diffusers}${u.gpu ? ` on ${u.gpu}` : ""}:`);
    for (const row of u.timing.rows) {
      lines.push(
        `  ${row.dtype.padEnd(8)} reference ${row.reference_unet_s.toFixed(3)} s, denoising ${
          row.denoising_unet_s.toFixed(3)
        } s, ${row.seconds_per_frame.toFixed(3)} s/frame (UNets only), peak ${
          row.peak_memory_mib === null ? "n/a" : `${row.peak_memory_mib.toFixed(0)} MiB`
        }${row.noise_pred_finite ? "" : ", NON-FINITE output"}`,
      );
    }
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      device: { type: "string" },
      latent: { type: "string" },
      frames: { type: "string" },
      steps: { type: "string" },
      "parity-latent": { type: "string" },
      "parity-frames": { type: "string" },
      dtypes: { type: "string" },
      work: { type: "string" },
      json: { type: "string" },
      upstream: { type: "string" },
      python: { type: "string" },
      "dry-run": { type: "boolean" },
    },
  });
  const dry = v["dry-run"] ?? false;
  const int = (s: string | undefined, d: number) => s === undefined ? d : Number.parseInt(s, 10);
  const o: CheckOptions = {
    device: parseDevice(v.device ?? (dry ? "cpu" : "webgpu")),
    dtypes: (v.dtypes ?? "fp32,fp16").split(",").map(parseDType),
    latent: int(v.latent, dry ? 8 : 64),
    frames: int(v.frames, dry ? 2 : 16),
    steps: int(v.steps, 40),
    parityLatent: int(v["parity-latent"], dry ? 8 : 16),
    parityFrames: int(v["parity-frames"], 2),
    tiny: dry,
    work: v.work ?? await Deno.makeTempDir({ prefix: "hallo-gpu-check-" }),
    upstream: v.upstream,
    python: v.python,
  };
  let r: CheckResult;
  try {
    r = await gpuCheck(o);
  } finally {
    // a work folder of our own is gone after the run; a named one keeps the weights for the next call
    if (!v.work) await Deno.remove(o.work, { recursive: true });
  }
  console.log(report(r));
  if (v.json) await Deno.writeTextFile(v.json, JSON.stringify(r, null, 2));
}
