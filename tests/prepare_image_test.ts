/**
 * prepareImage and the prepare-image CLI end to end: the astronaut against upstream's mask references (via
 * MediaPipe and via the reference landmarks), every reference case through prepareImage, photos not seen
 * before (flipped, rescaled, padded, rotated, grey), hostile or odd files, and the CLI's files and errors.
 * insightface runs as stand-in ONNX models (tests/helpers/face_models.ts) or not at all (missing files).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp, { type Sharp } from "sharp";
import { run as cli } from "../src/cli/prepare_image.ts";
import type { ImageConditioning } from "../src/stages/image/prepare.ts";
import { imageBlob, normCrop } from "../src/stages/image/arcface.ts";
import { ImageError } from "../src/stages/image/errors.ts";
import {
  BUNDLED_FACE_LANDMARKER,
  createFaceLandmarker,
  type HalloFaceLandmarker,
  NoFaceError,
} from "../src/stages/image/landmarker.ts";
import {
  type Box,
  MEDIAPIPE_MAX_SIDE,
  type PreparedImage,
  prepareImage,
} from "../src/stages/image/prepare.ts";
import { SILHOUETTE_IDS } from "../src/stages/image/regions.ts";
import { MissingWeightsError } from "../src/weights/locate.ts";
import {
  arcfaceStandIn,
  arcfaceStandInReference,
  plantFace,
  scrfdStandIn,
  writeFaceModels,
} from "./helpers/face_models.ts";
import { f32Tensors } from "./helpers/shared.ts";
import { tempDir } from "./helpers/tensors.ts";
import { maskRef, maxAbsDiff, readGreyPng } from "./helpers/image_fixtures.ts";

const ASTRONAUT = fileURLToPath(new URL("../fixtures/astronaut.png", import.meta.url));
const MASKS = maskRef();
const PNGS = ["face_mask", "lip_mask", "face_mask_blur", "sep_lip", "sep_background", "sep_face"] as const;
const MASK_KEYS = {
  face_mask: "faceMask",
  lip_mask: "lipMask",
  face_mask_blur: "faceMaskBlur",
  sep_lip: "sepLip",
  sep_background: "sepBackground",
  sep_face: "sepFace",
} as const;
/** insightface's 5 keypoints taken from MediaPipe: eye centres (irises), nose tip, mouth corners. */
const KPS_IDS = [468, 473, 1, 61, 291];

type Pt = [number, number];
const readCase = (name: string) => JSON.parse(Deno.readTextFileSync(join(MASKS, name, "case.json")));
const REF: Pt[] = readCase("astro_r1.2").inputs.landmarks_px_xy;

function boxOf(pts: readonly Pt[]): Box {
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}
const centre = (b: readonly number[]): Pt => [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
const maskCentre = (p: PreparedImage): Pt => {
  const e = p.masks.faceBox.expanded;
  return [(e.minX + e.maxX) / 2, (e.minY + e.maxY) / 2];
};

/** Compares the six masks, the face region and the pyramids with a reference case folder. */
async function assertMatchesCase(p: PreparedImage, dir: string): Promise<void> {
  for (const name of PNGS) {
    const ref = await readGreyPng(join(dir, `${name}.png`));
    const d = maxAbsDiff(p.masks[MASK_KEYS[name]].data, ref.data);
    assert.ok(d <= 1, `${dir}/${name}.png differs by ${d}`);
  }
  const region = await readGreyPng(join(dir, "face_region_u8.png"));
  assert.ok(
    maxAbsDiff(p.faceRegion.data.subarray(0, 512 * 512), Float32Array.from(region.data, (v) => v / 255)) <=
      2 / 255,
  );
  const t = f32Tensors(join(dir, "tensors.safetensors"));
  for (const [key, pyr] of [["full", p.fullMask], ["face", p.faceMask], ["lip", p.lipMask]] as const) {
    pyr.forEach((x, l) => {
      const ref = t.get(`${key}_mask_${l}`)!;
      assert.deepEqual(x.shape, ref.shape);
      const d = maxAbsDiff(x.data, ref.data);
      assert.ok(d <= 2 / 255, `${key}_mask_${l} differs by ${d}`);
    });
  }
}

const root = tempDir("hallo-prepare-");
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));
/** Weights folder with stand-in insightface models that "detect" the astronaut where its landmarks are. */
const standInWeights = join(root, "standin");
const noWeights = join(root, "empty");
Deno.mkdirSync(noWeights);
const plantedBox = boxOf(REF);
const plantedKps = KPS_IDS.map((i) => REF[i]);
writeFaceModels(
  standInWeights,
  scrfdStandIn({ planted: [plantFace(plantedBox, plantedKps, 640 / 512)] }),
  arcfaceStandIn(),
);

let landmarker: HalloFaceLandmarker | undefined;
async function sharedLandmarker(): Promise<HalloFaceLandmarker> {
  landmarker ??= await createFaceLandmarker(BUNDLED_FACE_LANDMARKER, { numFaces: 2 });
  return landmarker;
}
/** Runs prepareImage without face models (allowed), reusing one landmarker. */
async function prepareNoModels(path: string, extra: Parameters<typeof prepareImage>[1] = {}) {
  return prepareImage(path, {
    weightsDir: noWeights,
    allowMissingFaceModels: true,
    landmarker: await sharedLandmarker(),
    ...extra,
  });
}

Deno.test("astronaut via MediaPipe, stand-in insightface: box, landmarks, embedding, masks as upstream", async () => {
  const p = await prepareImage(ASTRONAUT, {
    weightsDir: standInWeights,
    landmarker: await sharedLandmarker(),
  });
  const asConditioning: ImageConditioning = p; // the interface the generate stage reads
  assert.deepEqual(asConditioning.pixels.shape, [3, 512, 512]);
  assert.deepEqual(p.faceRegion.shape, [3, 512, 512]);
  assert.deepEqual(p.faceEmb.shape, [1, 512]);
  for (const pyr of [p.fullMask, p.faceMask, p.lipMask]) {
    assert.deepEqual(pyr.map((x) => x.shape), [[1, 4096], [1, 1024], [1, 256], [1, 64]]);
  }
  // A 512x512 image is not resized: pixels are exactly (v/255 - 0.5) / 0.5 of the file's RGB.
  const { data } = await sharp(ASTRONAUT).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  for (const i of [0, 1000, 123_456, 262_143]) {
    assert.equal(p.pixels.data[i], Math.fround(Math.fround(data[i * 3] / 255) - 0.5) / 0.5);
  }

  assert.equal(p.detectedFaces, 1);
  p.bbox.forEach((v, i) => assert.ok(Math.abs(v - plantedBox[i]) < 1e-3, `bbox ${p.bbox} vs ${plantedBox}`));
  assert.equal(p.landmarks.length, 478);
  const [cx, cy] = centre(p.bbox);
  const hw = (p.bbox[2] - p.bbox[0]) * 1.25 / 2, hh = (p.bbox[3] - p.bbox[1]) * 1.25 / 2;
  for (const [x, y] of p.landmarks) assert.ok(Math.abs(x - cx) <= hw && Math.abs(y - cy) <= hh);
  const y = (i: number) => p.landmarks[i][1];
  assert.ok(y(468) < y(1) && y(473) < y(1), "eyes above the nose tip");
  assert.ok(y(1) < y(13) && y(13) < y(14), "nose above the mouth");

  const ref = arcfaceStandInReference(
    imageBlob(normCrop(await rgbOf(ASTRONAUT), p.detection!.kps), 127.5, 127.5),
  );
  p.faceEmb.data.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) <= 1e-4 * Math.max(1, Math.abs(ref[i]))));
  await assertMatchesCase(p, join(MASKS, "astro_r1.2"));

  assert.equal(p.files.detector, join(standInWeights, "face_analysis/models/scrfd_10g_bnkps.onnx"));
  assert.equal(p.files.landmarker, BUNDLED_FACE_LANDMARKER);
  assert.ok(!p.warnings.some((w) => /MISSING|differ|faces/.test(w)), p.warnings.join("; "));
  const t = p.timings;
  assert.ok(t.total >= t.load + t.landmarks + t.detection + t.masks + t.pixels - 1e-3);
  console.log(
    `  astronaut 512x512: ${JSON.stringify(t, (_, v) => typeof v === "number" ? +v.toFixed(3) : v)}`,
  );
});

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

async function rgbOf(path: string) {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: 3, data: new Uint8Array(data) };
}

Deno.test("every reference case through prepareImage with its landmarks (and pixels where given)", async () => {
  const cases = [...Deno.readDirSync(MASKS)].filter((e) => e.isDirectory).map((e) => e.name).sort();
  assert.ok(cases.length >= 10);
  let checkedPixels = 0;
  for (const name of cases) {
    const c = readCase(name);
    const dir = join(MASKS, name);
    const p = await prepareImage(join(dir, c.inputs.image_file), {
      weightsDir: noWeights,
      allowMissingFaceModels: true,
      landmarks: c.inputs.landmarks_px_xy,
      faceExpandRatio: c.inputs.face_expand_ratio,
    });
    assert.deepEqual([p.width, p.height], [c.inputs.image_width, c.inputs.image_height]);
    assert.equal(p.files.landmarker, null);
    assert.ok(p.faceEmb.data.every((v) => v === 0));
    assert.match(p.warnings[0], /^FACE MODELS MISSING .*scrfd_10g_bnkps\.onnx.*all zeros/);
    await assertMatchesCase(p, dir);
    const resized = join(dir, "pixel_resized_u8.png");
    if (exists(resized)) {
      // upstream's Resize((512, 512)) output as uint8: pixels must be exactly (v/255 - 0.5) / 0.5 of it.
      const { data } = await sharp(resized).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const plane = 512 * 512;
      const want = Float32Array.from({ length: 3 * plane }, (_, i) => {
        const v = data[(i % plane) * 3 + Math.floor(i / plane)];
        return Math.fround(Math.fround(v / 255) - 0.5) / 0.5;
      });
      assert.equal(maxAbsDiff(p.pixels.data, want), 0, `${name}: pixels`);
      checkedPixels++;
    }
  }
  assert.ok(checkedPixels >= 2, "cases with upstream's resized pixels");
});

/** A variant of the astronaut and how it maps the original's pixel coordinates. */
interface Variant {
  name: string;
  make: () => Sharp;
  map: (p: Pt) => Pt;
}

const SIN5 = Math.sin(5 * Math.PI / 180), COS5 = Math.cos(5 * Math.PI / 180);
/** sharp's rotate(5) turns clockwise about the centre and grows the canvas to hold the turned image. */
const ROT_SIDE = Math.ceil(512 * (COS5 + SIN5));
const VARIANTS: Variant[] = [
  { name: "flipped", make: () => sharp(ASTRONAUT).flop(), map: ([x, y]) => [512 - x, y] },
  { name: "0.75x", make: () => sharp(ASTRONAUT).resize(384, 384), map: ([x, y]) => [x * 0.75, y * 0.75] },
  { name: "1.5x", make: () => sharp(ASTRONAUT).resize(768, 768), map: ([x, y]) => [x * 1.5, y * 1.5] },
  {
    name: "padded",
    make: () =>
      sharp(ASTRONAUT).extend({ top: 100, bottom: 188, left: 250, right: 38, background: "#404040" }),
    map: ([x, y]) => [x + 250, y + 100],
  },
  {
    name: "rotated 5 degrees",
    make: () => sharp(ASTRONAUT).rotate(5, { background: "#000000" }),
    map: ([x, y]) => {
      const dx = x - 256, dy = y - 256;
      return [ROT_SIDE / 2 + COS5 * dx - SIN5 * dy, ROT_SIDE / 2 + SIN5 * dx + COS5 * dy];
    },
  },
  { name: "grayscale", make: () => sharp(ASTRONAUT).grayscale(), map: (p) => p },
];

Deno.test("photos not seen before: landmarks found and masks on the face", async (t) => {
  const refFace = boxOf(SILHOUETTE_IDS.map((i) => REF[i]));
  for (const v of VARIANTS) {
    await t.step(v.name, async () => {
      const file = join(root, `${v.name.replace(/\W+/g, "_")}.png`);
      await v.make().png().toFile(file);
      const p = await prepareNoModels(file);
      assert.equal(p.landmarks.length, 478);
      const scale = Math.hypot(...v.map([1, 0]).map((c, i) => c - v.map([0, 0])[i]));
      // Landmarks where the original's landmarks map to: mean distance to the nearest mapped one (order-free,
      // since mirroring swaps left and right landmark ids).
      const mapped = REF.map(v.map);
      const mean = p.landmarks.reduce((a, [x, y]) =>
        a + Math.min(...mapped.map(([u, w]) =>
          Math.hypot(x - u, y - w)
        )), 0) /
        478;
      const size = (refFace[2] - refFace[0]) * scale;
      const [mx, my] = maskCentre(p), [wx, wy] = v.map(centre(refFace));
      const off = Math.hypot(mx - wx, my - wy);
      console.log(
        `  ${v.name}: ${p.width}x${p.height}, mean landmark offset ${mean.toFixed(2)} px, mask centre off ${
          off.toFixed(1)
        } px (face ${size.toFixed(0)} px)`,
      );
      assert.ok(mean < 0.05 * size, `landmarks off by ${mean} px`);
      assert.ok(off < 0.08 * size, `face mask centre off by ${off} px`);
      // The face mask covers the mapped nose tip and lips; the lip mask covers the mapped mouth centre.
      const at = (img: { width: number; data: Uint8Array }, [x, y]: Pt) =>
        img.data[Math.round(y) * img.width + Math.round(x)];
      assert.equal(at(p.masks.faceMask, v.map(REF[1])), 255);
      assert.equal(at(p.masks.lipMask, v.map(REF[13])), 255);
    });
  }
});

Deno.test("large images: MediaPipe sees a downscaled copy, landmarks mapped back to full resolution", async () => {
  const file = join(root, "large.png");
  await sharp(ASTRONAUT).resize(768, 576, { fit: "fill" }).png().toFile(file);
  const full = await prepareNoModels(file);
  const small = await prepareNoModels(file, { mediapipeMaxSide: 512 });
  assert.ok(!full.warnings.some((w) => /MediaPipe ran on/.test(w)));
  assert.ok(small.warnings.some((w) => w.includes("image is 768x576: MediaPipe ran on a 512x384 copy")));
  const mean = full.landmarks.reduce(
    (a, [x, y], i) => a + Math.hypot(x - small.landmarks[i][0], y - small.landmarks[i][1]),
    0,
  ) / 478;
  // In full-resolution pixels: a scale error would put them tens of pixels away.
  assert.ok(mean < 2, `mean landmark difference ${mean} px`);
  await assert.rejects(
    prepareNoModels(file, { mediapipeMaxSide: 0 }),
    /mediapipeMaxSide must be a positive integer/,
  );
});

Deno.test("odd files: 16-bit, alpha, CMYK decode as PIL and find the face", async () => {
  const base = await prepareNoModels(ASTRONAUT);
  const same = async (name: string, make: () => Sharp) => {
    const file = join(root, name);
    await make().toFile(file);
    const p = await prepareNoModels(file);
    assert.deepEqual(p.landmarks, base.landmarks, `${name}: same pixels, same landmarks`);
    assert.deepEqual(p.masks.sepFace.data, base.masks.sepFace.data);
    assert.equal(maxAbsDiff(p.pixels.data, base.pixels.data), 0);
  };
  // 16-bit colour keeps the high byte (PIL) = the original 8-bit values; alpha is dropped, colour kept.
  await same("rgb16.png", () => sharp(ASTRONAUT).toColourspace("rgb16").png());
  await same("alpha.png", () => sharp(ASTRONAUT).removeAlpha().ensureAlpha(0.3).png());
  const cmyk = join(root, "cmyk.jpg");
  await sharp(ASTRONAUT).toColourspace("cmyk").jpeg({ quality: 95 }).toFile(cmyk);
  assert.equal((await sharp(cmyk).metadata()).space, "cmyk");
  const p = await prepareNoModels(cmyk);
  const off = Math.hypot(...maskCentre(p).map((c, i) => c - maskCentre(base)[i]));
  assert.ok(off < 8, `CMYK face mask centre off by ${off} px`);
});

Deno.test("hostile or odd files: clear errors naming the file", async (t) => {
  const write = (name: string, bytes: Uint8Array) => {
    const f = join(root, name);
    Deno.writeFileSync(f, bytes);
    return f;
  };
  const rejects = async (file: string, check: (e: Error) => boolean, why: string) => {
    await assert.rejects(prepareNoModels(file), (e: Error) => {
      assert.ok(check(e), `${why}: got ${e}`);
      assert.ok(e.message.startsWith(file), `message names the file: ${e.message}`);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  };
  const png = Deno.readFileSync(ASTRONAUT);
  const jpeg = new Uint8Array(await sharp(ASTRONAUT).jpeg().toBuffer());

  await t.step(
    "not an image",
    () =>
      rejects(
        write("notes.png", new TextEncoder().encode("hello")),
        (e) => e instanceof ImageError && /not an image/.test(e.message),
        "text",
      ),
  );
  await t.step("truncated PNG and JPEG", async () => {
    await rejects(write("cut.png", png.subarray(0, png.length >> 1)), (e) => e instanceof ImageError, "png");
    await rejects(
      write("cut.jpg", jpeg.subarray(0, jpeg.length >> 1)),
      (e) => e instanceof ImageError,
      "jpeg",
    );
  });
  await t.step("1x1: loads and has no face", async () => {
    const f = join(root, "one.png");
    await sharp({ create: { width: 1, height: 1, channels: 3, background: "#808080" } }).png().toFile(f);
    await rejects(f, (e) => e instanceof NoFaceError, "1x1");
  });
  await t.step("a grey image has no face", async () => {
    const f = join(root, "grey.png");
    await sharp({ create: { width: 320, height: 240, channels: 3, background: "#808080" } }).png().toFile(f);
    await rejects(f, (e) => e instanceof NoFaceError && /found no face/.test(e.message), "grey");
  });
  await t.step(
    `10000x10000: MediaPipe sees a ${MEDIAPIPE_MAX_SIDE}-pixel copy; a solid image has no face`,
    async () => {
      const f = join(root, "huge.jpg");
      await sharp({ create: { width: 10000, height: 10000, channels: 3, background: "#6080a0" } }).jpeg()
        .toFile(f);
      const t0 = performance.now();
      await rejects(f, (e) => e instanceof NoFaceError, "10000x10000");
      console.log(`  10000x10000 rejected in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    },
  );
});

Deno.test("two faces: the largest, with warnings from MediaPipe and insightface", async () => {
  // The astronaut's face twice on grey, the right copy at 70% (as in landmarker_test).
  const crop = { left: 110, top: 10, width: 240, height: 260 };
  const face = await sharp(ASTRONAUT).extract(crop).removeAlpha().toBuffer();
  const small = await sharp(face).resize(168, 182).toBuffer();
  const file = join(root, "two.png");
  await sharp({ create: { width: 420, height: 260, channels: 3, background: "#808080" } })
    .composite([{ input: face, left: 0, top: 0 }, { input: small, left: 250, top: 40 }]).png().toFile(file);
  const big: (p: Pt) => Pt = ([x, y]) => [x - crop.left, y - crop.top];
  const little: (p: Pt) => Pt = ([x, y]) => [(x - crop.left) * 0.7 + 250, (y - crop.top) * 0.7 + 40];
  const detScale = Math.trunc(640 * 260 / 420) / 260;
  const weights = writeFaceModels(
    join(root, "two_faces"),
    scrfdStandIn({
      planted: [big, little].map((m, i) =>
        plantFace(
          [...m([plantedBox[0], plantedBox[1]]), ...m([plantedBox[2], plantedBox[3]])],
          plantedKps.map(m),
          detScale,
          0.9 - i * 0.1,
        )
      ),
    }),
    arcfaceStandIn(),
  );
  const p = await prepareImage(file, { weightsDir: weights, landmarker: await sharedLandmarker() });
  assert.equal(p.detectedFaces, 2);
  const want = [...big([plantedBox[0], plantedBox[1]]), ...big([plantedBox[2], plantedBox[3]])];
  p.bbox.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-2, `bbox ${p.bbox} vs ${want}`));
  assert.ok(p.landmarks.every(([x]) => x < 240), "MediaPipe's largest face is the left one");
  assert.ok(
    p.warnings.some((w) => /MediaPipe found 2 faces; using the largest/.test(w)),
    p.warnings.join("; "),
  );
  assert.ok(p.warnings.some((w) => /insightface found 2 faces; using the largest/.test(w)));
  assert.ok(!p.warnings.some((w) => /differ/.test(w)), "both chose the same face");
});

Deno.test("missing face models and bad options: clear errors", async () => {
  await assert.rejects(
    prepareImage(ASTRONAUT, { weightsDir: noWeights, landmarks: REF }),
    (e: Error) =>
      e instanceof MissingWeightsError && /glintr100\.onnx \(missing\)/.test(e.message) &&
      /weights download --only scrfd_10g_bnkps,glintr100/.test(e.message),
  );
  const opts = { weightsDir: noWeights, allowMissingFaceModels: true };
  await assert.rejects(
    prepareImage(ASTRONAUT, { ...opts, faceExpandRatio: 0 }),
    /face expand ratio must be a positive/,
  );
  await assert.rejects(
    prepareImage(ASTRONAUT, { ...opts, numFaces: 0 }),
    /numFaces must be a positive integer/,
  );
  await assert.rejects(
    prepareImage(ASTRONAUT, { ...opts, landmarks: REF.slice(0, 100) }),
    /expected 478 \[x, y\] points, got 100/,
  );
  await assert.rejects(
    prepareImage(ASTRONAUT, { ...opts, landmarks: REF.map((p, i) => i === 7 ? [NaN, 1] : p) }),
    /landmark 7 is not a finite/,
  );
  await assert.rejects(
    prepareImage(ASTRONAUT, { ...opts, landmarks: REF, landmarksImageSize: [640, 480] }),
    /landmarks are for a 640x480 image, this one is 512x512/,
  );
});

/** Runs the CLI in this process, capturing its stderr lines. */
async function runCli(args: string[]): Promise<{ code: number; err: string[] }> {
  const err: string[] = [];
  const [error, log] = [console.error, console.log];
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  console.log = () => {};
  try {
    return { code: await cli(args), err };
  } finally {
    console.error = error;
    console.log = log;
  }
}

Deno.test("CLI: files under upstream's names, --landmarks round trip, one-line errors", async () => {
  const out = join(root, "cli");
  const { code, err } = await runCli(["--image", ASTRONAUT, "--out", out, "--weights", standInWeights]);
  assert.equal(code, 0, err.join("\n"));
  for (const name of PNGS) {
    const ref = await readGreyPng(join(MASKS, "astro_r1.2", `${name}.png`));
    const ours = await readGreyPng(join(out, `${name}.png`));
    assert.deepEqual([ours.width, ours.height], [ref.width, ref.height]);
    assert.ok(maxAbsDiff(ours.data, ref.data) <= 1, `${name}.png`);
  }
  const t = f32Tensors(join(out, "prep.safetensors"));
  const keys = [
    "pixels",
    "face_region",
    "face_emb",
    ...["full", "face", "lip"].flatMap((k) => [0, 1, 2, 3].map((l) => `${k}_mask.${l}`)),
  ];
  assert.deepEqual([...t.keys()].sort(), keys.sort());
  assert.deepEqual(t.get("face_emb")!.shape, [1, 512]);
  assert.deepEqual(t.get("lip_mask.3")!.shape, [1, 64]);
  assert.ok(t.get("face_emb")!.data.some((v) => v !== 0));
  const doc = JSON.parse(Deno.readTextFileSync(join(out, "landmarks.json")));
  assert.equal(doc.landmarks.length, 478);
  assert.equal(doc.files.landmarker, BUNDLED_FACE_LANDMARKER);
  assert.match(doc.files.detector, /scrfd_10g_bnkps\.onnx$/);
  assert.equal(doc.kps.length, 5);

  // --landmarks reads that file back: MediaPipe skipped, identical tensors.
  const again = join(root, "cli2");
  const r2 = await runCli([
    "--image",
    ASTRONAUT,
    "--out",
    again,
    "--weights",
    standInWeights,
    "--landmarks",
    join(out, "landmarks.json"),
  ]);
  assert.equal(r2.code, 0, r2.err.join("\n"));
  assert.deepEqual(
    Deno.readFileSync(join(again, "prep.safetensors")),
    Deno.readFileSync(join(out, "prep.safetensors")),
  );
  assert.equal(JSON.parse(Deno.readTextFileSync(join(again, "landmarks.json"))).files.landmarker, null);

  const bad = async (args: string[], pattern: RegExp, code = 1) => {
    const r = await runCli(args);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.err.join("\n")}`);
    assert.equal(r.err.length, 1, r.err.join("\n"));
    assert.match(r.err[0], pattern);
  };
  const notes = join(root, "notes.txt");
  Deno.writeTextFileSync(notes, "not an image");
  await bad(
    ["--image", notes, "--out", join(root, "x"), "--weights", standInWeights],
    /^hallo prepare-image: .*notes\.txt: not an image/,
  );
  await bad([
    "--image",
    ASTRONAUT,
    "--out",
    join(root, "x"),
    "--weights",
    noWeights,
    "--landmarks",
    join(out, "landmarks.json"),
  ], /needs weights not found.*weights download --only/);
  await bad(["--image", ASTRONAUT, "--out", join(root, "x"), "--landmarks", notes], /notes\.txt: not JSON/);
  await bad(
    ["--image", ASTRONAUT, "--out", join(root, "x"), "--face-expand-ratio", "abc"],
    /--face-expand-ratio must be a positive number/,
  );
  await bad(["--image", ASTRONAUT], /^usage:/, 2);
});

Deno.test("cleanup", () => {
  landmarker?.close();
});
