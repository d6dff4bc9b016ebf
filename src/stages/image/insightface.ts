/**
 * insightface's two models that Hallo reads (antelopev2's `scrfd_10g_bnkps.onnx` detector and
 * `glintr100.onnx` recognizer) as onnxruntime-node sessions, adapted to the `RunModel` contract of
 * scrfd.ts / arcface.ts. As insightface's model_zoo does, nothing about a model is hard-coded: the input
 * name, the output order and the input shape come from the session, and the ArcFace input normalisation is
 * chosen the way `ArcFaceONNX.__init__` chooses it (an MXNet export, recognised by `Sub`/`_minus` and
 * `Mul`/`_mul` among its first 8 node names, takes raw pixels; any other model (px - 127.5) / 127.5).
 */
import { dirname, resolve } from "node:path";
import { Session } from "../../runtime/session.ts";
import type { Device } from "../../runtime/device.ts";
import { MANIFEST, type WeightsManifest } from "../../weights/manifest.ts";
import { requireWeights } from "../../weights/locate.ts";
import type { F32Tensor } from "../../tensor.ts";
import { ARCFACE_SIZE, EMBEDDING_DIM, type EmbedOptions, type RunModel } from "./arcface.ts";
import { ImageError } from "./errors.ts";
import { DET_SIZE, FEAT_STRIDES } from "./scrfd.ts";
import { eachBytesField } from "../../onnx/proto_read.ts";

/** Manifest names of the detector and recognizer (weights/manifest.json). */
export const DETECTOR_NAME = "scrfd_10g_bnkps";
export const RECOGNIZER_NAME = "glintr100";

/** Their paths relative to `pretrained_models/`. */
export const DETECTOR_FILE = "face_analysis/models/scrfd_10g_bnkps.onnx";
export const RECOGNIZER_FILE = "face_analysis/models/glintr100.onnx";

/** How many leading nodes insightface inspects to recognise an MXNet-exported ArcFace. */
const MXNET_SCAN_NODES = 8;

/** Options of the model loaders. */
export interface FaceModelOptions {
  device?: Device;
  /** Intra-op threads per session (default: ORT's choice). */
  threads?: number;
}

/** One loaded insightface model. */
export interface OnnxFaceModel {
  /** The .onnx file. */
  readonly path: string;
  /** The session's (first) input, fed by `run`. */
  readonly inputName: string;
  /** The session's outputs, in the order `run` returns them. */
  readonly outputNames: readonly string[];
  /** The input shape the model declares (strings for symbolic dimensions). */
  readonly inputShape: readonly (number | string)[];
  /** Runs the model on one float32 tensor; outputs in the session's output order. */
  readonly run: RunModel;
  release(): Promise<void>;
}

/** The recognizer and the input normalisation insightface picks for it. */
export interface ArcFaceModel extends OnnxFaceModel {
  readonly embed: Required<EmbedOptions>;
}

/** Detector + recognizer, as `FaceAnalysis` holds them for Hallo. */
export interface FaceModels {
  readonly detector: OnnxFaceModel;
  readonly recognizer: ArcFaceModel;
  /** Releases both sessions. */
  release(): Promise<void>;
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/**
 * Names of the first `count` nodes of an ONNX model (ModelProto.graph = field 7, GraphProto.node = field 1,
 * NodeProto.name = field 3), read without decoding the weights. Throws RangeError on malformed bytes.
 */
export function firstNodeNames(model: Uint8Array, count: number = MXNET_SCAN_NODES): string[] {
  const names: string[] = [];
  const text = new TextDecoder();
  eachBytesField(model, (field, graph) => {
    if (field !== 7) return;
    eachBytesField(graph, (gField, node) => {
      if (gField !== 1) return;
      let name = "";
      eachBytesField(node, (nField, v) => {
        if (nField === 3) name = text.decode(v);
      });
      names.push(name);
      return names.length >= count;
    });
    return true;
  });
  return names;
}

/** insightface's ArcFace normalisation rule (arcface_onnx.py): MXNet exports take raw pixels. */
export function arcfaceNormalisation(nodeNames: readonly string[]): Required<EmbedOptions> {
  const sub = nodeNames.some((n) => n.startsWith("Sub") || n.startsWith("_minus"));
  const mul = nodeNames.some((n) => n.startsWith("Mul") || n.startsWith("_mul"));
  return sub && mul ? { inputMean: 0, inputStd: 1 } : { inputMean: 127.5, inputStd: 127.5 };
}

async function readModel(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ImageError(path, "model file not found");
    throw new ImageError(path, `cannot read the model: ${message(e)}`);
  }
}

async function openSession(
  path: string,
  o: FaceModelOptions,
): Promise<{ bytes: Uint8Array; model: OnnxFaceModel }> {
  const bytes = await readModel(path);
  let session: Session;
  try {
    session = await Session.create(bytes, dirname(resolve(path)), { device: o.device, threads: o.threads });
  } catch (e) {
    throw new ImageError(path, `onnxruntime cannot load the model: ${message(e)}`);
  }
  const meta = session.ort.inputMetadata[0];
  const inputName = session.inputNames[0];
  if (session.inputNames.length !== 1 || !meta) {
    await session.release();
    throw new ImageError(path, `expected one input, the model has ${session.inputNames.length}`);
  }
  const inputShape = meta.isTensor ? [...meta.shape] : [];
  const outputNames = [...session.outputNames];
  const run: RunModel = async (x: F32Tensor) => {
    const out = await session.run({ [inputName]: x });
    return outputNames.map((n) => {
      const t = out[n];
      if (t.dtype !== "float32") throw new ImageError(path, `output '${n}' is ${t.dtype}, expected float32`);
      return t.data as Float32Array;
    });
  };
  return {
    bytes,
    model: { path, inputName, outputNames, inputShape, run, release: () => session.release() },
  };
}

/**
 * Loads an SCRFD detector. insightface routes any model with >= 5 outputs to SCRFD; Hallo's pipeline needs
 * the 9-output form (3 strides x scores, boxes, keypoints), and scrfd.ts letterboxes to det_size 640, so a
 * model with a fixed input size other than 640x640 is refused (insightface would use the fixed size).
 */
export async function loadDetector(path: string, o: FaceModelOptions = {}): Promise<OnnxFaceModel> {
  const { model } = await openSession(path, o);
  const fail = async (problem: string): Promise<never> => {
    await model.release();
    throw new ImageError(path, problem);
  };
  const n = 3 * FEAT_STRIDES.length;
  if (model.outputNames.length !== n) {
    await fail(
      `not an SCRFD detector with keypoints: ${model.outputNames.length} outputs, expected ${n} (scores, boxes and keypoints at strides ${
        FEAT_STRIDES.join("/")
      })`,
    );
  }
  const [, c, h, w] = model.inputShape;
  if (model.inputShape.length !== 4 || (typeof c === "number" && c !== 3)) {
    await fail(`detector input has shape [${model.inputShape}], expected (1, 3, H, W)`);
  }
  const fixed = typeof h === "number" && typeof w === "number";
  if (fixed && (h !== DET_SIZE || w !== DET_SIZE)) {
    await fail(
      `detector has a fixed ${w}x${h} input; the image stage letterboxes to ${DET_SIZE}x${DET_SIZE}`,
    );
  }
  return model;
}

/** Loads an ArcFace recognizer: one (1,3,112,112) input, one 512-wide output, normalisation as insightface. */
export async function loadRecognizer(path: string, o: FaceModelOptions = {}): Promise<ArcFaceModel> {
  const { bytes, model } = await openSession(path, o);
  const fail = async (problem: string): Promise<never> => {
    await model.release();
    throw new ImageError(path, problem);
  };
  const [, c, h, w] = model.inputShape;
  if (model.inputShape.length !== 4 || c !== 3 || h !== ARCFACE_SIZE || w !== ARCFACE_SIZE) {
    await fail(
      `recognizer input has shape [${model.inputShape}], expected (1, 3, ${ARCFACE_SIZE}, ${ARCFACE_SIZE}) as insightface routes ArcFace models`,
    );
  }
  if (model.outputNames.length !== 1) {
    await fail(
      `recognizer has ${model.outputNames.length} outputs, expected one ${EMBEDDING_DIM}-d embedding`,
    );
  }
  let names: string[];
  try {
    names = firstNodeNames(bytes);
  } catch (e) {
    // ORT parsed the file, so this cannot happen short of a reader bug; say so rather than guess.
    return await fail(`cannot read node names: ${message(e)}`);
  }
  return { ...model, embed: arcfaceNormalisation(names) };
}

/** The manifest restricted to the two insightface files (the FaceLandmarker has a bundled fallback). */
function faceModelManifest(): WeightsManifest {
  const names = [DETECTOR_NAME, RECOGNIZER_NAME];
  return { ...MANIFEST, files: MANIFEST.files.filter((f) => names.includes(f.name)) };
}

/**
 * Loads the detector and recognizer from `weightsDir` (a `pretrained_models/` folder). Missing or broken
 * files throw `MissingWeightsError` naming them and the download command, before anything is loaded.
 */
export async function loadFaceModels(weightsDir: string, o: FaceModelOptions = {}): Promise<FaceModels> {
  const found = await requireWeights(resolve(weightsDir), "image", faceModelManifest());
  const detector = await loadDetector(found[DETECTOR_NAME], o);
  let recognizer: ArcFaceModel;
  try {
    recognizer = await loadRecognizer(found[RECOGNIZER_NAME], o);
  } catch (e) {
    await detector.release();
    throw e;
  }
  return {
    detector,
    recognizer,
    release: async () => {
      await detector.release();
      await recognizer.release();
    },
  };
}
