/**
 * Upstream's use of insightface in `ImageProcessor.preprocess` (hallo/datasets/image_processor.py):
 * detect faces on the original-resolution image, keep the largest by bbox area, embed it with ArcFace; with
 * no face, the whole image is the face box and the embedding is 512 zeros (the conditional face context then
 * equals the unconditional one), and upstream prints a message, kept here as a warning.
 */
import { EMBEDDING_DIM, embedFace, type EmbedOptions, type RunModel } from "./arcface.ts";
import { type DetectedFace, detectFaces, largestFace } from "./scrfd.ts";
import type { U8Image } from "./types.ts";

/** Upstream's message when insightface finds no face. */
export const NO_FACE_WARNING = "No faces detected in the image. Using the entire image as the face region.";

/** What upstream keeps from insightface. */
export interface FaceAnalysis {
  /** [x1, y1, x2, y2] in image pixels; [0, 0, W, H] when no face was found. */
  readonly bbox: readonly [number, number, number, number];
  /** Raw 512-d ArcFace embedding (zeros when no face was found). */
  readonly embedding: Float32Array;
  /** The chosen detection, when there was one. */
  readonly face?: DetectedFace;
  /** Every detection, in NMS order. */
  readonly faces: readonly DetectedFace[];
  /** NO_FACE_WARNING when no face was found; empty otherwise. */
  readonly warnings: string[];
}

/** Detect (SCRFD) + choose the largest face + embed (ArcFace), with upstream's no-face fallback. */
export async function analyzeFace(
  rgb: U8Image,
  runDetector: RunModel,
  runRecognizer: RunModel,
  embedOptions: EmbedOptions = {},
): Promise<FaceAnalysis> {
  const faces = await detectFaces(rgb, runDetector);
  const face = largestFace(faces);
  if (!face) {
    return {
      bbox: [0, 0, rgb.width, rgb.height],
      embedding: new Float32Array(EMBEDDING_DIM),
      faces,
      warnings: [NO_FACE_WARNING],
    };
  }
  const embedding = await embedFace(rgb, face.kps, runRecognizer, embedOptions);
  return { bbox: face.bbox, embedding, face, faces, warnings: [] };
}
