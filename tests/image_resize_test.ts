/**
 * The resamplers and filters behind the image stage: PIL bilinear against upstream's own resized image, and
 * OpenCV's resize / GaussianBlur / normalize / warpAffine on cases whose integer results are worked out by hand.
 */
import assert from "node:assert/strict";
import { cvResizeLinear } from "../src/stages/image/cv_resize.ts";
import { fma, gaussianBlur8u, gaussianKernelFixed, reflect101 } from "../src/stages/image/cv_gaussian.ts";
import { normalizeMinMax8u } from "../src/stages/image/cv_normalize.ts";
import { invertAffine, warpAffineLinear } from "../src/stages/image/cv_warp_affine.ts";
import { loadImage } from "../src/stages/image/load.ts";
import { pilResizeBilinear } from "../src/stages/image/pil_resize.ts";
import { pixelTensor } from "../src/stages/image/pixels.ts";
import { u8Image } from "../src/stages/image/types.ts";
import { maskRef, maxAbsDiff } from "./helpers/image_fixtures.ts";
import sharp from "sharp";

async function rgbPng(path: string): Promise<Uint8Array> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return new Uint8Array(data);
}

for (const name of ["nonsquare_640x480", "large_1024"]) {
  Deno.test(`PIL bilinear resize and pixel tensor match upstream: ${name}`, async () => {
    const img = await loadImage(`${maskRef()}/${name}/input.png`);
    const ref = await rgbPng(`${maskRef()}/${name}/pixel_resized_u8.png`);
    const ours = pilResizeBilinear(img, 512, 512);
    assert.equal(maxAbsDiff(ours.data, ref), 0);
    const t = pixelTensor(img);
    assert.deepEqual(t.shape, [3, 512, 512]);
    // Channel 1 of pixel (row 100, col 200): ToTensor then Normalize in float32.
    const v = ref[(100 * 512 + 200) * 3 + 1];
    assert.equal(t.data[512 * 512 + 100 * 512 + 200], Math.fround(Math.fround(v / 255) - 0.5) * 2);
  });
}

Deno.test("pixel tensor of a 512x512 image is the image itself, normalised (astronaut)", async () => {
  const img = await loadImage(`${maskRef()}/astronaut.png`);
  const t = pixelTensor(img);
  const plane = 512 * 512;
  for (const i of [0, 1234, 262143]) {
    for (let c = 0; c < 3; c++) {
      assert.equal(t.data[c * plane + i], Math.fround(Math.fround(img.data[i * 3 + c] / 255) - 0.5) * 2);
    }
  }
  assert.ok(t.data.every((x) => x >= -1 && x <= 1));
});

Deno.test("PIL bilinear: antialiased 2:1 shrink rounds half up, 1x1 upscales to a constant", () => {
  // Support 2 at scale 2: both pixels weigh 0.5 -> (0 + 255) / 2 = 127.5 -> 128 with PIL's +half rounding.
  assert.deepEqual([...pilResizeBilinear(u8Image(2, 1, 1, Uint8Array.of(0, 255)), 1, 1).data], [128]);
  const up = pilResizeBilinear(u8Image(1, 1, 3, Uint8Array.of(7, 8, 9)), 5, 3);
  assert.deepEqual([...up.data], Array.from({ length: 45 }, (_, i) => 7 + (i % 3)));
  // A linear ramp upscaled 2x stays between its ends and keeps PIL's centre weights (0.75/0.25).
  const r = pilResizeBilinear(u8Image(2, 1, 1, Uint8Array.of(0, 200)), 4, 1);
  assert.deepEqual([...r.data], [0, 50, 150, 200]);
});

Deno.test("cv2.resize INTER_LINEAR: clamped edges, 11-bit weights, exact 2x shrink is the rounded 2x2 mean", () => {
  // 2 -> 4 columns: positions -0.25 (clamped), 0.25, 0.75, 1.25 (clamped); 63.75 -> 64, 191.25 -> 191.
  assert.deepEqual([...cvResizeLinear(u8Image(2, 1, 1, Uint8Array.of(0, 255)), 4, 1).data], [
    0,
    64,
    191,
    255,
  ]);
  // 2x2 -> 1x1 is the rounded mean (0+1+2+4+2)>>2 = 2 (OpenCV switches to INTER_AREA; for uint8 both agree).
  assert.deepEqual([...cvResizeLinear(u8Image(2, 2, 1, Uint8Array.of(0, 1, 2, 4)), 1, 1).data], [2]);
  assert.deepEqual([...cvResizeLinear(u8Image(4, 2, 1, Uint8Array.of(0, 0, 0, 3, 0, 0, 0, 3)), 2, 1).data], [
    0,
    2,
  ]);
  // 8:1 shrink samples between source pixels 3 and 4 of each block of 8.
  const row = Uint8Array.from({ length: 16 }, (_, i) => i * 10);
  assert.deepEqual([...cvResizeLinear(u8Image(16, 1, 1, row), 2, 1).data], [35, 115]);
  // Three channels are resized independently.
  const rgb = cvResizeLinear(u8Image(2, 1, 3, Uint8Array.of(0, 10, 255, 255, 10, 0)), 4, 1);
  assert.deepEqual([...rgb.data], [0, 10, 255, 64, 10, 191, 191, 10, 64, 255, 10, 0]);
});

Deno.test("cv2.GaussianBlur 8-bit: fused sigma, fixed-point kernel summing to 256, REFLECT_101 borders", () => {
  assert.equal(fma(51, 0.15, 0.35), 8); // the unfused 51*0.15+0.35 is 7.999999999999999
  for (const k of [31, 51]) {
    const taps = gaussianKernelFixed(k, 0);
    assert.equal(taps.reduce((a, b) => a + b, 0), 256);
    assert.deepEqual([...taps], [...taps].reverse());
  }
  assert.deepEqual([-2, -1, 0, 4, 5, 6].map((p) => reflect101(p, 5)), [2, 1, 0, 4, 3, 2]);
  // Constant images stay constant (the kernel sums to exactly 256 in both passes).
  const c = gaussianBlur8u(u8Image(64, 64, 1, new Uint8Array(64 * 64).fill(173)), 51);
  assert.ok(c.data.every((v) => v === 173));
  // An impulse gives the outer product of the taps, rounded once: (kx*ky*255 + 2^15) >> 16.
  const img = u8Image(9, 9, 1);
  img.data[4 * 9 + 4] = 255;
  const k5 = gaussianKernelFixed(5, 0); // [16, 64, 96, 64, 16]
  assert.deepEqual([...k5], [16, 64, 96, 64, 16]);
  const out = gaussianBlur8u(img, 5);
  for (let y = 2; y <= 6; y++) {
    for (let x = 2; x <= 6; x++) {
      assert.equal(out.data[y * 9 + x], Math.floor((k5[x - 2] * k5[y - 2] * 255 + 32768) / 65536));
    }
  }
});

Deno.test("cv2.normalize MINMAX: half-even rounding of the fused scale, constant -> zeros", () => {
  // scale 12.75, shift -127.5: 20 -> 127.5 -> 128 (even), 10 -> 0, 30 -> 255.
  assert.deepEqual([...normalizeMinMax8u(u8Image(3, 1, 1, Uint8Array.of(10, 20, 30))).data], [0, 128, 255]);
  assert.deepEqual([...normalizeMinMax8u(u8Image(3, 1, 1, Uint8Array.of(9, 9, 9))).data], [0, 0, 0]);
  assert.deepEqual([...normalizeMinMax8u(u8Image(2, 1, 1, Uint8Array.of(0, 255))).data], [0, 255]);
});

Deno.test("cv2.warpAffine bilinear: 1/32-pixel grid, 15-bit weights, zero border", () => {
  assert.deepEqual(invertAffine([2, 0, 4, 0, 2, 6]), [0.5, -0, -2, -0, 0.5, -3]);
  const row = u8Image(4, 1, 1, Uint8Array.of(10, 20, 30, 40));
  // Identity: an exact copy; the last column's right neighbour is outside but has weight 0.
  assert.deepEqual([...warpAffineLinear(row, [1, 0, 0, 0, 1, 0], 4, 1).data], [10, 20, 30, 40]);
  // Shift right by half a pixel: means of neighbours, the first one against the zero border ((10+1)>>1 = 5).
  assert.deepEqual([...warpAffineLinear(row, [1, 0, 0.5, 0, 1, 0], 4, 1).data], [5, 15, 25, 35]);
  // Past the image: zeros.
  assert.deepEqual([...warpAffineLinear(row, [1, 0, 10, 0, 1, 0], 4, 1).data], [0, 0, 0, 0]);
});
