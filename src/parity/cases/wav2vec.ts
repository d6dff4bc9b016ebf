/**
 * Parity case `wav2vec`: Hallo's AudioProcessor.preprocess(features="all") on the reference waveform with the
 * tiny wav2vec2 checkpoint, then inference.py's `process_audio_emb` windows. Compares the normalised and padded
 * input, the interpolated CNN features, every hidden state, audio_emb and the windows. fps and clip length
 * come from the sidecar, the feature extractor's settings from its `preprocessor` (else the checkpoint's
 * preprocessor_config.json, else index.json's `configs.wav2vec2_preprocessor`).
 */
import { join } from "node:path";
import type { CaseInput, CaseResult, ParityCase } from "../types.ts";
import { loadWav2Vec, runWav2Vec, stackHiddenStates } from "../../stages/networks/wav2vec.ts";
import { prepareWav2vecInput } from "../../stages/audio/wav2vec_input.ts";
import { gatherWindows } from "../../stages/audio/windows.ts";
import { WAV2VEC2_IO } from "../../models/wav2vec2.ts";
import { agrees, metaCount, settingError } from "../settings.ts";

const MODEL = ["tiny_models", "wav2vec", "wav2vec2-base-960h"];

/** The feature extractor's `sampling_rate` and `do_normalize`, from the first record that has them. */
function preprocessor(input: CaseInput): { sampling_rate: number; do_normalize: boolean } {
  const file = join(input.dir, ...MODEL, "preprocessor_config.json");
  let raw = input.meta.preprocessor as Record<string, unknown> | undefined;
  if (raw === undefined) {
    try {
      raw = JSON.parse(Deno.readTextFileSync(file));
    } catch {
      raw = input.index.common?.configs?.wav2vec2_preprocessor as Record<string, unknown> | undefined;
    }
  }
  if (typeof raw !== "object" || raw === null) {
    settingError(
      input,
      `no feature-extractor settings ('preprocessor', ${file}, index configs.wav2vec2_preprocessor)`,
    );
  }
  const { sampling_rate, do_normalize } = raw;
  if (typeof sampling_rate !== "number" || typeof do_normalize !== "boolean") {
    settingError(input, "the feature extractor needs a number sampling_rate and a boolean do_normalize");
  }
  return { sampling_rate, do_normalize };
}

/** The `wav2vec` parity case. */
export const wav2vecCase: ParityCase = {
  name: "wav2vec",
  tolerance: 1e-4,
  async run(input: CaseInput): Promise<CaseResult> {
    const waveform = input.tensors.get("waveform");
    if (!waveform) throw new Error("wav2vec case: reference has no 'waveform' tensor");
    const fps = metaCount(input, "fps");
    const clipLength = metaCount(input, "clip_length");
    const pre = preprocessor(input);
    const sampleRate = pre.sampling_rate;

    const model = await loadWav2Vec(join(input.dir, ...MODEL), {
      threads: 1,
      ...input.network,
      probes: [WAV2VEC2_IO.interpolated],
    });
    try {
      const t0 = performance.now();
      const prep = prepareWav2vecInput(waveform.data, { sampleRate, fps, clipLength });
      agrees(input, "seq_len", prep.seqLen, "the waveform's length");
      // do_normalize false: the raw waveform followed by the same zeros
      if (pre.do_normalize === false) prep.inputValues.set(waveform.data);
      const padded = prep.inputValues;
      const inputValues = padded.subarray(0, waveform.data.length);
      const { hiddenStates, probes } = await runWav2Vec(model, padded, prep.seqLen);
      const audioEmb = stackHiddenStates(hiddenStates);
      const audioWindows = gatherWindows(audioEmb);
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
