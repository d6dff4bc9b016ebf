/**
 * One network at one size with random weights: build (layout recorded from the builder, random float32
 * checkpoint written to a temp folder), session creation (CPU, 2 threads, weights memory-mapped) and two
 * forwards. Prints one JSON line (with a hash of the first forward's outputs); bench/main.ts runs one process
 * per network so peak RSS is its own.
 * Usage: deno run -A bench/network_one.ts <vae|image_proj|audio_proj|face_locator|wav2vec2|reference_unet|denoising_unet> <tiny|full> [device]
 * With a GPU device (webgpu, cuda) the CPU EP runs first (its outputs are the reference), then the device:
 * forwards, relative L2 of every output against the CPU's, and the share of a step spent moving data.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Graph, WeightSource } from "../src/onnx/graph.ts";
import { buildVaeDecoder, parseVaeConfig } from "../src/models/vae.ts";
import { buildImageProj, IMAGE_PROJ_CONFIG } from "../src/models/image_proj.ts";
import { AUDIO_PROJ_CONFIG, buildAudioProj } from "../src/models/audio_proj.ts";
import {
  buildFaceLocator,
  FACE_LOCATOR_CONFIG,
  resolveFaceLocatorConfig,
} from "../src/models/face_locator.ts";
import { buildWav2Vec2, parseWav2Vec2Config, WAV2VEC2_IO } from "../src/models/wav2vec2.ts";
import { buildReferenceUNet } from "../src/models/reference_unet.ts";
import { buildDenoisingUNet } from "../src/models/denoising_unet.ts";
import { HALLO_UNET_KWARGS, parseUNetConfig } from "../src/models/unet_config.ts";
import { SD15_UNET_CONFIG, SD_VAE_CONFIG, WAV2VEC2_BASE_CONFIG } from "../src/models/full_configs.ts";
import {
  TINY_AUDIO_PROJ,
  TINY_FACE_LOCATOR,
  TINY_IMAGE_PROJ,
  TINY_UNET_CONFIG,
  TINY_UNET_KWARGS,
  TINY_VAE_CONFIG,
  TINY_WAV2VEC2_CONFIG,
} from "../src/tiny/configs.ts";
import { WeightStore } from "../src/weights/store.ts";
import { Session } from "../src/runtime/session.ts";
import type { Tensor } from "../src/tensor.ts";
import { parseDevice } from "../src/runtime/device.ts";
import { benchDevice } from "./device_one.ts";
import { ensureRandomCheckpoint, paramCount, peakRssMiB, recordedKeys, timed } from "./util.ts";

const [network, size, deviceArg] = Deno.args;
const full = size === "full";

function randn(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.sin(i * 12.9898 + 1) * 0.8;
  return { dtype: "float32", shape, data: d };
}

/** A network to benchmark: its graph builder over a weight source and its inputs. */
export interface Spec {
  build(w: WeightSource): Graph;
  feeds(): Record<string, Tensor>;
  what: string;
}

function spec(): Spec {
  const unet = parseUNetConfig(
    structuredClone(full ? SD15_UNET_CONFIG : TINY_UNET_CONFIG) as Record<string, unknown>,
  );
  const kw = full ? HALLO_UNET_KWARGS : TINY_UNET_KWARGS;
  const latent = 16, frames = 2, motion = 2, batch = 2, ctxTokens = 4;
  switch (network) {
    case "vae": {
      const cfg = parseVaeConfig(structuredClone(full ? SD_VAE_CONFIG : TINY_VAE_CONFIG));
      return {
        what: "decode one 64x64 latent",
        build: (w) => buildVaeDecoder(w, cfg),
        feeds: () => ({ z: randn([1, 4, 64, 64]) }),
      };
    }
    case "image_proj": {
      const cfg = full ? IMAGE_PROJ_CONFIG : TINY_IMAGE_PROJ;
      return {
        what: "one embedding",
        build: (w) => buildImageProj(w, cfg),
        feeds: () => ({ image_embeds: randn([1, cfg.clip_embeddings_dim]) }),
      };
    }
    case "audio_proj": {
      const cfg = full ? AUDIO_PROJ_CONFIG : TINY_AUDIO_PROJ;
      return {
        what: "one clip (16 frames)",
        build: (w) => buildAudioProj(w, cfg),
        feeds: () => ({ audio_embeds: randn([1, 16, cfg.seq_len, cfg.blocks, cfg.channels]) }),
      };
    }
    case "face_locator": {
      const cfg = resolveFaceLocatorConfig(full ? FACE_LOCATOR_CONFIG : TINY_FACE_LOCATOR);
      return {
        what: "one 512x512 frame",
        build: (w) => buildFaceLocator(w, cfg),
        feeds: () => ({ conditioning: randn([1, 3, 1, 512, 512]) }),
      };
    }
    case "wav2vec2": {
      const cfg = parseWav2Vec2Config(structuredClone(full ? WAV2VEC2_BASE_CONFIG : TINY_WAV2VEC2_CONFIG));
      return {
        what: "4 s of audio",
        build: (w) => buildWav2Vec2(w, cfg, { prefix: "wav2vec2." }),
        feeds: () => ({
          [WAV2VEC2_IO.inputValues]: randn([1, 64000]),
          [WAV2VEC2_IO.seqLen]: { dtype: "int64", shape: [], data: BigInt64Array.of(100n) },
        }),
      };
    }
    case "reference_unet":
      return {
        what: `${latent}x${latent} latent, 1+${motion} refs, CFG`,
        build: (w) =>
          buildReferenceUNet(unet, w, {
            batch: batch * (1 + motion),
            contextBatch: batch,
            contextTokens: ctxTokens,
            height: latent,
            width: latent,
          }),
        feeds: () => ({
          sample: randn([batch * (1 + motion), 4, latent, latent]),
          timestep: { dtype: "float32", shape: [1], data: Float32Array.of(0) },
          encoder_hidden_states: randn([batch, ctxTokens, unet.cross_attention_dim]),
        }),
      };
    case "denoising_unet": {
      const shape = {
        batch,
        frames,
        height: latent,
        width: latent,
        contextTokens: ctxTokens,
        audioTokens: full ? 32 : TINY_AUDIO_PROJ.context_tokens,
        motionFrames: motion,
      };
      let g: Graph;
      return {
        what: `${latent}x${latent} latent, ${motion}+${frames} frames, CFG`,
        build: (w) => (g = buildDenoisingUNet(unet, kw, w, shape)),
        feeds: () => {
          const f: Record<string, Tensor> = {};
          for (const i of g.inputs) {
            const dims = (i.dims ?? []).map(Number);
            f[i.name] = i.name === "timestep"
              ? { dtype: "float32", shape: [1], data: Float32Array.of(874) }
              : i.name === "motion_scale"
              ? { dtype: "float32", shape: [3], data: Float32Array.of(1, 1, 1) }
              : randn(dims);
          }
          return f;
        },
      };
    }
    default:
      throw new Error(`unknown network '${network}'`);
  }
}

/** sha256 over every output's bytes, in name order: equal hashes mean bit-identical outputs. */
function outputsHash(out: Record<string, Tensor>): string {
  const h = createHash("sha256");
  for (const k of Object.keys(out).sort()) {
    const d = out[k].data as ArrayBufferView;
    h.update(k).update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest("hex");
}

const s = spec();
if (deviceArg && deviceArg !== "cpu") {
  await benchDevice(network, size, parseDevice(deviceArg), s);
  Deno.exit(0);
}
// BENCH_KEEP=DIR keeps (and reuses) the random checkpoint there; BENCH_MMAP=0 lets ORT pre-pack weights.
const keep = Deno.env.get("BENCH_KEEP");
const mmapWeights = Deno.env.get("BENCH_MMAP") !== "0";
const dir = keep ?? await Deno.makeTempDir({ prefix: "hallo-bench-" });
if (keep) await Deno.mkdir(keep, { recursive: true });
try {
  const file = join(dir, `${network}-${size}.safetensors`);
  const keys = recordedKeys((w) => s.build(w));
  const params = paramCount(keys);
  const [written, t] = await timed(() => ensureRandomCheckpoint(file, keys));
  const write_s = written ? t : 0;
  const [bytes, build_s] = await timed(() => s.build(WeightStore.open(file)).encode(dir));
  const [session, session_s] = await timed(() => Session.create(bytes, dir, { threads: 2, mmapWeights }));
  const feeds = s.feeds();
  const [out, forward_s] = await timed(() => session.run(feeds));
  // Warm forward: the best of BENCH_WARM_FORWARDS (default 3) more runs (the machine may be shared).
  let forward2_s = Infinity;
  const warmRuns = Number(Deno.env.get("BENCH_WARM_FORWARDS") ?? 3);
  for (let i = 0; i < warmRuns; i++) {
    forward2_s = Math.min(
      forward2_s,
      (await timed(() => session.run(feeds)))[1],
    );
  }
  await session.release();
  console.log(JSON.stringify({
    network,
    size,
    what: s.what,
    mmap: mmapWeights,
    params,
    write_s,
    build_s,
    session_s,
    forward_s,
    forward2_s,
    out_sha256: outputsHash(out),
    peak_rss_mib: peakRssMiB(),
  }));
} finally {
  if (!keep) await Deno.remove(dir, { recursive: true });
}
