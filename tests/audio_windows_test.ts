import assert from "node:assert/strict";
import { decodeAudio } from "../src/stages/audio/decode.ts";
import {
  audioFrameCount,
  prepareWav2vecInput,
  Wav2vecInputError,
  zeroMeanUnitVarNorm,
} from "../src/stages/audio/wav2vec_input.ts";
import { clipSlices, gatherWindows, windowIndexTable } from "../src/stages/audio/windows.ts";
import { f32 } from "../src/tensor.ts";
import { assertArrayEqual } from "./helpers/audio_assert.ts";
import { f32Tensors, shared } from "./helpers/shared.ts";

const DIR = shared("reference", "preprocess", "audio_windows");
const CASES = Object.keys(JSON.parse(Deno.readTextFileSync(`${DIR}/index.json`)));

for (const name of CASES) {
  Deno.test(`upstream audio windows ${name}: seq_len, audio_length, padding, index table, wav2vec input (bit-exact)`, async () => {
    const meta = JSON.parse(await Deno.readTextFile(`${DIR}/${name}.json`));
    const ref = f32Tensors(`${DIR}/${name}.safetensors`);
    const audio = await decodeAudio(`${DIR}/${meta.wav}`, { sampleRate: 16000, channels: 1 });
    const x = audio.channels[0];
    assert.equal(x.length, meta.num_samples_N);
    const prep = prepareWav2vecInput(x);
    assert.equal(prep.audioLength, meta.audio_length);
    assert.equal(prep.paddingSamples, meta.padding_samples_appended);
    assert.equal(prep.seqLen, meta.seq_len_after_padding);
    assert.equal(prep.numClips, meta.num_clips_times);
    assert.equal(prep.inputValues.length, meta.padded_num_samples);
    assertArrayEqual(prep.inputValues, ref.get("wav2vec_input_values")!.data, "wav2vec_input_values");
    const table = windowIndexTable(prep.seqLen);
    assert.deepEqual(ref.get("window_frame_index")!.shape, [prep.seqLen, 5]);
    assertArrayEqual(
      Float32Array.from(table),
      ref.get("window_frame_index")!.data,
      "window_frame_index",
    );
    assert.deepEqual(table.length, meta.window_frame_index_rows.flat().length);
    assert.deepEqual(clipSlices(prep.seqLen), meta.clip_slices);
  });
}

Deno.test("seq_len is computed in float64 as Python does: 35,200 samples give 56 frames", () => {
  assert.equal(audioFrameCount(35200), 56);
  assert.equal(audioFrameCount(16000), 25);
  assert.equal(audioFrameCount(1600), 3);
});

Deno.test("1-sample and empty audio are clear errors (upstream crashes on 1 sample)", () => {
  assert.throws(() => prepareWav2vecInput(new Float32Array(1)), (e: Error) => {
    assert.ok(e instanceof Wav2vecInputError);
    assert.match(e.message, /single sample/);
    return true;
  });
  assert.throws(() => prepareWav2vecInput(new Float32Array(0)), /no samples/);
  const two = prepareWav2vecInput(Float32Array.from([0.5, -0.5]));
  assert.equal(two.seqLen, 16);
  assert.equal(two.paddingSamples, 15 * 640);
});

Deno.test("normalisation of a constant signal is all zeros (variance 0 + 1e-7)", () => {
  assert.ok(zeroMeanUnitVarNorm(new Float32Array(100).fill(0.25)).every((v) => v === 0));
});

Deno.test("gatherWindows: (L, layers, width) -> (L, 5, layers, width) with edge replication", () => {
  const L = 4, layers = 3, width = 2;
  const emb = f32([L, layers, width], Float32Array.from({ length: L * layers * width }, (_, i) => i));
  const w = gatherWindows(emb);
  assert.deepEqual(w.shape, [L, 5, layers, width]);
  const row = layers * width;
  const expectFrames = [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 3], [1, 2, 3, 3, 3]];
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < 5; j++) {
      const got = w.data.subarray((i * 5 + j) * row, (i * 5 + j + 1) * row);
      assert.deepEqual(
        Array.from(got),
        Array.from(emb.data.subarray(expectFrames[i][j] * row, (expectFrames[i][j] + 1) * row)),
      );
    }
  }
  assert.deepEqual(Array.from(windowIndexTable(1)), [0, 0, 0, 0, 0]);
});
