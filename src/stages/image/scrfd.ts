/**
 * insightface's SCRFD detector (model_zoo/scrfd.py, v0.7.3, as FaceAnalysis runs scrfd_10g_bnkps with
 * det_size 640 and det_thresh 0.5) without the network: letterbox, blob, decoding of the 9 outputs, NMS and
 * the rescale to image pixels. Arithmetic follows numpy's float32 (scores, boxes, keypoints and NMS are
 * float32 arrays upstream; det_scale is a Python float that numpy casts to float32 before dividing).
 *
 * Output layout (insightface, 9 outputs, fmc = 3): outputs[i] = scores of stride [8,16,32][i] (N x 1),
 * outputs[3+i] = box distances (N x 4), outputs[6+i] = keypoint offsets (N x 10), where N = (640/s)^2 * 2:
 * anchor index = (row * cols + col) * 2 + a, anchor centre (col*s, row*s) for both anchors.
 */
import type { F32Tensor } from "../../tensor.ts";
import { imageBlob, type RunModel } from "./arcface.ts";
import { cvResizeLinear } from "./cv_resize.ts";
import { ImageError } from "./errors.ts";
import { type U8Image, u8Image } from "./types.ts";

/** FaceAnalysis.prepare(det_size=(640, 640)). */
export const DET_SIZE = 640;
/** SCRFD's default det_thresh (FaceAnalysis passes 0.5). */
export const DET_THRESH = 0.5;
/** SCRFD's nms_thresh. */
export const NMS_THRESH = 0.4;
/** Feature strides of the 3-level SCRFD models, 2 anchors per location. */
export const FEAT_STRIDES: readonly number[] = [8, 16, 32];
export const NUM_ANCHORS = 2;

const f = Math.fround;

/** One detection in original-image pixels (float32 values, as upstream's arrays hold them). */
export interface DetectedFace {
  /** [x1, y1, x2, y2]. */
  readonly bbox: readonly [number, number, number, number];
  readonly score: number;
  /** 5 keypoints [x, y]: eyes, nose, mouth corners. */
  readonly kps: readonly (readonly [number, number])[];
}

/** The letterboxed detector input and the scale from image to letterbox pixels. */
export interface Letterbox {
  readonly image: U8Image;
  /** new_height / image height, as a double (upstream's Python float). */
  readonly detScale: number;
}

/**
 * SCRFD.detect's resize: keep the aspect ratio, fit into size x size (cv2 INTER_LINEAR), paste at the top-left
 * of a zero canvas. New sizes use Python's int() truncation.
 */
export function letterbox(rgb: U8Image, size: number = DET_SIZE): Letterbox {
  const imRatio = rgb.height / rgb.width;
  let newW: number, newH: number;
  if (imRatio > 1) {
    newH = size;
    newW = Math.trunc(newH / imRatio);
  } else {
    newW = size;
    newH = Math.trunc(newW * imRatio);
  }
  if (newW < 1 || newH < 1) {
    throw new ImageError(
      "",
      `image ${rgb.width}x${rgb.height} is too elongated to letterbox (OpenCV would fail on a 0-pixel resize)`,
    );
  }
  const detScale = newH / rgb.height;
  const resized = cvResizeLinear(rgb, newW, newH);
  const canvas = new Uint8Array(size * size * rgb.channels);
  const rowBytes = newW * rgb.channels;
  for (let y = 0; y < newH; y++) {
    canvas.set(resized.data.subarray(y * rowBytes, (y + 1) * rowBytes), y * size * rgb.channels);
  }
  return { image: u8Image(size, size, rgb.channels, canvas), detScale };
}

/** The detector blob: (px - 127.5) / 128, RGB, (1, 3, 640, 640). */
export function detectorBlob(img: U8Image): F32Tensor {
  return imageBlob(img, 127.5, 128.0);
}

/** A candidate before NMS, in letterbox pixels. */
interface Candidate {
  box: [number, number, number, number];
  score: number;
  kps: [number, number][];
}

/**
 * SCRFD.forward's decoding: for each stride, anchors with score >= threshold, boxes by distance2bbox and
 * keypoints by distance2kps (both after multiplying the raw outputs by the stride). Candidates come out in
 * stride order, then anchor order, as np.vstack stacks them.
 */
export function decodeOutputs(
  outputs: readonly Float32Array[],
  inputSize: number = DET_SIZE,
  threshold: number = DET_THRESH,
): Candidate[] {
  const fmc = FEAT_STRIDES.length;
  if (outputs.length !== 3 * fmc) {
    throw new ImageError(
      "",
      `SCRFD model gave ${outputs.length} outputs, expected ${3 * fmc} (scores, boxes, keypoints per stride)`,
    );
  }
  const out: Candidate[] = [];
  const thr = f(threshold);
  FEAT_STRIDES.forEach((stride, idx) => {
    const cols = Math.floor(inputSize / stride);
    const rows = cols;
    const n = rows * cols * NUM_ANCHORS;
    const scores = outputs[idx], boxes = outputs[idx + fmc], kps = outputs[idx + 2 * fmc];
    if (scores.length !== n || boxes.length !== 4 * n || kps.length !== 10 * n) {
      throw new ImageError(
        "",
        `SCRFD stride ${stride}: outputs have ${scores.length}/${boxes.length}/${kps.length} values, expected ${n}/${
          4 * n
        }/${10 * n}`,
      );
    }
    for (let i = 0; i < n; i++) {
      if (!(scores[i] >= thr)) continue;
      const cell = Math.floor(i / NUM_ANCHORS);
      const cx = (cell % cols) * stride;
      const cy = Math.floor(cell / cols) * stride;
      const d = (k: number) => f(boxes[4 * i + k] * stride);
      const box: [number, number, number, number] = [f(cx - d(0)), f(cy - d(1)), f(cx + d(2)), f(cy + d(3))];
      const pts: [number, number][] = [];
      for (let k = 0; k < 5; k++) {
        pts.push([f(cx + f(kps[10 * i + 2 * k] * stride)), f(cy + f(kps[10 * i + 2 * k + 1] * stride))]);
      }
      out.push({ box, score: scores[i], kps: pts });
    }
  });
  return out;
}

/**
 * numpy's `a.argsort()[::-1]` for small arrays: numpy sorts up to 16 elements by insertion sort (stable), so
 * ties come out in reverse index order after the reversal. Larger arrays use introsort upstream, whose tie
 * order this stable sort may not reproduce (ties between exact float32 scores are rare in practice).
 */
export function argsortDescending(values: ArrayLike<number>): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[a] - values[b] || a - b);
  return idx.reverse();
}

/**
 * SCRFD.nms on [x1,y1,x2,y2,score] rows (float32 math, areas with +1): indices kept, best first. Overlap is
 * suppressed when IoU > float32(thresh).
 */
export function nms(
  dets: readonly { box: readonly number[]; score: number }[],
  thresh: number = NMS_THRESH,
): number[] {
  const x1 = dets.map((d) => d.box[0]), y1 = dets.map((d) => d.box[1]);
  const x2 = dets.map((d) => d.box[2]), y2 = dets.map((d) => d.box[3]);
  const areas = dets.map((_, i) => f(f(f(x2[i] - x1[i]) + 1) * f(f(y2[i] - y1[i]) + 1)));
  let order = argsortDescending(dets.map((d) => d.score));
  const thr = f(thresh);
  const keep: number[] = [];
  while (order.length > 0) {
    const i = order[0];
    keep.push(i);
    const rest: number[] = [];
    for (let k = 1; k < order.length; k++) {
      const j = order[k];
      const w = Math.max(0, f(f(Math.min(x2[i], x2[j]) - Math.max(x1[i], x1[j])) + 1));
      const h = Math.max(0, f(f(Math.min(y2[i], y2[j]) - Math.max(y1[i], y1[j])) + 1));
      const inter = f(w * h);
      const ovr = f(inter / f(f(areas[i] + areas[j]) - inter));
      if (ovr <= thr) rest.push(j);
    }
    order = rest;
  }
  return keep;
}

/**
 * SCRFD.detect after the network: decode, sort by score, divide by det_scale (as float32), NMS. Returns the
 * faces in NMS order (best score first), in original-image pixels.
 */
export function postprocessDetections(
  outputs: readonly Float32Array[],
  detScale: number,
  inputSize: number = DET_SIZE,
  threshold: number = DET_THRESH,
  nmsThresh: number = NMS_THRESH,
): DetectedFace[] {
  const cands = decodeOutputs(outputs, inputSize, threshold);
  const order = argsortDescending(cands.map((c) => c.score));
  const s = f(detScale);
  const pre = order.map((k) => {
    const c = cands[k];
    return {
      box: c.box.map((v) => f(v / s)) as [number, number, number, number],
      score: c.score,
      kps: c.kps.map(([x, y]) => [f(x / s), f(y / s)] as [number, number]),
    };
  });
  return nms(pre, nmsThresh).map((i) => ({ bbox: pre[i].box, score: pre[i].score, kps: pre[i].kps }));
}

/** Runs SCRFD on an RGB image (original resolution) through an injected model; faces in NMS order. */
export async function detectFaces(rgb: U8Image, runModel: RunModel): Promise<DetectedFace[]> {
  if (rgb.channels !== 3) {
    throw new ImageError("", `face detection needs an RGB image, got ${rgb.channels} channels`);
  }
  const lb = letterbox(rgb);
  const outputs = await runModel(detectorBlob(lb.image));
  return postprocessDetections(outputs, lb.detScale);
}

/**
 * Hallo's face choice: sort by bbox area (x2-x1)*(y2-y1) (float32), largest first, stable for ties
 * (Python's sorted(reverse=True)). Undefined when there is no face.
 */
export function largestFace(faces: readonly DetectedFace[]): DetectedFace | undefined {
  const area = (d: DetectedFace) => f(f(d.bbox[2] - d.bbox[0]) * f(d.bbox[3] - d.bbox[1]));
  let best: DetectedFace | undefined;
  for (const d of faces) if (best === undefined || area(d) > area(best)) best = d;
  return best;
}
