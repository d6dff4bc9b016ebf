/**
 * Masks against upstream's own outputs (shared/reference/preprocess/masks): derived boxes, the two binary
 * masks, the four 64x64 blurred masks, the face region and the three pyramids, for every reference case.
 */
import assert from "node:assert/strict";
import { computeMasks } from "../src/stages/image/masks.ts";
import { ImageError } from "../src/stages/image/errors.ts";
import { expandRegion, type LandmarksPx, roundHalfEven, sliceBounds } from "../src/stages/image/regions.ts";
import { maskRef, maxAbsDiff, readGreyPng } from "./helpers/image_fixtures.ts";
import { f32Tensors } from "./helpers/shared.ts";

const MASK_REF = maskRef();
const cases = [...Deno.readDirSync(MASK_REF)].filter((e) => e.isDirectory).map((e) => e.name).sort();

for (const name of cases) {
  Deno.test(`masks match upstream: ${name}`, async () => {
    const dir = `${MASK_REF}/${name}`;
    const c = JSON.parse(await Deno.readTextFile(`${dir}/case.json`));
    const { image_width: w, image_height: h, face_expand_ratio: ratio } = c.inputs;
    const m = computeMasks(c.inputs.landmarks_px_xy as LandmarksPx, w, h, ratio);

    const d = c.derived;
    const flat = (
      b: { minX: number; maxX: number; minY: number; maxY: number },
    ) => [b.minX, b.maxX, b.minY, b.maxY];
    assert.deepEqual(flat(m.faceBox.expanded), d.face_box.expand_region_result_minx_maxx_miny_maxy);
    assert.deepEqual(flat(m.lipBox.expanded), d.lip_box.expand_region_result_minx_maxx_miny_maxy);
    assert.deepEqual([m.faceBox.rounded.minX, m.faceBox.rounded.minY], d.face_box.rounded_min_xy);
    assert.deepEqual([m.faceBox.rounded.maxX, m.faceBox.rounded.maxY], d.face_box.rounded_max_xy);
    assert.deepEqual([m.lipBox.rounded.minX, m.lipBox.rounded.minY], d.lip_box.rounded_min_xy);
    assert.deepEqual([m.lipBox.rounded.maxX, m.lipBox.rounded.maxY], d.lip_box.rounded_max_xy);

    const diffs: Record<string, number> = {};
    const pngs: [string, Uint8Array][] = [
      ["face_mask", m.faceMask.data],
      ["lip_mask", m.lipMask.data],
      ["face_mask_blur", m.faceMaskBlur.data],
      ["sep_lip", m.sepLip.data],
      ["sep_background", m.sepBackground.data],
      ["sep_face", m.sepFace.data],
    ];
    for (const [file, ours] of pngs) {
      const ref = await readGreyPng(`${dir}/${file}.png`);
      diffs[file] = maxAbsDiff(ours, ref.data);
    }
    const region = await readGreyPng(`${dir}/face_region_u8.png`);
    const plane = 512 * 512;
    let regionDiff = 0;
    for (let ch = 0; ch < 3; ch++) {
      regionDiff = Math.max(
        regionDiff,
        maxAbsDiff(
          m.faceRegion.data.subarray(ch * plane, (ch + 1) * plane),
          Float32Array.from(region.data, (v) => v / 255),
        ),
      );
    }
    const t = f32Tensors(`${dir}/tensors.safetensors`);
    let pyrDiff = 0;
    for (const [key, pyr] of [["full", m.fullMasks], ["face", m.faceMasks], ["lip", m.lipMasks]] as const) {
      for (let l = 0; l < 4; l++) {
        const ref = t.get(`${key}_mask_${l}`)!;
        assert.deepEqual(pyr[l].shape, ref.shape);
        pyrDiff = Math.max(pyrDiff, maxAbsDiff(pyr[l].data, ref.data));
      }
    }
    // Every stage reproduces OpenCV's and PIL's integer arithmetic, so the match is exact, not within 1.
    for (const [file, v] of Object.entries(diffs)) assert.equal(v, 0, `${file} differs by ${v}`);
    assert.equal(regionDiff, 0, `face_region differs by ${regionDiff}`);
    assert.equal(pyrDiff, 0, `pyramids differ by ${pyrDiff}`);
  });
}

Deno.test("regions: numpy half-even rounding, expand_region shifting, Python slice wrap, clear errors", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999].map(roundHalfEven), [0, 2, 2, -0, -2, 2]);
  // Box 100..300 at ratio 1.5 in a 250-wide image: [50, 350) -> shifted left to [-50, 250).
  assert.deepEqual(expandRegion({ minX: 100, maxX: 300, minY: 10, maxY: 20 }, 250, 100, 1.5), {
    minX: -50,
    maxX: 250,
    minY: 8,
    maxY: 22,
  });
  // mask[-50:250] on 250 columns is columns 200..249 (numpy wraps the negative start).
  assert.deepEqual(sliceBounds(-50, 250, 250), [200, 250]);
  assert.deepEqual(sliceBounds(-500, 3, 250), [0, 3]);
  assert.deepEqual(sliceBounds(5, 2, 250), [5, 5]);
  assert.throws(() => computeMasks([], 64, 64), /no face landmarks/);
  assert.throws(() => computeMasks(Array.from({ length: 478 }, () => [NaN, 1]), 64, 64), ImageError);
  assert.throws(() => computeMasks(Array.from({ length: 10 }, () => [1, 1]), 64, 64), /missing/);
});

Deno.test("masks of a 1x1 image are defined (here an empty box, all-zero masks)", () => {
  const m = computeMasks(Array.from({ length: 478 }, () => [0.5, 0.5]), 1, 1);
  assert.deepEqual([...m.faceMask.data], [0]); // a zero-size box at the only pixel: mask[0:0] is empty
  assert.equal(m.fullMasks[3].data.length, 64);
  assert.ok(m.faceRegion.data.every((v) => v === 0));
});
