/**
 * The reference-image stage end to end, as upstream's `ImageProcessor.preprocess` (hallo/datasets/
 * image_processor.py) does it: load with PIL's rules, 478 MediaPipe landmarks on the original-resolution
 * image (masks), insightface on the original-resolution image (face box and embedding), the 512x512 pixel
 * tensor, the face region and the three mask pyramids.
 *
 * Where upstream crashes or is silent, this stage says so:
 * - MediaPipe finds no face: a NoFaceError naming the file (upstream crashes in get_mask).
 * - Several faces: MediaPipe is asked for up to `numFaces` (default 2) and the largest is used, with a
 *   warning (upstream asks for 1 and takes whichever MediaPipe returns); insightface's largest-box choice is
 *   upstream's, a warning says when it had a choice.
 * - The detector/recognizer files are missing: a MissingWeightsError with the download command, or with
 *   `allowMissingFaceModels` upstream's no-face path (whole-image box, zero embedding) and a loud warning.
 * - Images whose longer side exceeds MEDIAPIPE_MAX_SIDE are shown to MediaPipe downscaled (a warning says
 *   so); the landmarks are mapped back to the original pixels.
 */
import sharp from "sharp";
import type { Device } from "../../runtime/device.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import { MissingWeightsError, resolveWeightsDir } from "../../weights/locate.ts";
import { EMBEDDING_DIM } from "./arcface.ts";
import { ImageError } from "./errors.ts";
import { analyzeFace } from "./face_analysis.ts";
import { type FaceModels, loadFaceModels } from "./insightface.ts";
import {
  BUNDLED_FACE_LANDMARKER,
  createFaceLandmarker,
  defaultFaceLandmarkerModel,
  type Face,
  FACE_LANDMARKER_MODEL,
  type HalloFaceLandmarker,
  largestFace,
  NUM_FACE_LANDMARKS,
} from "./landmarker.ts";
import { type LoadedImage, loadImage } from "./load.ts";
import { computeMasks, type MaskSet } from "./masks.ts";
import { IMG_SIZE, pixelTensor } from "./pixels.ts";
import type { DetectedFace } from "./scrfd.ts";

/** Longest image side MediaPipe gets as is; larger images are downscaled for it (time and memory grow fast). */
export const MEDIAPIPE_MAX_SIDE = 4096;

/** MediaPipe faces asked for by default: one more than upstream, so that a second face can be reported. */
export const DEFAULT_NUM_FACES = 2;

/** Upstream's face_expand_ratio default (scripts/inference.py). */
export const DEFAULT_FACE_EXPAND_RATIO = 1.2;

/** A box [x1, y1, x2, y2] in image pixels. */
export type Box = [number, number, number, number];

/** Options of {@link prepareImage}. */
export interface PrepareImageOptions {
  /** `pretrained_models/` folder (default: `--weights`/`$HALLO_WEIGHTS`/project default, see locate.ts). */
  weightsDir?: string;
  /** Upstream's face_expand_ratio (default 1.2). */
  faceExpandRatio?: number;
  /**
   * Size of the generated (square) video, a multiple of 64 (default 512, the only size upstream runs;
   * smaller sizes make quick experiments and tests).
   */
  size?: number;
  /** 478 landmarks in pixels of this image (`[x*w, y*h]`): MediaPipe is skipped. */
  landmarks?: ReadonlyArray<ArrayLike<number>>;
  /** The image size the given landmarks were found on; a mismatch with the image is an error. */
  landmarksImageSize?: readonly [number, number];
  /** Device of the insightface sessions (default cpu). */
  device?: Device;
  /** Intra-op threads of the insightface sessions. */
  threads?: number;
  /** Faces MediaPipe may return; the largest is used (default 2; upstream 1). */
  numFaces?: number;
  /** Use upstream's no-face path (with a loud warning) when the detector/recognizer files are missing. */
  allowMissingFaceModels?: boolean;
  /** Apply EXIF orientation (upstream does not; default false). */
  applyExifOrientation?: boolean;
  /** Longest side MediaPipe gets before the image is downscaled for it (default MEDIAPIPE_MAX_SIDE). */
  mediapipeMaxSide?: number;
  /** Loaded insightface models to reuse (not released here). */
  faceModels?: FaceModels;
  /** A FaceLandmarker to reuse (not closed here); its own numFaces applies. */
  landmarker?: HalloFaceLandmarker;
}

/** The files a run used; null when a step did not use one. */
export interface PreparedFiles {
  detector: string | null;
  recognizer: string | null;
  landmarker: string | null;
}

/** Seconds per step. */
export interface PrepareTimings {
  load: number;
  landmarks: number;
  detection: number;
  masks: number;
  pixels: number;
  total: number;
}

/** The six images upstream writes to its cache, and the boxes they come from. */
export type PreparedMasks = Pick<
  MaskSet,
  "faceBox" | "lipBox" | "faceMask" | "lipMask" | "faceMaskBlur" | "sepLip" | "sepBackground" | "sepFace"
>;

/** The reference image's conditioning, the tensors the networks read of it. */
export interface ImageConditioning {
  /** (3, H, W) in [-1, 1]. */
  pixels: F32Tensor;
  /** (3, H, W) in [0, 1]. */
  faceRegion: F32Tensor;
  /** (1, 512) raw ArcFace embedding. */
  faceEmb: F32Tensor;
  /** Mask pyramids, level 0..3, each (1, h*w) in [0, 1]. */
  fullMask: F32Tensor[];
  faceMask: F32Tensor[];
  lipMask: F32Tensor[];
}

/** Everything the image stage hands on; the tensors are what the networks read (ImageConditioning). */
export interface PreparedImage extends ImageConditioning {
  /** The image file. */
  source: string;
  width: number;
  height: number;
  faceExpandRatio: number;
  /** insightface's face box (the largest detection), or the whole image when there is none. */
  bbox: Box;
  /** The chosen detection (score and 5 keypoints); null when insightface found none or did not run. */
  detection: DetectedFace | null;
  /** Faces insightface found (0 when it did not run). */
  detectedFaces: number;
  /** 478 MediaPipe landmarks in pixels, `[x*w, y*h]`. */
  landmarks: [number, number][];
  /** Bounding box of the 478 landmarks. */
  landmarkBox: Box;
  masks: PreparedMasks;
  warnings: string[];
  files: PreparedFiles;
  timings: PrepareTimings;
}

/** Says loudly that the embedding is not a face's: the video then loses the reference identity. */
export function missingFaceModelsWarning(e: MissingWeightsError): string {
  const files = e.files.map((c) => `${c.path} ${c.present ? `invalid: ${c.detail}` : "missing"}`).join(", ");
  return `FACE MODELS MISSING (${files}): no face detection, the face embedding is all zeros (upstream's ` +
    "no-face path), so the video will not keep the reference identity";
}

function seconds(t0: number): number {
  return (performance.now() - t0) / 1000;
}

function boxOf(points: readonly (readonly number[])[]): Box {
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
  for (const [x, y] of points) {
    x1 = Math.min(x1, x);
    y1 = Math.min(y1, y);
    x2 = Math.max(x2, x);
    y2 = Math.max(y2, y);
  }
  return [x1, y1, x2, y2];
}

/** Checks given landmarks: 478 finite [x, y] pairs; returns a plain copy. */
function checkLandmarks(
  source: string,
  given: ReadonlyArray<ArrayLike<number>>,
  image: LoadedImage,
  size?: readonly [number, number],
): [number, number][] {
  if (size && (size[0] !== image.width || size[1] !== image.height)) {
    throw new ImageError(
      source,
      `the landmarks are for a ${size[0]}x${size[1]} image, this one is ${image.width}x${image.height}`,
    );
  }
  if (!Array.isArray(given) || given.length !== NUM_FACE_LANDMARKS) {
    throw new ImageError(
      source,
      `landmarks: expected ${NUM_FACE_LANDMARKS} [x, y] points, got ${
        Array.isArray(given) ? given.length : typeof given
      }`,
    );
  }
  return given.map((p, i) => {
    const x = Number(p?.[0]), y = Number(p?.[1]);
    if (p?.length === undefined || p.length < 2 || !Number.isFinite(x) || !Number.isFinite(y)) {
      throw new ImageError(source, `landmark ${i} is not a finite [x, y] pair`);
    }
    return [x, y];
  });
}

/** MediaPipe on the image (downscaled past MEDIAPIPE_MAX_SIDE); the largest face, in original pixels. */
async function mediapipeLandmarks(
  landmarker: HalloFaceLandmarker,
  image: LoadedImage,
  maxSide: number,
  warnings: string[],
): Promise<[number, number][]> {
  let { data, width, height } = image;
  const side = Math.max(width, height);
  if (side > maxSide) {
    const s = maxSide / side;
    width = Math.max(1, Math.round(image.width * s));
    height = Math.max(1, Math.round(image.height * s));
    const raw = await sharp(image.data, {
      raw: { width: image.width, height: image.height, channels: 3 },
      limitInputPixels: false,
    }).resize(width, height, { fit: "fill", kernel: "linear" }).raw().toBuffer();
    data = new Uint8Array(raw.buffer, raw.byteOffset, raw.length);
    warnings.push(
      `image is ${image.width}x${image.height}: MediaPipe ran on a ${width}x${height} copy (longest side ` +
        `${maxSide}; upstream uses full resolution), landmarks mapped back to full resolution`,
    );
  }
  const faces: Face[] = landmarker.detect(data, width, height, image.path);
  const face = faces.length > 1 ? largestFace(faces) : faces[0];
  if (faces.length > 1) {
    warnings.push(
      `MediaPipe found ${faces.length} faces; using the largest for the masks (upstream asks for one face)`,
    );
  }
  // Normalised coordinates times the original size: what upstream's compute_face_landmarks computes.
  return face.landmarks.map(({ x, y }) => [x * image.width, y * image.height]);
}

function inside(x: number, y: number, b: Box): boolean {
  return x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3];
}

/**
 * Prepares a reference image as upstream's ImageProcessor.preprocess does (spec section 2) and returns the
 * conditioning tensors with everything that went into them. Throws ImageError (bad file, odd landmarks),
 * NoFaceError (MediaPipe found no face) or MissingWeightsError (detector/recognizer files missing and not
 * allowed to be).
 *
 * @example
 * ```ts ignore
 * const image = await prepareImage("face.jpg", { weightsDir: "weights/pretrained_models", size: 512 });
 * console.log(image.landmarks.length, image.faceEmb.shape, image.lipMask.map((t) => t.shape));
 * ```
 */
export async function prepareImage(path: string, options: PrepareImageOptions = {}): Promise<PreparedImage> {
  const tStart = performance.now();
  const ratio = options.faceExpandRatio ?? DEFAULT_FACE_EXPAND_RATIO;
  if (typeof ratio !== "number" || !Number.isFinite(ratio) || ratio <= 0) {
    throw new ImageError(path, `face expand ratio must be a positive number, got ${ratio}`);
  }
  const size = options.size ?? IMG_SIZE;
  if (!Number.isInteger(size) || size < 64 || size % 64 !== 0) {
    throw new ImageError(path, `size must be a positive multiple of 64, got ${size}`);
  }
  const numFaces = options.numFaces ?? DEFAULT_NUM_FACES;
  if (!Number.isInteger(numFaces) || numFaces < 1) {
    throw new ImageError(path, `numFaces must be a positive integer, got ${numFaces}`);
  }
  const maxSide = options.mediapipeMaxSide ?? MEDIAPIPE_MAX_SIDE;
  if (!Number.isInteger(maxSide) || maxSide < 1) {
    throw new ImageError(path, `mediapipeMaxSide must be a positive integer, got ${maxSide}`);
  }
  const weightsDir = resolveWeightsDir(options.weightsDir);
  const warnings: string[] = [];

  // The models first: a missing file should fail before seconds of image work.
  let models = options.faceModels ?? null;
  const ownModels = models === null;
  if (models === null) {
    try {
      models = await loadFaceModels(weightsDir, { device: options.device, threads: options.threads });
    } catch (e) {
      if (!(e instanceof MissingWeightsError) || !options.allowMissingFaceModels) throw e;
      warnings.push(missingFaceModelsWarning(e));
    }
  }
  let ownLandmarker: HalloFaceLandmarker | null = null;
  try {
    const t0 = performance.now();
    const image = await loadImage(path, { applyExifOrientation: options.applyExifOrientation });
    warnings.push(...image.warnings);
    const load = seconds(t0);

    // MediaPipe before insightface (upstream runs it after): its no-face error ends the run, so fail early.
    const t1 = performance.now();
    let landmarks: [number, number][];
    let landmarkerFile: string | null = null;
    if (options.landmarks !== undefined) {
      landmarks = checkLandmarks(path, options.landmarks, image, options.landmarksImageSize);
    } else {
      let landmarker = options.landmarker;
      if (landmarker === undefined) {
        const model = defaultFaceLandmarkerModel(weightsDir);
        if (model === BUNDLED_FACE_LANDMARKER) {
          warnings.push(
            `upstream's ${FACE_LANDMARKER_MODEL} is not in ${weightsDir}: using the bundled FaceLandmarker ` +
              `${BUNDLED_FACE_LANDMARKER}`,
          );
        }
        landmarker = ownLandmarker = await createFaceLandmarker(model, { numFaces, weightsDir });
      }
      landmarkerFile = landmarker.modelPath;
      landmarks = await mediapipeLandmarks(landmarker, image, maxSide, warnings);
    }
    const landmarkBox = boxOf(landmarks);
    const landmarkSeconds = seconds(t1);

    const t2 = performance.now();
    let bbox: Box = [0, 0, image.width, image.height];
    let embedding: Float32Array = new Float32Array(EMBEDDING_DIM);
    let detection: DetectedFace | null = null;
    let detectedFaces = 0;
    if (models) {
      const fa = await analyzeFace(
        image,
        models.detector.run,
        models.recognizer.run,
        models.recognizer.embed,
      );
      bbox = [...fa.bbox] as Box;
      embedding = fa.embedding;
      detection = fa.face ?? null;
      detectedFaces = fa.faces.length;
      warnings.push(...fa.warnings);
      if (fa.faces.length > 1) {
        warnings.push(`insightface found ${fa.faces.length} faces; using the largest box, as upstream does`);
      }
      const cx = (bbox[0] + bbox[2]) / 2, cy = (bbox[1] + bbox[3]) / 2;
      if (detection && !inside(cx, cy, landmarkBox)) {
        warnings.push(
          "insightface's face and MediaPipe's face differ: the embedding and the masks may describe different faces",
        );
      }
    }
    const detectionSeconds = seconds(t2);

    const t3 = performance.now();
    const m = computeMasks(landmarks, image.width, image.height, ratio, size);
    const maskSeconds = seconds(t3);

    const t4 = performance.now();
    const pixels = pixelTensor(image, size);
    const pixelSeconds = seconds(t4);

    return {
      source: path,
      width: image.width,
      height: image.height,
      faceExpandRatio: ratio,
      pixels,
      faceRegion: m.faceRegion,
      faceEmb: f32([1, EMBEDDING_DIM], embedding),
      fullMask: [...m.fullMasks],
      faceMask: [...m.faceMasks],
      lipMask: [...m.lipMasks],
      bbox,
      detection,
      detectedFaces,
      landmarks,
      landmarkBox,
      masks: {
        faceBox: m.faceBox,
        lipBox: m.lipBox,
        faceMask: m.faceMask,
        lipMask: m.lipMask,
        faceMaskBlur: m.faceMaskBlur,
        sepLip: m.sepLip,
        sepBackground: m.sepBackground,
        sepFace: m.sepFace,
      },
      warnings,
      files: {
        detector: models?.detector.path ?? null,
        recognizer: models?.recognizer.path ?? null,
        landmarker: landmarkerFile,
      },
      timings: {
        load,
        landmarks: landmarkSeconds,
        detection: detectionSeconds,
        masks: maskSeconds,
        pixels: pixelSeconds,
        total: seconds(tStart),
      },
    };
  } finally {
    ownLandmarker?.close();
    if (ownModels) await models?.release();
  }
}
