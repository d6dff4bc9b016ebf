/**
 * The checkpoint layout of the tiny weight set, discovered rather than listed: every graph builder runs over a
 * recording WeightSource that learns each key and the shape the network expects for it, so the generated
 * files hold exactly what the builders bind, whatever they bind.
 */
import { createHash } from "node:crypto";
import { buildAudioProj } from "../models/audio_proj.ts";
import { buildDenoisingUNet } from "../models/denoising_unet.ts";
import { buildFaceLocator } from "../models/face_locator.ts";
import { buildImageProj } from "../models/image_proj.ts";
import { buildReferenceUNet } from "../models/reference_unet.ts";
import { parseUNetConfig } from "../models/unet_config.ts";
import { buildVaeDecoder, buildVaeEncoder, parseVaeConfig } from "../models/vae.ts";
import { buildWav2Vec2, parseWav2Vec2Config, WAV2VEC2_UNEXECUTED_KEYS } from "../models/wav2vec2.ts";
import { GraphBuildError, type WeightSource } from "../onnx/graph.ts";
import {
  TINY_AUDIO_PROJ,
  TINY_FACE_LOCATOR,
  TINY_IMAGE_PROJ,
  TINY_UNET_CONFIG,
  TINY_UNET_KWARGS,
  TINY_VAE_CONFIG,
  TINY_WAV2VEC2_CONFIG,
  TINY_WAV2VEC2_PREPROCESSOR,
} from "./configs.ts";
import type { TensorRef } from "../onnx/tensor_ref.ts";

/** A checkpoint tensor of the set: key and shape (all float32). */
export interface TinyTensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** One file of the set, relative to its root: a checkpoint (tensors) or a JSON config (json). */
export interface TinyFileSpec {
  readonly path: string;
  readonly tensors?: readonly TinyTensorSpec[];
  readonly json?: unknown;
}

/** The file TensorRefs of a recording source point at; nothing ever reads it. */
const RECORDED_FILE = "/dev/null/recorded-layout";

/**
 * A WeightSource that holds every key (except those `absent` rejects) with exactly the shape the network
 * expects, and records it: a builder run over it yields the checkpoint layout it needs.
 */
export class LayoutRecorder implements WeightSource {
  readonly #shapes = new Map<string, readonly number[]>();

  /** `absent` picks keys to report missing, steering builders that probe for alternative spellings. */
  constructor(private readonly absent: (key: string) => boolean = () => false) {}

  expect(key: string, shape: readonly number[]): void {
    const prev = this.#shapes.get(key);
    if (prev && prev.join() !== shape.join()) {
      throw new GraphBuildError(`two graphs bind '${key}' with shapes [${prev}] and [${shape}]`);
    }
    this.#shapes.set(key, [...shape]);
  }

  has(key: string): boolean {
    return !this.absent(key);
  }

  get(key: string): TensorRef {
    const shape = this.#shapes.get(key);
    if (!shape) throw new GraphBuildError(`'${key}' was asked for without an expected shape`);
    const length = shape.reduce((a, d) => a * d, 4);
    return { name: key, file: RECORDED_FILE, offset: 0, length, dtype: "F32", shape };
  }

  /** Adds a key no graph binds (kept for a faithful file layout). */
  add(key: string, shape: readonly number[]): void {
    this.expect(key, shape);
  }

  /** Every recorded key with its shape, sorted by key. */
  tensors(): TinyTensorSpec[] {
    return [...this.#shapes].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([name, shape]) => ({
      name,
      shape,
    }));
  }
}

/** Any small geometry: the keys a UNet binds do not depend on it. */
const PROBE_SHAPE = { height: 8, width: 8, frames: 2, motionFrames: 2 };

function netTensors(): TinyTensorSpec[] {
  const rec = new LayoutRecorder();
  const cfg = parseUNetConfig(structuredClone(TINY_UNET_CONFIG) as Record<string, unknown>);
  const { height, width, frames, motionFrames } = PROBE_SHAPE;
  const tokens = TINY_IMAGE_PROJ.clip_extra_context_tokens;
  buildReferenceUNet(cfg, rec, {
    batch: 2 * (1 + motionFrames),
    contextBatch: 2,
    contextTokens: tokens,
    height,
    width,
  });
  buildDenoisingUNet(cfg, TINY_UNET_KWARGS, rec, {
    batch: 2,
    frames,
    height,
    width,
    contextTokens: tokens,
    audioTokens: TINY_AUDIO_PROJ.context_tokens,
    motionFrames,
  });
  buildFaceLocator(rec, TINY_FACE_LOCATOR);
  buildImageProj(rec, TINY_IMAGE_PROJ);
  buildAudioProj(rec, TINY_AUDIO_PROJ);
  return rec.tensors();
}

function vaeTensors(): TinyTensorSpec[] {
  // Current diffusers attention names (to_q, ...), as the real sd-vae-ft-mse file has them.
  const rec = new LayoutRecorder((k) => k.endsWith(".query.weight"));
  const cfg = parseVaeConfig(structuredClone(TINY_VAE_CONFIG));
  buildVaeEncoder(rec, cfg);
  buildVaeDecoder(rec, cfg);
  return rec.tensors();
}

function wav2vec2Tensors(): TinyTensorSpec[] {
  const rec = new LayoutRecorder();
  const cfg = parseWav2Vec2Config(structuredClone(TINY_WAV2VEC2_CONFIG));
  const prefix = "wav2vec2.";
  buildWav2Vec2(rec, cfg, { prefix });
  // Wav2Vec2ForCTC also holds these; no graph reads them.
  for (const k of WAV2VEC2_UNEXECUTED_KEYS) rec.add(`${prefix}${k}`, [cfg.hidden_size]);
  rec.add("lm_head.weight", [TINY_WAV2VEC2_CONFIG.vocab_size, cfg.hidden_size]);
  rec.add("lm_head.bias", [TINY_WAV2VEC2_CONFIG.vocab_size]);
  return rec.tensors();
}

/** Path of Hallo's trained-weights file in the set (net.pth's safetensors twin). */
export const TINY_NET_FILE = "hallo/net.safetensors";

/** Every file of the set in `pretrained_models/` layout, configs first, with each checkpoint's tensors. */
export function tinyLayout(): TinyFileSpec[] {
  return [
    { path: "stable-diffusion-v1-5/unet/config.json", json: TINY_UNET_CONFIG },
    { path: "sd-vae-ft-mse/config.json", json: TINY_VAE_CONFIG },
    { path: "wav2vec/wav2vec2-base-960h/config.json", json: TINY_WAV2VEC2_CONFIG },
    { path: "wav2vec/wav2vec2-base-960h/preprocessor_config.json", json: TINY_WAV2VEC2_PREPROCESSOR },
    { path: TINY_NET_FILE, tensors: netTensors() },
    { path: "sd-vae-ft-mse/diffusion_pytorch_model.safetensors", tensors: vaeTensors() },
    { path: "wav2vec/wav2vec2-base-960h/model.safetensors", tensors: wav2vec2Tensors() },
  ];
}

/** Short digest of a layout (paths, keys, shapes, config contents) so a set made from another one is stale. */
export function layoutDigest(files: readonly TinyFileSpec[], extra: unknown = null): string {
  const ident = files.map((f) => [f.path, f.json ?? null, (f.tensors ?? []).map((t) => [t.name, t.shape])]);
  return createHash("sha256").update(JSON.stringify([ident, extra])).digest("hex").slice(0, 16);
}
