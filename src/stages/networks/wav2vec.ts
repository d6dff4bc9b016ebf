/**
 * The wav2vec2 stage: load `pretrained_models/wav2vec/wav2vec2-base-960h` (config.json + model.safetensors in
 * the Wav2Vec2ForCTC layout) as an ORT session over the checkpoint's own bytes, and turn a normalised, padded
 * 16 kHz waveform into Hallo's `audio_emb` (seq_len, layers, hidden) = stack(hidden_states[1:]).
 */
import { join } from "node:path";
import {
  buildWav2Vec2,
  featureFrames,
  parseWav2Vec2Config,
  WAV2VEC2_IO,
  type Wav2Vec2Config,
  wav2vec2Prefix,
} from "../../models/wav2vec2.ts";
import type { AttentionForm } from "../../onnx/layers.ts";
import { openNetwork } from "./load.ts";
import type { Device } from "../../runtime/device.ts";
import type { Session } from "../../runtime/session.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import { WeightStore } from "../../weights/store.ts";

/** A wav2vec2 folder or call the stage cannot use, named with the problem. */
export class Wav2VecError extends Error {
  override name = "Wav2VecError";
}

/** Checkpoint file names tried in order, as transformers' `from_pretrained` prefers them. */
const WEIGHT_FILES = ["model.safetensors", "pytorch_model.bin"];

export interface LoadWav2VecOptions {
  device?: Device;
  /** Intra-op threads of the session (default: ORT's choice). */
  threads?: number;
  /** Fused attention kernel (default) or MatMul/Softmax. */
  attention?: AttentionForm;
  /** Extra graph values to return from every run, by name (e.g. `linear_interpolation`, `encoder.layers.0`). */
  probes?: readonly string[];
  /** Keep weights memory-mapped instead of pre-packed (less memory, a little slower). */
  mmapWeights?: boolean;
  /** On a GPU device, a compute node placed on the CPU fails the load (default: a warning naming it). */
  strictDevice?: boolean;
}

/** A loaded wav2vec2 network. */
export interface Wav2VecModel {
  readonly config: Wav2Vec2Config;
  /** The checkpoint file the graph reads its weights from. */
  readonly file: string;
  readonly session: Session;
  readonly probes: readonly string[];
  /** Checkpoint keys the graph never binds (lm_head, masked_spec_embed for a Wav2Vec2ForCTC file). */
  readonly unusedKeys: readonly string[];
  /** Seconds spent building/encoding the graph and creating the session. */
  readonly timings: { build_s: number; session_s: number };
  release(): Promise<void>;
}

function readConfig(dir: string): Wav2Vec2Config {
  const file = join(dir, "config.json");
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new Wav2VecError(
      `${file}: cannot read the wav2vec2 config (${(e as Error).message.split("\n")[0]})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Wav2VecError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseWav2Vec2Config(json, file);
}

function findWeights(dir: string): string {
  for (const name of WEIGHT_FILES) {
    const p = join(dir, name);
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* try the next name */ }
  }
  throw new Wav2VecError(`${dir}: no wav2vec2 weights (looked for ${WEIGHT_FILES.join(", ")})`);
}

/**
 * Loads the wav2vec2 model in `dir` (config.json + model.safetensors or pytorch_model.bin, with or without
 * the `wav2vec2.` prefix). Weights stay in the checkpoint (ONNX external data); shapes are checked against
 * the config while the graph is built.
 */
export async function loadWav2Vec(dir: string, opts: LoadWav2VecOptions = {}): Promise<Wav2VecModel> {
  const config = readConfig(dir);
  const file = findWeights(dir);
  const store = WeightStore.open(file);
  const attention = opts.attention ?? "fused";
  // wav2vec2 stays float32, as upstream runs it.
  const net = await openNetwork(
    "wav2vec2",
    { config, attention },
    [file],
    (w) => buildWav2Vec2(w ?? store, config, { prefix: wav2vec2Prefix(store), attention }),
    {
      device: opts.device,
      threads: opts.threads,
      mmapWeights: opts.mmapWeights,
      strictDevice: opts.strictDevice,
      probes: opts.probes,
      weights: store,
    },
  );
  return {
    config,
    file,
    session: net.session,
    probes: net.probes,
    unusedKeys: store.unusedKeys(),
    timings: net.timings,
    release: () => net.session.release(),
  };
}

/** What one wav2vec2 pass gives: hidden_states[0..layers], each (1, seq_len, hidden), and the probes. */
export interface Wav2VecOutputs {
  hiddenStates: F32Tensor[];
  probes: Record<string, F32Tensor>;
}

/** Runs the network on one waveform (already normalised and padded); `seqLen` frames come out. */
export async function runWav2Vec(
  model: Wav2VecModel,
  waveform: Float32Array,
  seqLen: number,
): Promise<Wav2VecOutputs> {
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) {
    throw new Wav2VecError(`seq_len must be a positive integer, got ${seqLen}`);
  }
  if (featureFrames(model.config, waveform.length) < 1) {
    throw new Wav2VecError(
      `waveform of ${waveform.length} samples is shorter than one wav2vec2 frame (${
        model.config.conv_kernel[0]
      }+ samples)`,
    );
  }
  for (let i = 0; i < waveform.length; i++) {
    if (!Number.isFinite(waveform[i])) {
      throw new Wav2VecError(`waveform sample ${i} is not finite (${waveform[i]})`);
    }
  }
  const out = await model.session.run({
    [WAV2VEC2_IO.inputValues]: f32([1, waveform.length], waveform),
    [WAV2VEC2_IO.seqLen]: { dtype: "int64", shape: [], data: BigInt64Array.of(BigInt(seqLen)) },
  });
  const hiddenStates: F32Tensor[] = [];
  for (let i = 0; i <= model.config.num_hidden_layers; i++) {
    hiddenStates.push(out[WAV2VEC2_IO.hiddenState(i)] as F32Tensor);
  }
  const probes: Record<string, F32Tensor> = {};
  for (const p of model.probes) probes[p] = out[p] as F32Tensor;
  return { hiddenStates, probes };
}

/** Hallo's `torch.stack(hidden_states[1:], dim=1).squeeze(0)` rearranged "b s d -> s b d": (seq, layers, hidden). */
export function stackHiddenStates(hiddenStates: readonly F32Tensor[]): F32Tensor {
  const layers = hiddenStates.slice(1);
  if (layers.length === 0) throw new Wav2VecError("no hidden states after the first to stack");
  const [batch, seq, hidden] = layers[0].shape;
  if (batch !== 1 || layers.some((h) => h.shape.join() !== layers[0].shape.join())) {
    throw new Wav2VecError(`hidden states must all be (1, seq, hidden), got [${layers[0].shape}]`);
  }
  const out = new Float32Array(seq * layers.length * hidden);
  layers.forEach((h, l) => {
    for (let s = 0; s < seq; s++) {
      out.set(h.data.subarray(s * hidden, (s + 1) * hidden), (s * layers.length + l) * hidden);
    }
  });
  return f32([seq, layers.length, hidden], out);
}

/**
 * Hallo's `audio_emb` for one clip: wav2vec2 over the normalised, zero-padded waveform, CNN frames interpolated
 * to `seqLen`, hidden_states[1:] stacked as (seq_len, num_hidden_layers, hidden_size) float32.
 */
export async function wav2vecFeatures(
  model: Wav2VecModel,
  normalizedPaddedWaveform: Float32Array,
  seqLen: number,
): Promise<F32Tensor> {
  const { hiddenStates } = await runWav2Vec(model, normalizedPaddedWaveform, seqLen);
  return stackHiddenStates(hiddenStates);
}
