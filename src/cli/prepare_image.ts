/**
 * `deno task hallo prepare-image --image I --out DIR [--weights W] [--face-expand-ratio 1.2]
 * [--landmarks L.json] [--device cpu] [--num-faces 2] [--allow-missing-face-models]`: the reference-image
 * stage on one file. Writes to DIR:
 * - `landmarks.json`: image size, insightface box (and score, 5 keypoints), the 478 landmarks in pixels and
 *   the files used; `--landmarks` reads this format back (and skips MediaPipe);
 * - upstream's six mask PNGs (`face_mask.png`, `lip_mask.png`, `face_mask_blur.png`, `sep_lip.png`,
 *   `sep_background.png`, `sep_face.png`);
 * - `prep.safetensors`: pixels, face_region, face_emb, `full_mask.0..3`, `face_mask.0..3`, `lip_mask.0..3`.
 * Bad input exits 1 with a one-line error; bad usage exits 2.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { oneLine } from "../weights/errors.ts";
import { type TensorToWrite, writeSafetensors } from "../weights/safetensors_write.ts";
import { parseDevice } from "../runtime/device.ts";
import { probeDevice } from "../runtime/probe.ts";
import { joinNegativeValues } from "./options.ts";
import { NUM_FACE_LANDMARKS } from "../stages/image/landmarker.ts";
import { type PreparedImage, prepareImage, type PrepareImageOptions } from "../stages/image/prepare.ts";
import type { U8Image } from "../stages/image/types.ts";

const USAGE =
  "usage: deno task hallo prepare-image --image I --out DIR [--weights W] [--face-expand-ratio 1.2] " +
  "[--landmarks L.json] [--device cpu|cuda|webgpu] [--num-faces 2] [--allow-missing-face-models]";

/** Files written to the output folder, by upstream's names for the masks. */
export const OUTPUT_FILES = {
  landmarks: "landmarks.json",
  tensors: "prep.safetensors",
  masks: {
    faceMask: "face_mask.png",
    lipMask: "lip_mask.png",
    faceMaskBlur: "face_mask_blur.png",
    sepLip: "sep_lip.png",
    sepBackground: "sep_background.png",
    sepFace: "sep_face.png",
  },
} as const;

/** A bad `--landmarks` file or bad option value: one line naming the problem. */
export class PrepareImageInputError extends Error {
  override name = "PrepareImageInputError";
}

/** The `landmarks.json` document. */
export interface LandmarksDocument {
  image: string;
  width: number;
  height: number;
  face_expand_ratio: number;
  /** insightface's box [x1, y1, x2, y2] (the whole image when no face was detected). */
  bbox: number[];
  score: number | null;
  /** insightface's 5 keypoints, when a face was detected. */
  kps: number[][] | null;
  landmark_box: number[];
  files: { detector: string | null; recognizer: string | null; landmarker: string | null };
  warnings: string[];
  /** 478 [x, y] points in pixels. */
  landmarks: number[][];
}

/** landmarks.json for a prepared image. */
export function landmarksDocument(p: PreparedImage): LandmarksDocument {
  return {
    image: p.source,
    width: p.width,
    height: p.height,
    face_expand_ratio: p.faceExpandRatio,
    bbox: [...p.bbox],
    score: p.detection?.score ?? null,
    kps: p.detection ? p.detection.kps.map(([x, y]) => [x, y]) : null,
    landmark_box: [...p.landmarkBox],
    files: { ...p.files },
    warnings: [...p.warnings],
    landmarks: p.landmarks,
  };
}

/** Pretty JSON with one landmark per line. */
function toJson(doc: LandmarksDocument): string {
  const { landmarks, ...head } = doc;
  const fields = Object.entries(head).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{\n${fields.join(",\n")},\n  "landmarks": [\n${
    landmarks.map((p) => `    ${JSON.stringify(p)}`).join(",\n")
  }\n  ]\n}\n`;
}

/** Reads the 478 points (and the image size they belong to) from a landmarks.json this command wrote. */
export async function readLandmarksFile(
  path: string,
): Promise<{ landmarks: number[][]; size?: [number, number] }> {
  const fail = (problem: string): never => {
    throw new PrepareImageInputError(`${path}: ${problem}`);
  };
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    fail(e instanceof Deno.errors.NotFound ? "no such file" : `cannot read: ${(e as Error).message}`);
  }
  let doc: Partial<LandmarksDocument> = {};
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(`not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== "object" || doc === null || !Array.isArray(doc.landmarks)) {
    fail(
      `expected an object with "landmarks": ${NUM_FACE_LANDMARKS} [x, y] points (the format prepare-image writes)`,
    );
  }
  const pts = doc.landmarks as unknown[];
  if (pts.length !== NUM_FACE_LANDMARKS) fail(`expected ${NUM_FACE_LANDMARKS} landmarks, got ${pts.length}`);
  pts.forEach((p, i) => {
    if (
      !Array.isArray(p) || p.length < 2 || !p.slice(0, 2).every((v) => typeof v === "number" && isFinite(v))
    ) {
      fail(`landmark ${i} is not a finite [x, y] pair`);
    }
  });
  const w = doc.width, h = doc.height;
  const size = Number.isInteger(w) && Number.isInteger(h) ? [w, h] as [number, number] : undefined;
  return { landmarks: pts as number[][], size };
}

async function writePng(path: string, img: U8Image): Promise<void> {
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 } })
    .png().toFile(path);
}

/** The tensors of prep.safetensors, in a fixed order. */
export function preparedTensors(p: PreparedImage): TensorToWrite[] {
  const t = (name: string, x: { shape: readonly number[]; data: Float32Array }): TensorToWrite => ({
    name,
    dtype: "F32",
    shape: x.shape,
    data: x.data,
  });
  return [
    t("pixels", p.pixels),
    t("face_region", p.faceRegion),
    t("face_emb", p.faceEmb),
    ...p.fullMask.map((x, i) => t(`full_mask.${i}`, x)),
    ...p.faceMask.map((x, i) => t(`face_mask.${i}`, x)),
    ...p.lipMask.map((x, i) => t(`lip_mask.${i}`, x)),
  ];
}

/** Writes landmarks.json, the six mask PNGs and prep.safetensors into `dir` (created when missing). */
export async function writePreparedImage(p: PreparedImage, dir: string): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const written: string[] = [];
  const landmarks = join(dir, OUTPUT_FILES.landmarks);
  await Deno.writeTextFile(landmarks, toJson(landmarksDocument(p)));
  written.push(landmarks);
  for (const [key, file] of Object.entries(OUTPUT_FILES.masks)) {
    const path = join(dir, file);
    await writePng(path, p.masks[key as keyof typeof OUTPUT_FILES.masks]);
    written.push(path);
  }
  const tensors = join(dir, OUTPUT_FILES.tensors);
  writeSafetensors(tensors, preparedTensors(p), {
    source: p.source,
    face_expand_ratio: String(p.faceExpandRatio),
  });
  written.push(tensors);
  return written;
}

function positiveNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    throw new PrepareImageInputError(`${flag} must be a positive number, got '${v}'`);
  }
  return n;
}

/** CLI entry: returns the exit code (0 ok, 1 bad input, 2 usage). */
export async function run(args: string[]): Promise<number> {
  let values;
  try {
    const options = {
      image: { type: "string" },
      out: { type: "string" },
      weights: { type: "string" },
      "face-expand-ratio": { type: "string" },
      landmarks: { type: "string" },
      device: { type: "string" },
      "num-faces": { type: "string" },
      "allow-missing-face-models": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    } as const;
    values = parseArgs({ args: joinNegativeValues(args, options), options }).values;
  } catch (e) {
    console.error(`hallo prepare-image: ${oneLine((e as Error).message)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.image || !values.out) {
    console.error(USAGE);
    return 2;
  }
  try {
    const opts: PrepareImageOptions = {
      weightsDir: values.weights,
      faceExpandRatio: positiveNumber("--face-expand-ratio", values["face-expand-ratio"]),
      numFaces: positiveNumber("--num-faces", values["num-faces"]),
      allowMissingFaceModels: values["allow-missing-face-models"],
    };
    if (values.device) opts.device = parseDevice(values.device);
    // The face models run on it: an unusable device fails now, not after the image was read.
    await probeDevice(opts.device ?? "cpu");
    if (values.landmarks) {
      const given = await readLandmarksFile(values.landmarks);
      opts.landmarks = given.landmarks;
      opts.landmarksImageSize = given.size;
    }
    const p = await prepareImage(values.image, opts);
    for (const w of p.warnings) console.error(`warning: ${oneLine(w, 1000)}`);
    const files = await writePreparedImage(p, values.out);
    const t = p.timings;
    console.log(
      `${p.source}: ${p.width}x${p.height}, face box [${p.bbox.map((v) => v.toFixed(1)).join(", ")}], ` +
        `${p.landmarks.length} landmarks; landmarks ${t.landmarks.toFixed(2)} s, detection ${
          t.detection.toFixed(2)
        } s, masks ${t.masks.toFixed(2)} s, total ${t.total.toFixed(2)} s`,
    );
    console.log(`wrote ${files.length} files to ${values.out}`);
    return 0;
  } catch (e) {
    // Every failure is one line: bad files are expected input, and nothing may dump internals.
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`hallo prepare-image: ${oneLine(msg, 1000)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
