/**
 * The insightface ORT adapters with stand-in models whose right answers are known: a stride-32 "block
 * detector" must find a white square where the letterbox put it (letterbox, blob, ORT, decode, NMS, rescale),
 * an ArcFace stand-in must give the embedding computed in TypeScript on the aligned crop, names and output
 * order come from the session, insightface's MXNet normalisation rule, and clear errors for wrong files.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { imageBlob, normCrop } from "../src/stages/image/arcface.ts";
import { ImageError } from "../src/stages/image/errors.ts";
import { analyzeFace } from "../src/stages/image/face_analysis.ts";
import {
  arcfaceNormalisation,
  DETECTOR_FILE,
  firstNodeNames,
  loadDetector,
  loadFaceModels,
  loadRecognizer,
  RECOGNIZER_FILE,
} from "../src/stages/image/insightface.ts";
import { detectorBlob, letterbox } from "../src/stages/image/scrfd.ts";
import { type U8Image, u8Image } from "../src/stages/image/types.ts";
import { MissingWeightsError } from "../src/weights/locate.ts";
import {
  arcfaceStandIn,
  arcfaceStandInReference,
  BLOCK_DETECTOR,
  BLOCK_KPS,
  scrfdStandIn,
  writeFaceModels,
} from "./helpers/face_models.ts";
import { tempDir } from "./helpers/tensors.ts";

const f = Math.fround;
const KPS = BLOCK_KPS;
const BLOCK = BLOCK_DETECTOR;

/** Channel 0 black except a white square; channels 1 and 2 gradients, so the aligned crop has structure. */
function blockImage(w: number, h: number, x0: number, y0: number, side: number): U8Image {
  const img = u8Image(w, h, 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      img.data[i] = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side ? 255 : 0;
      img.data[i + 1] = (x * 7) % 256;
      img.data[i + 2] = (y * 3 + x) % 256;
    }
  }
  return img;
}

function close(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
}

/** Expected score of the block cell: mean of (blob channel 0 * 0.5 + 0.5) over the cell, from our own blob. */
function cellScore(img: U8Image, row: number, col: number): number {
  const lb = letterbox(img);
  const blob = detectorBlob(lb.image);
  let s = 0;
  for (let y = row * 32; y < row * 32 + 32; y++) {
    for (let x = col * 32; x < col * 32 + 32; x++) s += blob.data[y * 640 + x] * 0.5 + 0.5;
  }
  return s / 1024;
}

Deno.test("stand-ins through ORT: the planted square is found and rescaled, the embedding is the crop's", async (t) => {
  const dir = tempDir("hallo-insightface-");
  try {
    writeFaceModels(dir, scrfdStandIn({ block: BLOCK }), arcfaceStandIn());
    const models = await loadFaceModels(dir, { threads: 1 });
    try {
      assert.equal(models.detector.path, join(dir, DETECTOR_FILE));
      assert.equal(models.recognizer.path, join(dir, RECOGNIZER_FILE));
      assert.equal(models.detector.inputName, "input.1");
      assert.deepEqual(models.recognizer.embed, { inputMean: 127.5, inputStd: 127.5 });

      // Wide image: 800x600 -> 640x480, det_scale 0.8; the square lands on stride-32 cell (row 5, col 10).
      // Tall image: 480x960 -> 320x640, det_scale 2/3; the square lands on cell (row 10, col 2).
      const cases = [
        { w: 800, h: 600, x0: 400, y0: 200, side: 40, row: 5, col: 10, scale: 0.8 },
        { w: 480, h: 960, x0: 96, y0: 480, side: 48, row: 10, col: 2, scale: 640 / 960 },
      ];
      for (const c of cases) {
        await t.step(`${c.w}x${c.h}: box, keypoints, score, NMS, embedding`, async () => {
          const img = blockImage(c.w, c.h, c.x0, c.y0, c.side);
          assert.equal(letterbox(img).detScale, c.scale);
          const fa = await analyzeFace(
            img,
            models.detector.run,
            models.recognizer.run,
            models.recognizer.embed,
          );
          // Anchor 1 of the same cell overlaps anchor 0 with IoU > 0.4 and scores 0.9x: NMS removes it.
          assert.equal(fa.faces.length, 1, `faces: ${JSON.stringify(fa.faces)}`);
          const s = f(c.scale);
          const want = [c.col * 32, c.row * 32, c.col * 32 + 32, c.row * 32 + 32].map((v) => v / s);
          fa.bbox.forEach((v, i) => close(v, want[i], 1e-3, `bbox[${i}]`));
          close(fa.bbox[0], c.x0, 1e-3, "box left = square left");
          fa.face!.kps.forEach(([x, y], k) => {
            close(x, (c.col * 32 + KPS[2 * k] * 32) / s, 1e-3, `kps[${k}].x`);
            close(y, (c.row * 32 + KPS[2 * k + 1] * 32) / s, 1e-3, `kps[${k}].y`);
          });
          close(fa.face!.score, cellScore(img, c.row, c.col), 1e-5, "score");
          assert.ok(fa.face!.score > 0.9);

          const crop = normCrop(img, fa.face!.kps);
          const ref = arcfaceStandInReference(imageBlob(crop, 127.5, 127.5));
          let maxErr = 0, maxRef = 0;
          for (let i = 0; i < 512; i++) {
            maxErr = Math.max(maxErr, Math.abs(fa.embedding[i] - ref[i]));
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
          }
          assert.ok(maxErr <= 1e-5 * Math.max(1, maxRef), `embedding off by ${maxErr} (max |ref| ${maxRef})`);
          // A crop from elsewhere would give another embedding: the test can tell.
          const other = arcfaceStandInReference(
            imageBlob(normCrop(img, fa.face!.kps.map(([x, y]) => [x + 9, y])), 127.5, 127.5),
          );
          assert.ok(other.some((v, i) => Math.abs(v - ref[i]) > 1e-2));
        });
      }

      await t.step("no face: whole-image box, zero embedding, upstream's message", async () => {
        const img = blockImage(300, 200, 0, 0, 0);
        const fa = await analyzeFace(
          img,
          models.detector.run,
          models.recognizer.run,
          models.recognizer.embed,
        );
        assert.deepEqual([...fa.bbox], [0, 0, 300, 200]);
        assert.ok(fa.embedding.every((v) => v === 0));
        assert.match(fa.warnings[0], /No faces detected/);
      });
    } finally {
      await models.release();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("names and output order come from the session; MXNet-style recognizers get raw pixels", async () => {
  const dir = tempDir("hallo-insightface-");
  try {
    // Output names sorting differently from their graph order: the adapter must keep the session's order.
    const names = ["z0", "y1", "x2", "w3", "v4", "u5", "t6", "s7", "r8"];
    const det = join(dir, "det.onnx"), rec = join(dir, "rec.onnx");
    Deno.writeFileSync(det, scrfdStandIn({ block: BLOCK, inputName: "data", outputNames: names }));
    Deno.writeFileSync(rec, arcfaceStandIn({ inputName: "img", outputName: "fc1", mxnetNames: true }));
    const detector = await loadDetector(det, { threads: 1 });
    const recognizer = await loadRecognizer(rec, { threads: 1 });
    try {
      assert.equal(detector.inputName, "data");
      assert.deepEqual(detector.outputNames, names);
      assert.equal(recognizer.inputName, "img");
      assert.deepEqual(recognizer.embed, { inputMean: 0, inputStd: 1 });
      const img = blockImage(800, 600, 400, 200, 40);
      const fa = await analyzeFace(img, detector.run, recognizer.run, recognizer.embed);
      assert.equal(fa.faces.length, 1);
      close(fa.bbox[0], 400, 1e-3, "bbox x1");
      const ref = arcfaceStandInReference(imageBlob(normCrop(img, fa.face!.kps), 0, 1));
      fa.embedding.forEach((v, i) => close(v, ref[i], 1e-3 * Math.max(1, Math.abs(ref[i])), `emb[${i}]`));
    } finally {
      await detector.release();
      await recognizer.release();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("node-name scan and insightface's normalisation rule", () => {
  assert.deepEqual(firstNodeNames(arcfaceStandIn({ mxnetNames: true }), 3), [
    "_minus0/Sub_0",
    "_mul0/Mul_1",
    "features/AveragePool_2",
  ]);
  assert.deepEqual(firstNodeNames(new Uint8Array([0x08, 0x07])), []); // ir_version only, no graph
  assert.throws(() => firstNodeNames(new Uint8Array([0x3a, 0x05, 0x0a])), RangeError);
  assert.deepEqual(arcfaceNormalisation(["Sub_0", "Mul_1"]), { inputMean: 0, inputStd: 1 });
  assert.deepEqual(arcfaceNormalisation(["Sub_0", "Conv_1"]), { inputMean: 127.5, inputStd: 127.5 });
  assert.deepEqual(arcfaceNormalisation(["Conv_0"]), { inputMean: 127.5, inputStd: 127.5 });
});

Deno.test("missing or wrong model files: clear errors naming the file and the fix", async () => {
  const dir = tempDir("hallo-insightface-");
  try {
    await assert.rejects(loadFaceModels(dir), (e: Error) => {
      assert.ok(e instanceof MissingWeightsError);
      assert.match(e.message, /scrfd_10g_bnkps\.onnx \(missing\)/);
      assert.match(e.message, /glintr100\.onnx \(missing\)/);
      assert.match(e.message, /deno task hallo weights download --only scrfd_10g_bnkps,glintr100/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    writeFaceModels(dir, new TextEncoder().encode("<!doctype html>"), arcfaceStandIn());
    await assert.rejects(loadFaceModels(dir), /scrfd_10g_bnkps\.onnx \(invalid: .*HTML page/);

    const wrong = join(dir, "wrong.onnx");
    Deno.writeFileSync(wrong, arcfaceStandIn());
    await assert.rejects(loadDetector(wrong), /wrong\.onnx: not an SCRFD detector with keypoints: 1 outputs/);
    Deno.writeFileSync(wrong, scrfdStandIn());
    await assert.rejects(
      loadRecognizer(wrong),
      /wrong\.onnx: recognizer input has shape \[1,3,height,width\]/,
    );
    Deno.writeFileSync(wrong, scrfdStandIn({ inputDims: [1, 3, 480, 480] }));
    await assert.rejects(loadDetector(wrong), /fixed 480x480 input/);
    Deno.writeFileSync(wrong, new Uint8Array([0x08, 0x07, 0x3a, 0x00]));
    await assert.rejects(loadDetector(wrong), (e: Error) => {
      assert.ok(e instanceof ImageError);
      assert.match(e.message, /wrong\.onnx: onnxruntime cannot load the model/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    await assert.rejects(loadRecognizer(join(dir, "absent.onnx")), /absent\.onnx: model file not found/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
