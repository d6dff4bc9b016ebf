/**
 * SCRFD post-processing and Hallo's face choice, with synthetic detector outputs whose right answer is known:
 * a planted anchor, NMS overlaps on either side of the threshold, the letterbox scale, and the no-face path.
 */
import assert from "node:assert/strict";
import type { F32Tensor } from "../src/tensor.ts";
import { analyzeFace, NO_FACE_WARNING } from "../src/stages/image/face_analysis.ts";
import {
  argsortDescending,
  decodeOutputs,
  type DetectedFace,
  detectFaces,
  largestFace,
  letterbox,
  nms,
} from "../src/stages/image/scrfd.ts";
import { u8Image } from "../src/stages/image/types.ts";

/** Empty SCRFD outputs (all scores 0) for a 640 input: 3 score, 3 box, 3 keypoint arrays. */
function emptyOutputs(): Float32Array[] {
  const n = [8, 16, 32].map((s) => (640 / s) ** 2 * 2);
  return [
    ...n.map((k) => new Float32Array(k)),
    ...n.map((k) => new Float32Array(4 * k)),
    ...n.map((k) => new Float32Array(10 * k)),
  ];
}

/** Plants a detection at stride index `si`, grid (row, col), anchor a: raw distances are in stride units. */
function plant(
  outs: Float32Array[],
  si: number,
  row: number,
  col: number,
  a: number,
  score: number,
  dist: number[],
  kps: number[],
) {
  const cols = 640 / [8, 16, 32][si];
  const i = (row * cols + col) * 2 + a;
  outs[si][i] = score;
  outs[3 + si].set(dist, 4 * i);
  outs[6 + si].set(kps, 10 * i);
}

Deno.test("decode: a planted anchor gives distance2bbox/distance2kps times the stride at its centre", () => {
  const outs = emptyOutputs();
  plant(outs, 1, 10, 12, 1, 0.9, [2, 3, 4, 5], [1, 1, 2, 1, 1.5, 2, 1, 3, 2, 3]);
  plant(outs, 0, 0, 0, 0, 0.49, [1, 1, 1, 1], new Array(10).fill(0)); // below det_thresh 0.5: dropped
  plant(outs, 2, 19, 19, 0, 0.5, [1, 1, 1, 1], new Array(10).fill(0)); // exactly 0.5: kept (>=)
  const c = decodeOutputs(outs);
  assert.equal(c.length, 2);
  // Stride 16, centre (12*16, 10*16) = (192, 160).
  assert.deepEqual(c[0].box, [192 - 32, 160 - 48, 192 + 64, 160 + 80]);
  assert.equal(c[0].score, Math.fround(0.9));
  assert.deepEqual(c[0].kps, [[208, 176], [224, 176], [216, 192], [208, 208], [224, 208]]);
  assert.deepEqual(c[1].box, [19 * 32 - 32, 19 * 32 - 32, 19 * 32 + 32, 19 * 32 + 32]);
  assert.throws(() => decodeOutputs(outs.slice(0, 6)), /9/);
});

Deno.test("NMS: +1 areas, IoU threshold 0.4 (float32), best score first", () => {
  const d = (box: number[], score: number) => ({ box, score });
  // [0,0,9,9] vs [5,0,14,9]: inter 5*10, union 150 -> 0.33 kept; vs [3,0,12,9]: 70/130 = 0.54 suppressed.
  assert.deepEqual(nms([d([0, 0, 9, 9], 0.9), d([5, 0, 14, 9], 0.8)]), [0, 1]);
  assert.deepEqual(nms([d([0, 0, 9, 9], 0.8), d([3, 0, 12, 9], 0.9)]), [1]);
  // IoU exactly 0.4 (7x10 boxes, inter 4x10, union 100) is float32(0.4) and kept: suppression needs ovr > float32(0.4).
  assert.deepEqual(nms([d([0, 0, 6, 9], 0.9), d([3, 0, 9, 9], 0.7)]), [0, 1]);
  assert.deepEqual(nms([]), []);
  // Ties: numpy's stable small-array argsort reversed puts the later index first.
  assert.deepEqual(argsortDescending([0.5, 0.7, 0.5]), [1, 2, 0]);
});

Deno.test("letterbox: aspect kept, top-left paste, det_scale = new_h / h", () => {
  const img = u8Image(1280, 960, 3, new Uint8Array(1280 * 960 * 3).fill(200));
  const lb = letterbox(img);
  assert.equal(lb.detScale, 0.5);
  assert.equal(lb.image.data[(479 * 640 + 639) * 3], 200);
  assert.equal(lb.image.data[(480 * 640) * 3], 0);
  const tall = letterbox(u8Image(300, 1000, 3));
  assert.equal(tall.detScale, 0.64); // new_h 640, new_w int(640 / (1000/300)) = 192
});

Deno.test("detectFaces: blob in, faces out in image pixels (divided by det_scale), largest chosen", async () => {
  const img = u8Image(1280, 1280, 3, new Uint8Array(1280 * 1280 * 3));
  let seen: F32Tensor | undefined;
  const faces = await detectFaces(img, (input) => {
    seen = input;
    const outs = emptyOutputs();
    plant(outs, 1, 10, 12, 1, 0.9, [2, 3, 4, 5], [1, 1, 2, 1, 1.5, 2, 1, 3, 2, 3]); // 96x128 box
    plant(outs, 2, 5, 5, 0, 0.7, [3, 3, 3, 3], new Array(10).fill(0)); // 192x192 box far away
    return Promise.resolve(outs);
  });
  assert.deepEqual(seen!.shape, [1, 3, 640, 640]);
  assert.equal(seen!.data[0], -127.5 / 128); // black pixel
  assert.equal(faces.length, 2);
  assert.deepEqual(faces[0].bbox, [320, 224, 512, 480]); // (160,112,256,240) / 0.5
  assert.equal(largestFace(faces), faces[1]);
});

Deno.test("largestFace: float32 area, first of equal areas; undefined for none", () => {
  const face = (bbox: [number, number, number, number]): DetectedFace => ({ bbox, score: 0.9, kps: [] });
  const a = face([0, 0, 10, 10]), b = face([5, 5, 15, 15]), c = face([0, 0, 5, 30]);
  assert.equal(largestFace([a, b, c]), c);
  assert.equal(largestFace([a, b]), a);
  assert.equal(largestFace([]), undefined);
});

Deno.test("analyzeFace: no face -> whole-image box, zero embedding, upstream's warning; recognizer not run", async () => {
  const img = u8Image(64, 48, 3);
  const r = await analyzeFace(img, () => Promise.resolve(emptyOutputs()), () => {
    throw new Error("recognizer must not run without a face");
  });
  assert.deepEqual(r.bbox, [0, 0, 64, 48]);
  assert.equal(r.embedding.length, 512);
  assert.ok(r.embedding.every((v) => v === 0));
  assert.deepEqual(r.warnings, [NO_FACE_WARNING]);
});
