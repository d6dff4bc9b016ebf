/**
 * ArcFace alignment: Umeyama on a known similarity, the template onto itself, the OpenCV-style blob, and the
 * injected recognizer's contract.
 */
import assert from "node:assert/strict";
import {
  ARCFACE_TEMPLATE,
  embedFace,
  imageBlob,
  normCrop,
  umeyamaSimilarity,
} from "../src/stages/image/arcface.ts";
import { ImageError } from "../src/stages/image/errors.ts";
import { u8Image } from "../src/stages/image/types.ts";

Deno.test("umeyama recovers a known similarity (scale, rotation, translation) exactly", () => {
  const s = 1.3, th = 0.4, tx = 5, ty = -7;
  const src = [[10, 20], [30, 25], [22, 41], [12, 60], [35, 58]];
  const dst = src.map((
    [x, y],
  ) => [s * (Math.cos(th) * x - Math.sin(th) * y) + tx, s * (Math.sin(th) * x + Math.cos(th) * y) + ty]);
  const m = umeyamaSimilarity(src, dst);
  const want = [s * Math.cos(th), -s * Math.sin(th), tx, s * Math.sin(th), s * Math.cos(th), ty];
  m.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-12, `param ${i}: ${v} vs ${want[i]}`));
  // A reflected target still yields a rotation (no reflection), like skimage.
  const mirrored = umeyamaSimilarity(src, src.map(([x, y]) => [-x, y]));
  assert.ok(mirrored[0] * mirrored[4] - mirrored[1] * mirrored[3] >= 0);
  assert.ok(umeyamaSimilarity([[1, 1], [1, 1]], [[0, 0], [1, 1]]).every(Number.isNaN));
});

Deno.test("normCrop: keypoints on the template give the identity warp (an exact copy)", () => {
  const img = u8Image(112, 112, 3, Uint8Array.from({ length: 112 * 112 * 3 }, (_, i) => (i * 31) % 256));
  const crop = normCrop(img, ARCFACE_TEMPLATE);
  assert.deepEqual([crop.width, crop.height], [112, 112]);
  assert.deepEqual(crop.data, img.data);
  // Keypoints at twice the template in a 224 image: a 2x shrink sampling every other pixel pair.
  const big = u8Image(224, 224, 3, new Uint8Array(224 * 224 * 3).fill(90));
  assert.ok(normCrop(big, ARCFACE_TEMPLATE.map(([x, y]) => [2 * x, 2 * y])).data.every((v) => v === 90));
  assert.throws(() => normCrop(img, ARCFACE_TEMPLATE.slice(0, 4)), ImageError);
});

Deno.test("blob: (px - 127.5) * float32(1/127.5), RGB planes, NCHW", () => {
  const b = imageBlob(u8Image(2, 1, 3, Uint8Array.of(0, 128, 255, 10, 20, 30)), 127.5, 127.5);
  assert.deepEqual(b.shape, [1, 3, 1, 2]);
  const k = Math.fround(1 / 127.5);
  assert.deepEqual(
    [...b.data],
    [-127.5, 10 - 127.5, 0.5, 20 - 127.5, 127.5, 30 - 127.5].map((v) => Math.fround(v * k)),
  );
});

Deno.test("embedFace: runs the injected model on the aligned blob and returns its raw 512-d output", async () => {
  const img = u8Image(112, 112, 3, new Uint8Array(112 * 112 * 3).fill(255));
  const emb = await embedFace(img, ARCFACE_TEMPLATE, (input) => {
    assert.deepEqual(input.shape, [1, 3, 112, 112]);
    assert.equal(input.data[0], Math.fround(127.5 * Math.fround(1 / 127.5)));
    return Promise.resolve([Float32Array.from({ length: 512 }, (_, i) => i - 100)]);
  });
  assert.equal(emb[0], -100);
  assert.equal(emb[511], 411); // not L2-normalised
  await assert.rejects(
    embedFace(img, ARCFACE_TEMPLATE, () => Promise.resolve([new Float32Array(3)])),
    ImageError,
  );
});
