/**
 * MediaPipe FaceLandmarker (478 landmarks) for the reference-image stage, as upstream's
 * `compute_face_landmarks` (hallo/utils/util.py) runs it: running mode IMAGE, default thresholds,
 * landmarks returned normalised and as pixels `[x*w, y*h]`.
 *
 * Upstream asks for one face and crashes later when there is none; here no face is a NoFaceError, and
 * `numFaces` > 1 lets a caller pick one (see `largestFace`) and say so.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveWeightsDir } from "../../weights/locate.ts";
import { ImageError } from "./errors.ts";
import { createHeadlessFaceLandmarker, type MediaPipeLog } from "./mediapipe/loader.ts";
import type { RgbaImage } from "./mediapipe/webgl2.ts";

/** Upstream's model file, relative to `pretrained_models/` (util.py hard-codes it). */
export const FACE_LANDMARKER_MODEL = "face_analysis/models/face_landmarker_v2_with_blendshapes.task";

/** Landmarks per face in MediaPipe's face mesh with irises. */
export const NUM_FACE_LANDMARKS = 478;

/** The FaceLandmarker bundle shipped in fixtures/ (see fixtures/README.md), used when the weights lack one. */
export const BUNDLED_FACE_LANDMARKER: string = fileURLToPath(
  new URL("../../../fixtures/face_landmarker_npm478.task", import.meta.url),
);

/** A landmark in normalised image coordinates (x, y in [0,1] of width/height; z relative depth). */
export interface Landmark {
  x: number;
  y: number;
  z: number;
}

/** One detected face. */
export interface Face {
  /** 478 landmarks, normalised. */
  landmarks: Landmark[];
  /** The same landmarks in pixels, `[x*w, y*h]`, as upstream's `compute_face_landmarks` returns them. */
  pixels: [number, number][];
}

/** MediaPipe found no face in the image (upstream would crash in `get_mask`). */
export class NoFaceError extends ImageError {
  constructor(source: string) {
    super(source, "MediaPipe FaceLandmarker found no face");
    this.name = "NoFaceError";
  }
}

/** Options of `createFaceLandmarker`; defaults are upstream's. */
export interface FaceLandmarkerConfig {
  /** Most faces to return (upstream: 1). */
  numFaces?: number;
  /** Upstream leaves MediaPipe's defaults (0.5). */
  minFaceDetectionConfidence?: number;
  minFacePresenceConfidence?: number;
  /** `pretrained_models/` folder searched for upstream's model when no model path is given. */
  weightsDir?: string;
  /** Receives MediaPipe's console lines (default: only its errors go to stderr). */
  log?: MediaPipeLog;
}

/** A loaded FaceLandmarker. Call `close()` when done: it holds a WASM instance and an EGL context. */
export interface HalloFaceLandmarker {
  /** The model file in use. */
  readonly modelPath: string;
  /**
   * Faces in an RGB image (`width*height*3` bytes, row-major). `source` names the image in errors.
   * Throws NoFaceError when there is none.
   */
  detect(rgb: Uint8Array, width: number, height: number, source?: string): Face[];
  /** Frees the task and its EGL context; idempotent. */
  close(): void;
}

/**
 * The model to use: upstream's `face_landmarker_v2_with_blendshapes.task` in the weights folder when
 * present, else the bundled fixture.
 */
export function defaultFaceLandmarkerModel(weightsDir?: string): string {
  const upstream = join(resolveWeightsDir(weightsDir), FACE_LANDMARKER_MODEL);
  try {
    if (Deno.statSync(upstream).isFile) return upstream;
  } catch {
    // absent: fall back to the bundled model
  }
  return BUNDLED_FACE_LANDMARKER;
}

function readModel(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    throw new ImageError(path, `cannot read the FaceLandmarker model: ${(e as Error).message}`);
  }
  // A .task bundle is a zip archive (model files + metadata).
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) {
    throw new ImageError(path, "not a MediaPipe .task bundle (expected a zip archive)");
  }
  return bytes;
}

function toRgba(rgb: Uint8Array, width: number, height: number, source: string): RgbaImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new ImageError(source, `bad image size ${width}x${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new ImageError(
      source,
      `expected ${width}x${height}x3 = ${width * height * 3} RGB bytes, got ${rgb.length}`,
    );
  }
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    data[j] = rgb[i];
    data[j + 1] = rgb[i + 1];
    data[j + 2] = rgb[i + 2];
    data[j + 3] = 255;
  }
  return { data, width, height };
}

/**
 * Loads MediaPipe's FaceLandmarker headless (WASM + WebGL2 over EGL; needs --allow-ffi and the Debian
 * packages libegl1 libgles2 libgl1-mesa-dri). `modelPath` defaults to `defaultFaceLandmarkerModel()`.
 */
export async function createFaceLandmarker(
  modelPath?: string,
  config: FaceLandmarkerConfig = {},
): Promise<HalloFaceLandmarker> {
  const path = modelPath ?? defaultFaceLandmarkerModel(config.weightsDir);
  const numFaces = config.numFaces ?? 1;
  if (!Number.isInteger(numFaces) || numFaces < 1) {
    throw new ImageError("", `numFaces must be a positive integer, got ${numFaces}`);
  }
  const model = readModel(path);
  let handle: Awaited<ReturnType<typeof createHeadlessFaceLandmarker>>;
  try {
    handle = await createHeadlessFaceLandmarker({
      baseOptions: { modelAssetBuffer: model },
      runningMode: "IMAGE",
      numFaces,
      minFaceDetectionConfidence: config.minFaceDetectionConfidence,
      minFacePresenceConfidence: config.minFacePresenceConfidence,
    }, config.log);
  } catch (e) {
    if (e instanceof ImageError || (e as Error).name === "GlUnavailableError") throw e;
    // MediaPipe appends a long source-location trace to its status message.
    const why = (e as Error).message.split(" === Source Location Trace")[0];
    throw new ImageError(path, `MediaPipe could not load the model: ${why}`);
  }
  let closed = false;

  return {
    modelPath: path,
    detect(rgb, width, height, source = `RGB image ${width}x${height}`) {
      if (closed) throw new ImageError(source, "the FaceLandmarker was closed");
      const image = toRgba(rgb, width, height, source);
      const result = handle.run((task) => task.detect(image as unknown as ImageData));
      const faces = result.faceLandmarks.map((marks): Face => {
        const landmarks = marks.map(({ x, y, z }) => ({ x, y, z }));
        return { landmarks, pixels: landmarks.map(({ x, y }) => [x * width, y * height]) };
      });
      if (faces.length === 0) throw new NoFaceError(source);
      return faces;
    },
    close() {
      closed = true;
      handle.close();
    },
  };
}

/** Area of the pixel bounding box of a face's landmarks. */
export function faceArea(face: Face): number {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of face.pixels) {
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  return (x1 - x0) * (y1 - y0);
}

/** The face with the largest landmark bounding box (the first on ties), as insightface's choice in upstream. */
export function largestFace(faces: readonly Face[]): Face {
  if (faces.length === 0) throw new ImageError("", "largestFace: no faces given");
  return faces.reduce((best, f) => faceArea(f) > faceArea(best) ? f : best);
}
