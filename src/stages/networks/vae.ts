/**
 * The VAE stages: load `pretrained_models/sd-vae-ft-mse` once (encoder and decoder sessions over the
 * checkpoint's own bytes), encode reference images to scaled latents and decode denoised latents to
 * frames, as Hallo's FaceAnimatePipeline does. The raw `vaeEncode`/`vaeDecode` mirror diffusers'
 * `AutoencoderKL.encode(x).latent_dist` and `.decode(z).sample`, without any scaling.
 */
import { join } from "node:path";
import {
  buildVaeDecoder,
  buildVaeEncoder,
  parseVaeConfig,
  VAE_DECODER_INPUT,
  VAE_DECODER_OUTPUT,
  VAE_ENCODER_INPUT,
  VAE_ENCODER_OUTPUTS,
  type VaeConfig,
} from "../../models/vae.ts";
import type { AttentionForm } from "../../onnx/layers.ts";
import type { Session } from "../../runtime/session.ts";
import { f32, type F32Tensor, type Tensor } from "../../tensor.ts";
import { WeightStore } from "../../weights/store.ts";
import {
  expectF32,
  findFile,
  type NetworkOptions,
  NetworkStageError,
  openNetwork,
  pickProbes,
  readJson,
} from "./load.ts";

/**
 * The latent scale Hallo's pipeline hard-codes (`face_animate.py`: `* 0.18215` after encoding,
 * `1 / 0.18215 *` before decoding) instead of reading the config's `scaling_factor`.
 */
export const VAE_SCALING_FACTOR = 0.18215;

/** Weight files tried in order, as diffusers' `from_pretrained` prefers them. */
const WEIGHT_FILES = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"];

export interface LoadVaeOptions extends NetworkOptions {
  /** Mid-block attention: fused kernel (default) or MatMul/Softmax. */
  attention?: AttentionForm;
  /** Extra values to return from every encoder / decoder run, by name (e.g. `encoder.mid_block`). */
  probes?: { encoder?: readonly string[]; decoder?: readonly string[] };
}

/** A loaded VAE: one session per direction, created once and reused. */
export interface VaeModel {
  readonly config: VaeConfig;
  /** The checkpoint file the graphs read their weights from. */
  readonly file: string;
  readonly encoder: Session;
  readonly decoder: Session;
  readonly probes: { encoder: readonly string[]; decoder: readonly string[] };
  /** Checkpoint keys neither graph binds (none for an AutoencoderKL checkpoint). */
  readonly unusedKeys: readonly string[];
  /** Seconds spent building/encoding both graphs and creating both sessions. */
  readonly timings: { build_s: number; session_s: number };
  release(): Promise<void>;
}

/** Loads the VAE folder `dir` (config.json + diffusion_pytorch_model.safetensors/.bin). */
export async function loadVae(dir: string, opts: LoadVaeOptions = {}): Promise<VaeModel> {
  const cfgFile = join(dir, "config.json");
  const config = parseVaeConfig(readJson(cfgFile), cfgFile);
  const file = findFile(dir, WEIGHT_FILES, "VAE weights");
  const store = WeightStore.open(file);
  const attention = opts.attention ?? "fused";
  const key = { config, attention };
  const enc = await openNetwork(
    "vae_encoder",
    key,
    [file],
    (w = store, dtype) => buildVaeEncoder(w, config, { attention, dtype }),
    { ...opts, probes: opts.probes?.encoder, weights: store },
  );
  const dec = await openNetwork(
    "vae_decoder",
    key,
    [file],
    (w = store, dtype) => buildVaeDecoder(w, config, { attention, dtype }),
    { ...opts, probes: opts.probes?.decoder, weights: store },
  );
  return {
    config,
    file,
    encoder: enc.session,
    decoder: dec.session,
    probes: { encoder: enc.probes, decoder: dec.probes },
    unusedKeys: store.unusedKeys(),
    timings: {
      build_s: enc.timings.build_s + dec.timings.build_s,
      session_s: enc.timings.session_s + dec.timings.session_s,
    },
    release: async () => {
      await enc.session.release();
      await dec.session.release();
    },
  };
}

/** `latent_dist` of `AutoencoderKL.encode`: the mean and the clamped log-variance, plus probes. */
export interface LatentDist {
  mean: F32Tensor;
  logvar: F32Tensor;
  probes: Record<string, F32Tensor>;
}

/** `vae.encode(x).latent_dist` for images `x` (N, 3, H, W) in [-1, 1]; nothing is scaled or sampled. */
export async function vaeEncode(vae: VaeModel, x: Tensor): Promise<LatentDist> {
  const input = expectF32(x, "VAE encoder input", [undefined, vae.config.inChannels, undefined, undefined]);
  const out = await vae.encoder.run({ [VAE_ENCODER_INPUT]: input });
  return {
    mean: out[VAE_ENCODER_OUTPUTS.mean] as F32Tensor,
    logvar: out[VAE_ENCODER_OUTPUTS.logvar] as F32Tensor,
    probes: pickProbes(out, vae.probes.encoder),
  };
}

/** `vae.decode(z).sample` for unscaled latents `z` (N, latent, h, w), all N in one run. */
export async function vaeDecode(
  vae: VaeModel,
  z: Tensor,
): Promise<{ sample: F32Tensor; probes: Record<string, F32Tensor> }> {
  const input = expectF32(z, "VAE decoder input", [
    undefined,
    vae.config.latentChannels,
    undefined,
    undefined,
  ]);
  const out = await vae.decoder.run({ [VAE_DECODER_INPUT]: input });
  return { sample: out[VAE_DECODER_OUTPUT] as F32Tensor, probes: pickProbes(out, vae.probes.decoder) };
}

/** Multiplies in float32 by a python float as torch does (the scalar is rounded to float32 first). */
function scaled(t: F32Tensor, factor: number): F32Tensor {
  const s = Math.fround(factor);
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = t.data[i] * s;
  return f32(t.shape, out);
}

/**
 * The pipeline's reference latents: `vae.encode(images).latent_dist.mean * 0.18215` for images
 * (N, 3, H, W) in [-1, 1] (one run for the whole batch, as upstream).
 */
export async function encodeImages(vae: VaeModel, images: Tensor): Promise<F32Tensor> {
  return scaled((await vaeEncode(vae, images)).mean, VAE_SCALING_FACTOR);
}

/** Options of `decodeLatents`. */
export interface DecodeLatentsOptions {
  /** Called after each decoded frame (frame index in `(b f)` order, frame count). */
  onFrame?: (index: number, count: number) => void;
}

/**
 * The pipeline's `decode_latents`: latents (b, 4, f, h, w) -> `1/0.18215 *` -> one `vae.decode` per frame
 * -> `(x/2 + 0.5).clamp(0, 1)` -> video (b, 3, f, H, W) float32.
 */
export async function decodeLatents(
  vae: VaeModel,
  latents: Tensor,
  opts: DecodeLatentsOptions = {},
): Promise<F32Tensor> {
  const lat = expectF32(latents, "latents", [
    undefined,
    vae.config.latentChannels,
    undefined,
    undefined,
    undefined,
  ]);
  const [b, c, f, h, w] = lat.shape;
  const inv = Math.fround(1 / VAE_SCALING_FACTOR);
  const hw = h * w;
  const frames = b * f;
  let video: Float32Array | undefined;
  let outC = 0, outHW = 0, H = 0, W = 0;
  for (let n = 0; n < frames; n++) {
    const bi = Math.floor(n / f), fi = n % f;
    // "b c f h w -> (b f) c h w", one frame at a time.
    const z = new Float32Array(c * hw);
    for (let ci = 0; ci < c; ci++) {
      const src = ((bi * c + ci) * f + fi) * hw;
      for (let i = 0; i < hw; i++) z[ci * hw + i] = lat.data[src + i] * inv;
    }
    const { sample } = await vaeDecode(vae, f32([1, c, h, w], z));
    if (!video) {
      [, outC, H, W] = sample.shape;
      outHW = H * W;
      video = new Float32Array(b * outC * f * outHW);
    }
    // "(b f) c h w -> b c f h w", then (x / 2 + 0.5).clamp(0, 1).
    for (let ci = 0; ci < outC; ci++) {
      const dst = ((bi * outC + ci) * f + fi) * outHW;
      for (let i = 0; i < outHW; i++) {
        const v = sample.data[ci * outHW + i] / 2 + 0.5;
        video[dst + i] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
    opts.onFrame?.(n, frames);
  }
  if (!video) throw new NetworkStageError(`latents [${lat.shape.join(", ")}] hold no frame to decode`);
  return f32([b, outC, f, H, W], video);
}
