/**
 * The MDX-Net model (Kim_Vocal_2.onnx) as an ORT session behind mdx.ts's injectable `MdxModelRunner`.
 * audio-separator feeds the spectrogram under the name `input` and takes the first output; here both names are
 * read from the session, and the model's declared input shape is checked against the MDX parameters before any
 * audio is processed, so a mismatched model fails with one clear line instead of an ORT error mid-file.
 */
import { dirname } from "node:path";
import type * as ort from "onnxruntime-node";
import type { Device } from "../../runtime/device.ts";
import { Session } from "../../runtime/session.ts";
import { f32 } from "../../tensor.ts";
import type { MdxModelRunner, MdxParams } from "./mdx.ts";
import { SeparationError } from "./mdx.ts";
import { type ResolvedMdxParams, resolveMdxParams } from "./mdx_params.ts";

/** Options of loadMdxSeparator. */
export interface LoadMdxOptions {
  device?: Device;
  /** Intra-op threads (default: ORT's choice). */
  threads?: number;
  /** mdx_model_data.json to look the model up in (default: beside the model). */
  modelDataPath?: string;
  /** Separator options that win over the model data (segmentSize, overlap, ...). */
  overrides?: Partial<MdxParams>;
}

/** A loaded MDX model: its parameters and a runner for `separateVocals`/`demix`. */
export interface MdxOnnxModel extends ResolvedMdxParams {
  readonly file: string;
  readonly session: Session;
  /** The graph input the spectrogram goes to (`input` for UVR's models). */
  readonly inputName: string;
  /** The graph output taken as the prediction (the first one, as audio-separator takes `[0]`). */
  readonly outputName: string;
  readonly runModel: MdxModelRunner;
  /** Seconds spent hashing/reading the model and creating the session. */
  readonly load_s: number;
  release(): Promise<void>;
}

/** The spectrogram shape the MDX code feeds for `p`: (1, 4, min(dim_f, n_fft/2+1), segment_size). */
export function mdxInputShape(p: MdxParams): number[] {
  return [1, 4, Math.min(p.dimF, p.nFft / 2 + 1), p.segmentSize];
}

function checkDeclaredShape(
  file: string,
  meta: ort.InferenceSession.ValueMetadata | undefined,
  want: number[],
) {
  if (!meta || !meta.isTensor) return;
  if (meta.type !== "float32") {
    throw new SeparationError(`${file}: model input '${meta.name}' is ${meta.type}, expected float32`);
  }
  const dims = meta.shape;
  if (dims.length === 0) return; // shape not declared
  const fits = dims.length === want.length &&
    dims.every((d, i) => typeof d !== "number" || d < 0 || d === want[i]);
  if (!fits) {
    throw new SeparationError(
      `${file}: model input '${meta.name}' has shape [${dims}] but the MDX parameters give [${want}] ` +
        `(dim_f, segment_size); wrong model or model data`,
    );
  }
}

/**
 * Loads an MDX-Net .onnx file: parameters by model hash (mdx_params.ts), the session over the file's bytes
 * (external data, if any, relative to its folder), input/output names from the session.
 */
export async function loadMdxSeparator(onnxPath: string, opts: LoadMdxOptions = {}): Promise<MdxOnnxModel> {
  const t0 = performance.now();
  const resolved = await resolveMdxParams(onnxPath, {
    modelDataPath: opts.modelDataPath,
    overrides: opts.overrides,
  });
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(onnxPath);
  } catch (e) {
    throw new SeparationError(`${onnxPath}: cannot read the separator model (${(e as Error).message})`);
  }
  let session: Session;
  try {
    session = await Session.create(bytes, dirname(onnxPath), { device: opts.device, threads: opts.threads });
  } catch (e) {
    if ((e as Error).name === "DeviceError") throw e;
    const msg = ((e as Error).message ?? String(e)).split("\n")[0];
    throw new SeparationError(`${onnxPath}: onnxruntime cannot load the separator model (${msg})`);
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  if (!inputName || !outputName) {
    await session.release();
    throw new SeparationError(`${onnxPath}: the model has no input or no output`);
  }
  const want = mdxInputShape(resolved.params);
  try {
    checkDeclaredShape(onnxPath, session.ort.inputMetadata?.[0], want);
  } catch (e) {
    await session.release();
    throw e;
  }
  const runModel: MdxModelRunner = async (spec, shape) => {
    let out;
    try {
      out = await session.run({ [inputName]: f32(shape, spec) }, [outputName]);
    } catch (e) {
      const msg = ((e as Error).message ?? String(e)).split("\n")[0];
      throw new SeparationError(
        `${onnxPath}: the model failed on a (${shape.join("×")}) spectrogram: ${msg}`,
      );
    }
    const pred = out[outputName];
    if (pred.dtype !== "float32" || pred.shape.join() !== shape.join()) {
      throw new SeparationError(
        `${onnxPath}: output '${outputName}' is ${pred.dtype} [${pred.shape}], expected float32 [${shape}]`,
      );
    }
    return pred.data as Float32Array;
  };
  return {
    ...resolved,
    file: onnxPath,
    session,
    inputName,
    outputName,
    runModel,
    load_s: (performance.now() - t0) / 1000,
    release: () => session.release(),
  };
}
