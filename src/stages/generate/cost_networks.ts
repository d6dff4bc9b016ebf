/**
 * The three networks whose cost dominates a run (reference UNet once per clip, denoising UNet once per step,
 * VAE decoder once per frame), built at a run's geometry over a recording weight source (no checkpoint is
 * read), and their FLOPs, weight bytes and activation peak. Shared by the cost model and the bench.
 */
import { join } from "node:path";
import { AUDIO_PROJ_CONFIG } from "../../models/audio_proj.ts";
import { buildDenoisingUNet } from "../../models/denoising_unet.ts";
import { SD15_UNET_CONFIG, SD_VAE_CONFIG } from "../../models/full_configs.ts";
import { IMAGE_PROJ_CONFIG } from "../../models/image_proj.ts";
import { buildReferenceUNet } from "../../models/reference_unet.ts";
import {
  HALLO_UNET_KWARGS,
  type HalloUNetKwargs,
  parseUNetConfig,
  type UNetConfig,
} from "../../models/unet_config.ts";
import { buildVaeDecoder, parseVaeConfig, VAE_DECODER_INPUT, type VaeConfig } from "../../models/vae.ts";
import { type GraphCost, graphCost } from "../../onnx/flops.ts";
import type { Graph, WeightSource } from "../../onnx/graph.ts";
import { LayoutRecorder } from "../../tiny/layout.ts";
import { readTinyConfigs } from "../../tiny/configs.ts";
import { readJson } from "../networks/load.ts";
import type { CfgBatch } from "./models.ts";

/** The networks the cost model counts. */
export type CostNetwork = "reference_unet" | "denoising_unet" | "vae_decoder";
export const COST_NETWORKS: readonly CostNetwork[] = ["reference_unet", "denoising_unet", "vae_decoder"];

/** Configs of the counted networks and the token counts that size their inputs. */
export interface CostConfigs {
  unet: UNetConfig;
  kwargs: HalloUNetKwargs;
  vae: VaeConfig;
  contextTokens: number;
  audioTokens: number;
  motionFrames: number;
}

/** A run's geometry: video size in pixels (square), frames per clip, CFG on or off. */
export interface RunGeometry {
  size: number;
  frames: number;
  guidance: boolean;
  /** How the denoising UNet runs the CFG batch (default "joint"; see `ModelOptions.cfgBatch`). */
  cfgBatch?: CfgBatch;
}

/** Hallo's real sizes (SD-1.5 UNet, sd-vae-ft-mse, upstream's projection configs). */
export function fullSizeConfigs(): CostConfigs {
  return {
    unet: parseUNetConfig(structuredClone(SD15_UNET_CONFIG) as Record<string, unknown>),
    kwargs: HALLO_UNET_KWARGS,
    vae: parseVaeConfig(structuredClone(SD_VAE_CONFIG)),
    contextTokens: IMAGE_PROJ_CONFIG.clip_extra_context_tokens,
    audioTokens: AUDIO_PROJ_CONFIG.context_tokens,
    motionFrames: 2,
  };
}

/** The configs of the networks in a `pretrained_models/` folder (a tiny random set supplies its own). */
export function configsIn(weightsDir: string): CostConfigs {
  const tiny = readTinyConfigs(weightsDir) ?? {};
  const unetFile = join(weightsDir, "stable-diffusion-v1-5", "unet", "config.json");
  const vaeFile = join(weightsDir, "sd-vae-ft-mse", "config.json");
  return {
    unet: parseUNetConfig(readJson(unetFile) as Record<string, unknown>, unetFile),
    kwargs: tiny.unetKwargs ?? HALLO_UNET_KWARGS,
    vae: parseVaeConfig(readJson(vaeFile), vaeFile),
    contextTokens: (tiny.imageProj ?? IMAGE_PROJ_CONFIG).clip_extra_context_tokens,
    audioTokens: (tiny.audioProj ?? AUDIO_PROJ_CONFIG).context_tokens,
    motionFrames: tiny.nMotionFrames ?? 2,
  };
}

/** Graph-input dims that the builder leaves symbolic (the VAE decoder's latent). */
export function costInputDims(net: CostNetwork, geo: RunGeometry, c: CostConfigs): Record<string, number[]> {
  const latent = geo.size / 8;
  return net === "vae_decoder" ? { [VAE_DECODER_INPUT]: [1, c.vae.latentChannels, latent, latent] } : {};
}

/** Builds `net` at `geo` as the generation stages do (CFG doubles the UNet batches). */
export function buildCostNetwork(
  net: CostNetwork,
  geo: RunGeometry,
  c: CostConfigs,
  w: WeightSource = net === "vae_decoder"
    ? new LayoutRecorder((k) => k.endsWith(".query.weight"))
    : new LayoutRecorder(),
): Graph {
  if (geo.size % 64 !== 0) throw new Error(`size ${geo.size} is not a multiple of 64`);
  const latent = geo.size / 8;
  const b = geo.guidance ? 2 : 1;
  const halves = geo.guidance && geo.cfgBatch === "halves";
  switch (net) {
    case "reference_unet":
      return buildReferenceUNet(c.unet, w, {
        batch: b * (1 + c.motionFrames),
        contextBatch: b,
        contextTokens: c.contextTokens,
        height: latent,
        width: latent,
      });
    case "denoising_unet":
      return buildDenoisingUNet(c.unet, c.kwargs, w, {
        batch: halves ? 1 : b,
        frames: geo.frames,
        height: latent,
        width: latent,
        contextTokens: c.contextTokens,
        audioTokens: c.audioTokens,
        motionFrames: c.motionFrames,
        ...(halves ? { cfgHalves: true } : {}),
      });
    case "vae_decoder":
      return buildVaeDecoder(w, c.vae);
  }
}

/**
 * FLOPs, weight bytes and activation peak of one forward of `n` at `geo` (its graph built over `w`); the
 * denoising UNet's forward is a step's, so with CFG halves it is both half calls (their FLOPs summed, the larger
 * peak).
 */
export function networkCost(n: CostNetwork, geo: RunGeometry, c: CostConfigs, w?: WeightSource): GraphCost {
  const g = buildCostNetwork(n, geo, c, w);
  if (n !== "denoising_unet" || !(geo.guidance && geo.cfgBatch === "halves")) {
    return graphCost(g, costInputDims(n, geo, c));
  }
  const [u, k] = [0, 1].map((h) => graphCost(g, costInputDims(n, geo, c), { cfg_half: [h] }));
  const flops = { ...k.flops };
  for (const o of Object.keys(flops) as (keyof typeof flops)[]) flops[o] += u.flops[o];
  return {
    ...k,
    flops,
    totalFlops: u.totalFlops + k.totalFlops,
    activationPeakBytes: Math.max(u.activationPeakBytes, k.activationPeakBytes),
    attentionScoresBytes: Math.max(u.attentionScoresBytes, k.attentionScoresBytes),
  };
}

/** `networkCost` of each counted network at `geo`. */
export function networkCosts(geo: RunGeometry, c: CostConfigs): Record<CostNetwork, GraphCost> {
  return Object.fromEntries(COST_NETWORKS.map((n) => [n, networkCost(n, geo, c)])) as Record<
    CostNetwork,
    GraphCost
  >;
}
