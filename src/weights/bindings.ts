/**
 * What each stage binds, checked the way `animate` and `prepare-audio` bind it: every graph builder runs over
 * the folder's checkpoints (opened by the same readers) with the configs the stages use, so a key that is
 * missing or has another shape is found without creating a session or reading a tensor.
 */
import { AUDIO_PROJ_CONFIG, buildAudioProj } from "../models/audio_proj.ts";
import { buildDenoisingUNet } from "../models/denoising_unet.ts";
import { buildFaceLocator, FACE_LOCATOR_CONFIG, resolveFaceLocatorConfig } from "../models/face_locator.ts";
import { buildImageProj, IMAGE_PROJ_CONFIG } from "../models/image_proj.ts";
import { buildReferenceUNet } from "../models/reference_unet.ts";
import { HALLO_UNET_KWARGS, parseUNetConfig } from "../models/unet_config.ts";
import { buildVaeDecoder, buildVaeEncoder, parseVaeConfig } from "../models/vae.ts";
import { buildWav2Vec2, parseWav2Vec2Config, wav2vec2Prefix } from "../models/wav2vec2.ts";
import { dirname } from "node:path";
import { Session } from "../runtime/session.ts";
import { oneLine } from "./errors.ts";
import { WeightStore } from "./store.ts";
import type { HalloConfigs } from "../models/hallo_configs.ts";

/** A checkpoint that one of the stages' graphs cannot be built from. */
export interface BindingProblem {
  /** Manifest name of the checkpoint to blame (`net`, `vae_weights`, `wav2vec_weights`). */
  readonly name: string;
  readonly problem: string;
}

/** Any small geometry: the keys and shapes a UNet binds do not depend on it. */
const PROBE = { height: 8, width: 8, frames: 2, motionFrames: 2 };

function readObject(path: string): Record<string, unknown> {
  const v = JSON.parse(Deno.readTextFileSync(path));
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${path}: not a JSON object`);
  return v as Record<string, unknown>;
}

function why(e: unknown): string {
  return oneLine((e as Error).message ?? String(e));
}

/**
 * Builds every graph of the networks stage (both UNets, face locator, both projections over `net`; VAE
 * encoder and decoder over its weights) with the sizes `animate` uses: `configs` when given (the parity
 * runner's, or a tiny random set's tiny.json as the CLI reads it), else upstream's inference.py values.
 * `paths` are the manifest files by name, already checked readable.
 */
export function networksBindings(
  paths: Readonly<Record<string, string>>,
  configs?: HalloConfigs,
): BindingProblem[] {
  const out: BindingProblem[] = [];
  const cfgs: HalloConfigs = configs ?? {};
  const sizes = configs ? "the sizes given" : "the sizes upstream's inference.py hard-codes";
  if (paths.net && paths.unet_config) {
    try {
      const store = WeightStore.open(paths.net);
      const cfg = parseUNetConfig(readObject(paths.unet_config), paths.unet_config);
      const imageProj = cfgs.imageProj ?? IMAGE_PROJ_CONFIG;
      const audioProj = cfgs.audioProj ?? AUDIO_PROJ_CONFIG;
      const M = cfgs.nMotionFrames ?? PROBE.motionFrames;
      const tokens = imageProj.clip_extra_context_tokens;
      const { height, width, frames } = PROBE;
      buildImageProj(store, imageProj);
      buildAudioProj(store, audioProj);
      buildFaceLocator(store, resolveFaceLocatorConfig(cfgs.faceLocator ?? FACE_LOCATOR_CONFIG));
      buildReferenceUNet(cfg, store, {
        batch: 2 * (1 + M),
        contextBatch: 2,
        contextTokens: tokens,
        height,
        width,
      });
      buildDenoisingUNet(cfg, cfgs.unetKwargs ?? HALLO_UNET_KWARGS, store, {
        batch: 2,
        frames,
        height,
        width,
        contextTokens: tokens,
        audioTokens: audioProj.context_tokens,
        motionFrames: M,
      });
    } catch (e) {
      out.push({ name: "net", problem: `the networks cannot be built from it with ${sizes}: ${why(e)}` });
    }
  }
  if (paths.vae_weights && paths.vae_config) {
    try {
      const store = WeightStore.open(paths.vae_weights);
      const cfg = parseVaeConfig(readObject(paths.vae_config), paths.vae_config);
      buildVaeEncoder(store, cfg);
      buildVaeDecoder(store, cfg);
    } catch (e) {
      out.push({ name: "vae_weights", problem: `the VAE cannot be built from it: ${why(e)}` });
    }
  }
  return out;
}

/** Builds wav2vec2 over its weights and config, as `prepare-audio` does. */
export function audioBindings(paths: Readonly<Record<string, string>>): BindingProblem[] {
  if (!paths.wav2vec_weights || !paths.wav2vec_config) return [];
  try {
    const store = WeightStore.open(paths.wav2vec_weights);
    const cfg = parseWav2Vec2Config(readObject(paths.wav2vec_config), paths.wav2vec_config);
    buildWav2Vec2(store, cfg, { prefix: wav2vec2Prefix(store) });
    return [];
  } catch (e) {
    return [{ name: "wav2vec_weights", problem: `wav2vec2 cannot be built from it: ${why(e)}` }];
  }
}

/**
 * Opens each ONNX model (`paths`: manifest name to file) in an ONNX Runtime CPU session, as the image and
 * audio stages do, and closes it again: the format check reads only the top-level fields, ORT reads the graph.
 */
export async function onnxSessions(paths: Readonly<Record<string, string>>): Promise<BindingProblem[]> {
  const out: BindingProblem[] = [];
  for (const [name, path] of Object.entries(paths)) {
    try {
      const session = await Session.create(await Deno.readFile(path), dirname(path), { threads: 1 });
      await session.release();
    } catch (e) {
      out.push({ name, problem: `ONNX Runtime cannot load it: ${why(e)}` });
    }
  }
  return out;
}
