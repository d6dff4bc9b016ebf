/**
 * MDX separation through onnxruntime: an Identity model built with our graph builder (same input/output names and
 * shape as Kim_Vocal_2) must reproduce upstream's identity-model reference; names come from the session; a model
 * whose declared shape does not fit the MDX parameters, or that is not ONNX, fails with one clear line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readWav } from "../src/stages/audio/wav.ts";
import { KIM_VOCAL_2_PARAMS, separateVocals, SeparationError } from "../src/stages/audio/mdx.ts";
import { loadMdxSeparator, mdxInputShape } from "../src/stages/audio/separator_onnx.ts";
import { errors, interleaved, planar } from "./helpers/audio_assert.ts";
import { writeIdentityMdxModel } from "./helpers/mdx_identity.ts";
import { f32Tensors, shared } from "./helpers/shared.ts";

const tmp = Deno.makeTempDirSync({ prefix: "hallo_mdx_onnx_" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

Deno.test("identity ONNX model through the session: upstream's identity reference (1 s, Kim_Vocal_2 params)", async () => {
  const dir = shared("reference", "preprocess", "mdx");
  const meta = JSON.parse(await Deno.readTextFile(join(dir, "mdx_identity_1s.json")));
  const ref = f32Tensors(join(dir, "mdx_identity_1s.safetensors"));
  const mix = await readWav(join(dir, meta.wav));
  const model = writeIdentityMdxModel(join(tmp, "a", "Kim_Vocal_2.onnx"));
  const sep = await loadMdxSeparator(model, { threads: 1 });
  try {
    assert.equal(sep.source, "defaults"); // no mdx_model_data.json beside it: Kim_Vocal_2's values
    assert.equal(sep.modelName, "Kim_Vocal_2");
    assert.equal(sep.inputName, "input");
    assert.equal(sep.outputName, "output");
    assert.deepEqual(mdxInputShape(sep.params), [1, 4, meta.params.dim_f, meta.params.dim_t]);
    let calls = 0;
    const counted = (s: Float32Array, shape: readonly number[]) => (calls++, sep.runModel(s, shape));
    const r = await separateVocals(mix.channels, counted, sep.params);
    assert.equal(calls, meta.derived.chunk_starts.length);
    const d = errors(planar(r.demixed), ref.get("demix_output")!.data);
    const p = errors(interleaved(r.vocals), ref.get("primary_final")!.data);
    console.log(
      `ONNX identity: demix_output rel ${d.rel.toExponential(2)}, primary_final rel ${
        p.rel.toExponential(2)
      }`,
    );
    assert.ok(d.rel <= 1e-5 && d.maxAbs <= 1e-5, `demix_output rel ${d.rel}`);
    assert.ok(p.rel <= 1e-5 && p.maxAbs <= 1e-5, `primary_final rel ${p.rel}`);
  } finally {
    await sep.release();
  }
});

Deno.test("input and output names are read from the session; symbolic dimensions accepted; bad feeds are clear errors", async () => {
  const model = writeIdentityMdxModel(join(tmp, "b", "other.onnx"), {
    dims: ["batch", 4, "bins", "frames"],
    inputName: "spec_in",
    outputName: "spec_out",
  });
  const sep = await loadMdxSeparator(model, { threads: 1 });
  try {
    assert.equal(sep.inputName, "spec_in");
    assert.equal(sep.outputName, "spec_out");
    assert.equal(sep.modelName, "other");
    const shape = [1, 4, 5, 3];
    const spec = Float32Array.from({ length: 60 }, (_, i) => i - 30);
    assert.deepEqual(await sep.runModel(spec, shape), spec);
    await assert.rejects(
      async () => await sep.runModel(new Float32Array(4), [1, 4, 1, 1, 1]),
      SeparationError,
    );
  } finally {
    await sep.release();
  }
});

Deno.test("a model whose input shape does not fit the MDX parameters, or a file that is not ONNX, is refused", async () => {
  const wrong = writeIdentityMdxModel(join(tmp, "c", "Kim_Vocal_2.onnx"), { dims: [1, 4, 2048, 256] });
  await assert.rejects(() => loadMdxSeparator(wrong, { threads: 1 }), (e: Error) => {
    assert.ok(e instanceof SeparationError);
    assert.match(e.message, /has shape \[1,4,2048,256\] but the MDX parameters give \[1,4,3072,256\]/);
    return true;
  });
  // the same model fits once the parameters say dim_f 2048
  const ok = await loadMdxSeparator(wrong, { threads: 1, overrides: { dimF: 2048 } });
  await ok.release();
  const junk = join(tmp, "c", "junk.onnx");
  Deno.writeTextFileSync(junk, "this is not a model");
  await assert.rejects(() => loadMdxSeparator(junk, { threads: 1 }), (e: Error) => {
    assert.ok(e instanceof SeparationError);
    assert.match(e.message, /junk\.onnx: onnxruntime cannot load the separator model/);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
  assert.equal(KIM_VOCAL_2_PARAMS.dimF, 3072);
});
