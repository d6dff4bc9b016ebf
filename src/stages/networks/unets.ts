/**
 * Stage functions over the two UNets: load them once (graph built or taken from the compile cache,
 * weights memory-mapped from net.pth), write the reference bank, predict noise.
 */
import { join } from "node:path";
import {
  buildDenoisingUNet,
  denoisingBankInputs,
  type DenoisingUNetShape,
} from "../../models/denoising_unet.ts";
import {
  buildReferenceUNet,
  referenceBankOutputs,
  type ReferenceUNetShape,
} from "../../models/reference_unet.ts";
import { bankSlots } from "../../models/bank.ts";
import {
  HALLO_UNET_KWARGS,
  type HalloUNetKwargs,
  parseUNetConfig,
  type UNetConfig,
} from "../../models/unet_config.ts";
import type { Graph, GraphDType, WeightSource } from "../../onnx/graph.ts";
import type { AttentionProbe } from "../../onnx/layers.ts";
import type { Session } from "../../runtime/session.ts";
import { type NetworkOptions, openNetwork } from "./load.ts";
import { f32, type F32Tensor, type Tensor } from "../../tensor.ts";
import { resolveNetCheckpoint } from "../../weights/locate.ts";
import { WeightStore } from "../../weights/store.ts";
import { roundToF16 } from "../../util/f16.ts";
import { halfRows, mergeHalves } from "./cfg_halves.ts";

/** Where the UNets come from: Hallo's `pretrained_models/` layout (net.pth + SD-1.5 unet config). */
export interface UNetSources {
  /** `pretrained_models/` root. */
  weightsDir: string;
  /** Overrides Hallo's `unet_additional_kwargs` (tiny test models use other sizes). */
  kwargs?: HalloUNetKwargs;
  /** Checkpoint file (default `<weightsDir>/hallo/net.pth`, else `hallo/net.safetensors`). */
  checkpoint?: string;
}

/** Probes asked for at build time: attention probabilities by module path, module outputs by value name. */
export interface Probes {
  attention?: Record<string, AttentionProbe>;
  values?: string[];
}

export interface LoadOptions extends NetworkOptions {
  probes?: Probes;
}

interface Loaded<S> {
  session: Session;
  config: UNetConfig;
  kwargs: HalloUNetKwargs;
  shape: S;
  probes: Probes;
  /** Checkpoint keys under this network's prefix that the graph never binds (upstream never runs them). */
  unusedKeys: string[];
  timings: { build_s: number; session_s: number };
}

export type ReferenceUNet = Loaded<ReferenceUNetShape>;
export type DenoisingUNet = Loaded<DenoisingUNetShape>;

function readConfig(weightsDir: string): UNetConfig {
  const path = join(weightsDir, "stable-diffusion-v1-5", "unet", "config.json");
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Deno.readTextFileSync(path));
  } catch (e) {
    throw new Error(`${path}: cannot read the SD-1.5 UNet config (${e instanceof Error ? e.message : e})`);
  }
  return parseUNetConfig(raw, path);
}

async function load<S>(
  network: "reference_unet" | "denoising_unet",
  src: UNetSources,
  shape: S,
  o: LoadOptions,
  build: (
    cfg: UNetConfig,
    kw: HalloUNetKwargs,
    store: WeightSource,
    attentionProbes: Map<string, AttentionProbe>,
    dtype: GraphDType,
  ) => Graph,
): Promise<Loaded<S>> {
  const config = readConfig(src.weightsDir);
  const kwargs = src.kwargs ?? HALLO_UNET_KWARGS;
  const file = src.checkpoint ?? resolveNetCheckpoint(src.weightsDir);
  const store = WeightStore.open(file);
  const probes = o.probes ?? {};
  const attentionProbes = new Map(Object.entries(probes.attention ?? {}));
  // The probes are part of the compile key: attention probes change the graph, value probes its outputs.
  const net = await openNetwork(
    network,
    { config, kwargs, shape, attention: probes.attention ?? {} },
    [file],
    (w, d) => build(config, kwargs, w ?? store, attentionProbes, d),
    {
      device: o.device,
      threads: o.threads,
      mmapWeights: o.mmapWeights,
      cpuArena: o.cpuArena,
      strictDevice: o.strictDevice,
      dtype: o.dtype,
      probes: probes.values,
      weights: store,
    },
  );
  const prefix = `${network}.`;
  return {
    session: net.session,
    config,
    kwargs,
    shape,
    probes,
    unusedKeys: store.unusedKeys().filter((k) => k.startsWith(prefix)),
    timings: net.timings,
  };
}

/** Loads the reference UNet for a given batch layout (6 = 3 images x 2 CFG copies). */
export function loadReferenceUNet(
  src: UNetSources,
  shape: ReferenceUNetShape,
  o: LoadOptions = {},
): Promise<ReferenceUNet> {
  return load(
    "reference_unet",
    src,
    shape,
    o,
    (cfg, _kw, store, attentionProbes, dtype) =>
      buildReferenceUNet(cfg, store, shape, { dtype, attentionProbes }),
  );
}

/** Loads the denoising UNet for a given batch (2 with CFG), frame count and latent size. */
export function loadDenoisingUNet(
  src: UNetSources,
  shape: DenoisingUNetShape,
  o: LoadOptions = {},
): Promise<DenoisingUNet> {
  return load(
    "denoising_unet",
    src,
    shape,
    o,
    (cfg, kw, store, attentionProbes, dtype) =>
      buildDenoisingUNet(cfg, kw, store, shape, { dtype, attentionProbes }),
  );
}

/** One entry of the reference-attention bank: the norm1 output of a transformer block, (batch, tokens, channels). */
export interface BankEntry {
  /** Module path of the block (same in the reference and the denoising UNet). */
  path: string;
  data: F32Tensor;
}

/** The bank in the reader's pairing order (sorted by channels, descending; DFS down, up, mid). */
export type Bank = BankEntry[];

/** Output of `runReferenceUNet`. */
export interface ReferenceResult {
  /** As written by the reference UNet (float32). */
  bank: Bank;
  /** As the reader copies it: `.to(float16)`, so every value is rounded to half precision (upstream quirk). */
  readerBank: Bank;
  /** The reference UNet's last up-block features (unused by the pipeline). */
  outSample: F32Tensor;
  probes: Record<string, Tensor>;
}

/**
 * Runs the reference UNet in write mode. `refLatents` (batch, 4, h, w) is `[ref, m1, m2]` (already
 * scaled by 0.18215) repeated once per CFG copy; `context` is `[uncond, cond]` image-proj tokens (or `[cond]`).
 */
export async function runReferenceUNet(
  model: ReferenceUNet,
  refLatents: F32Tensor,
  context: F32Tensor,
  timestep = 0,
): Promise<ReferenceResult> {
  const out = await model.session.run({
    sample: refLatents,
    timestep: f32([1], Float32Array.from([timestep])),
    encoder_hidden_states: context,
  });
  const names = referenceBankOutputs(model.config);
  const slots = bankSlots(model.config);
  const bank = slots.map((s, i) => ({ path: s.path, data: out[names[i]] as F32Tensor }));
  const readerBank = bank.map((e) => ({ path: e.path, data: f32(e.data.shape, roundToF16(e.data.data)) }));
  const probes: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(out)) if (k !== "out_sample" && !names.includes(k)) probes[k] = v;
  return { bank, readerBank, outSample: out.out_sample as F32Tensor, probes };
}

/** Inputs of one denoising UNet call (upstream names). Masks are per level, (batch*frames, h*w). */
export interface NoiseInputs {
  sample: F32Tensor;
  timestep: number;
  encoderHiddenStates: F32Tensor;
  audioEmbedding: F32Tensor;
  maskCondFea: F32Tensor;
  fullMask: F32Tensor[];
  faceMask: F32Tensor[];
  lipMask: F32Tensor[];
  /** [pose, face, lip]. */
  motionScale: readonly [number, number, number];
  /** The reader bank (fp16-rounded) in pairing order. */
  bank: Bank;
}

/** The graph feeds of one denoising UNet call. */
function noiseFeeds(model: DenoisingUNet, x: NoiseInputs): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {
    sample: x.sample,
    timestep: f32([1], Float32Array.from([x.timestep])),
    encoder_hidden_states: x.encoderHiddenStates,
    audio_embedding: x.audioEmbedding,
    mask_cond_fea: x.maskCondFea,
    motion_scale: f32([3], Float32Array.from(x.motionScale)),
  };
  const levels = model.config.block_out_channels.length;
  for (let l = 0; l < levels; l++) {
    feeds[`full_mask.${l}`] = x.fullMask[l];
    feeds[`face_mask.${l}`] = x.faceMask[l];
    feeds[`lip_mask.${l}`] = x.lipMask[l];
  }
  const names = denoisingBankInputs(model.config);
  if (x.bank.length !== names.length) {
    throw new Error(`bank has ${x.bank.length} entries, the UNet reads ${names.length}`);
  }
  x.bank.forEach((e, i) => {
    if (`bank.${e.path}` !== names[i]) {
      throw new Error(`bank entry ${i} is ${e.path}, expected ${names[i].slice(5)}`);
    }
    feeds[names[i]] = e.data;
  });
  return feeds;
}

/**
 * The inputs of CFG half `half` (0 uncond, 1 cond) of a batch-2 call: every input with a CFG batch axis (the
 * latents, context, audio tokens, face features, the masks' (b*F) rows) cut to that half; the timestep, motion
 * scale and bank (both copies: the half graph picks from them as the batch-2 graph does) are shared.
 */
export function cfgHalfInputs(x: NoiseInputs, half: 0 | 1): NoiseInputs {
  const masks = (m: F32Tensor[]) => m.map((t) => halfRows(t, half));
  return {
    ...x,
    sample: halfRows(x.sample, half),
    encoderHiddenStates: halfRows(x.encoderHiddenStates, half),
    audioEmbedding: halfRows(x.audioEmbedding, half),
    maskCondFea: halfRows(x.maskCondFea, half),
    fullMask: masks(x.fullMask),
    faceMask: masks(x.faceMask),
    lipMask: masks(x.lipMask),
  };
}

function splitOutputs(out: Record<string, Tensor>): { noisePred: F32Tensor; probes: Record<string, Tensor> } {
  const probes: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(out)) if (k !== "noise_pred") probes[k] = v;
  return { noisePred: out.noise_pred as F32Tensor, probes };
}

/**
 * One denoising UNet call: returns `noise_pred` (batch, 4, frames, h, w) and any probe outputs. A UNet loaded
 * with `cfgHalves` takes the same batch-2 inputs and runs them one CFG half at a time (uncond, then cond),
 * handing back what the batch-2 graph would (cfg_halves.ts).
 */
export async function predictNoise(
  model: DenoisingUNet,
  x: NoiseInputs,
): Promise<{ noisePred: F32Tensor; probes: Record<string, Tensor> }> {
  if (!model.shape.cfgHalves) return splitOutputs(await model.session.run(noiseFeeds(model, x)));
  const run = (half: 0 | 1) =>
    model.session.run({
      ...noiseFeeds(model, cfgHalfInputs(x, half)),
      cfg_half: { dtype: "int64", shape: [1], data: BigInt64Array.of(BigInt(half)) },
    });
  const out = mergeHalves(model.config, await run(0), await run(1));
  return splitOutputs(out);
}
