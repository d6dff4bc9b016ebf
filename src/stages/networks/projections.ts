/**
 * The projection stages over Hallo's `net.pth`: ImageProjModel (face embedding -> identity tokens of the
 * cross-attention context) and AudioProjModel (wav2vec windows -> audio tokens), each loaded once.
 */
import {
  AUDIO_PROJ_CONFIG,
  AUDIO_PROJ_INPUT,
  AUDIO_PROJ_OUTPUT,
  AUDIO_PROJ_PREFIX,
  type AudioProjConfig,
  buildAudioProj,
} from "../../models/audio_proj.ts";
import {
  buildImageProj,
  IMAGE_PROJ_CONFIG,
  IMAGE_PROJ_INPUT,
  IMAGE_PROJ_OUTPUT,
  IMAGE_PROJ_PREFIX,
  type ImageProjConfig,
} from "../../models/image_proj.ts";
import type { Session } from "../../runtime/session.ts";
import type { F32Tensor, Tensor } from "../../tensor.ts";
import type { WeightStore } from "../../weights/store.ts";
import { expectF32, netWeights, type NetworkOptions, openNetwork } from "./load.ts";

/** A loaded net.pth module: its config and one session, created once and reused. */
export interface ProjectionModel<C> {
  readonly config: C;
  readonly session: Session;
  /** Seconds spent building/encoding the graph and creating the session. */
  readonly timings: { build_s: number; session_s: number };
  release(): Promise<void>;
}

export type ImageProjModel = ProjectionModel<ImageProjConfig>;
export type AudioProjModel = ProjectionModel<AudioProjConfig>;

/** Loader options: the module config (default: Hallo's full-size one) plus session options. */
export interface LoadProjectionOptions<C> extends NetworkOptions {
  config?: C;
}

/**
 * Loads `imageproj.*` from `net` (a path to net.pth / net.safetensors, or an opened store of it shared
 * with the other modules).
 */
export async function loadImageProj(
  net: string | WeightStore,
  opts: LoadProjectionOptions<ImageProjConfig> = {},
): Promise<ImageProjModel> {
  const config = opts.config ?? IMAGE_PROJ_CONFIG;
  const { store, files } = netWeights(net, IMAGE_PROJ_PREFIX);
  const n = await openNetwork(
    "image_proj",
    config,
    files,
    (w = store, dtype) => buildImageProj(w, config, { dtype }),
    { ...opts, weights: store },
  );
  return { config, session: n.session, timings: n.timings, release: () => n.session.release() };
}

/**
 * `image_proj(face_emb)`: a face embedding (B, clip_embeddings_dim) or (clip_embeddings_dim,) -> tokens
 * (B, clip_extra_context_tokens, cross_attention_dim). The pipeline's uncond context is this of zeros.
 */
export async function projectFaceEmbedding(model: ImageProjModel, faceEmb: Tensor): Promise<F32Tensor> {
  const d = model.config.clip_embeddings_dim;
  const emb = faceEmb.shape.length === 1 ? { ...faceEmb, shape: [1, ...faceEmb.shape] } : faceEmb;
  const input = expectF32(emb, "face embedding", [undefined, d]);
  return (await model.session.run({ [IMAGE_PROJ_INPUT]: input }))[IMAGE_PROJ_OUTPUT] as F32Tensor;
}

/** Loads `audioproj.*` from `net` (path or opened store). */
export async function loadAudioProj(
  net: string | WeightStore,
  opts: LoadProjectionOptions<AudioProjConfig> = {},
): Promise<AudioProjModel> {
  const config = opts.config ?? AUDIO_PROJ_CONFIG;
  const { store, files } = netWeights(net, AUDIO_PROJ_PREFIX);
  const n = await openNetwork(
    "audio_proj",
    config,
    files,
    (w = store, dtype) => buildAudioProj(w, config, { dtype }),
    { ...opts, weights: store },
  );
  return { config, session: n.session, timings: n.timings, release: () => n.session.release() };
}

/**
 * `audio_proj(audio_emb)`: windows (B, F, seq_len, blocks, channels) -> audio tokens
 * (B, F, context_tokens, output_dim). Hallo runs it per clip on (1, 16, 5, 12, 768).
 */
export async function projectAudio(model: AudioProjModel, windows: Tensor): Promise<F32Tensor> {
  const c = model.config;
  const input = expectF32(windows, "audio windows", [undefined, undefined, c.seq_len, c.blocks, c.channels]);
  return (await model.session.run({ [AUDIO_PROJ_INPUT]: input }))[AUDIO_PROJ_OUTPUT] as F32Tensor;
}
