/**
 * Parity case `wav2vec`: Hallo's AudioProcessor.preprocess(features="all") on the reference waveform with the
 * tiny wav2vec2 checkpoint, then inference.py's `process_audio_emb` windows. Compares the normalised and padded
 * input, the interpolated CNN features, every hidden state, audio_emb and the windows.
 */
import { join } from "node:path";
import type { CaseInput, CaseResult, ParityCase } from "../types.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import { loadWav2Vec, runWav2Vec, stackHiddenStates } from "../../stages/networks/wav2vec.ts";
import { WAV2VEC2_IO } from "../../models/wav2vec2.ts";

// The three helpers below stand in for src/stages/audio (owned by the audio preprocessing work), which has no
// normalisation/padding/windowing module yet; switch to it when it lands.

/** Wav2Vec2FeatureExtractor do_normalize: (x - mean) / sqrt(var + 1e-7) over the whole clip. */
function normalize(x: Float32Array): Float32Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) ** 2;
  variance /= x.length;
  const inv = 1 / Math.sqrt(variance + 1e-7);
  return x.map((v) => (v - mean) * inv);
}

/** audio_processor.py: seq_len = ceil(N/sr*fps), padded with zeros up to a multiple of clip_length frames. */
function padToClips(
  x: Float32Array,
  sampleRate: number,
  fps: number,
  clipLength: number,
): { padded: Float32Array; seqLen: number; audioLength: number } {
  let seqLen = Math.ceil(x.length / sampleRate * fps);
  const audioLength = seqLen;
  let padded = x;
  if (seqLen % clipLength !== 0) {
    const extra = clipLength - seqLen % clipLength;
    padded = new Float32Array(x.length + extra * Math.floor(sampleRate / fps));
    padded.set(x);
    seqLen += extra;
  }
  return { padded, seqLen, audioLength };
}

/** inference.py `process_audio_emb`: frames i-2..i+2 (clamped) per frame, (L, 5, layers, C). */
function windows(emb: F32Tensor): F32Tensor {
  const [L, layers, C] = emb.shape;
  const frame = layers * C;
  const out = new Float32Array(L * 5 * frame);
  for (let i = 0; i < L; i++) {
    for (let j = -2; j <= 2; j++) {
      const src = Math.max(Math.min(i + j, L - 1), 0);
      out.set(emb.data.subarray(src * frame, (src + 1) * frame), (i * 5 + j + 2) * frame);
    }
  }
  return f32([L, 5, layers, C], out);
}

function metaNumber(meta: Record<string, unknown>, key: string): number {
  const v = meta[key];
  if (typeof v !== "number") throw new Error(`wav2vec case: meta.${key} is missing or not a number`);
  return v;
}

/** The `wav2vec` parity case. */
export const wav2vecCase: ParityCase = {
  name: "wav2vec",
  tolerance: 1e-4,
  async run(input: CaseInput): Promise<CaseResult> {
    const waveform = input.tensors.get("waveform");
    if (!waveform) throw new Error("wav2vec case: reference has no 'waveform' tensor");
    const fps = metaNumber(input.meta, "fps");
    const clipLength = metaNumber(input.meta, "clip_length");
    const pre = (input.meta.preprocessor ?? {}) as { sampling_rate?: number; do_normalize?: boolean };
    const sampleRate = pre.sampling_rate ?? 16000;

    const model = await loadWav2Vec(join(input.dir, "tiny_models", "wav2vec", "wav2vec2-base-960h"), {
      threads: 1,
      probes: [WAV2VEC2_IO.interpolated],
    });
    try {
      const t0 = performance.now();
      const inputValues = pre.do_normalize === false ? waveform.data : normalize(waveform.data);
      const { padded, seqLen } = padToClips(inputValues, sampleRate, fps, clipLength);
      const { hiddenStates, probes } = await runWav2Vec(model, padded, seqLen);
      const audioEmb = stackHiddenStates(hiddenStates);
      const audioWindows = windows(audioEmb);
      const run_s = (performance.now() - t0) / 1000;

      const outputs: CaseResult["outputs"] = {
        input_values: inputValues,
        input_values_padded: padded,
        extract_features_interp: probes[WAV2VEC2_IO.interpolated],
        last_hidden_state: hiddenStates[hiddenStates.length - 1],
        audio_emb: audioEmb,
        audio_windows: audioWindows,
      };
      hiddenStates.forEach((h, i) => outputs[`hidden_states.${i}`] = h);
      return { outputs, build_s: model.timings.build_s, session_s: model.timings.session_s, run_s };
    } finally {
      await model.release();
    }
  },
};
