/**
 * Image stage benchmark: `deno run -A bench/image.ts [--threads N] [--runs N]`.
 *
 * Per-image time of each step of prepareImage (load, MediaPipe landmarks, insightface detection + embedding,
 * masks, pixel tensor) on the astronaut at several sizes, with the FaceLandmarker and the face models loaded
 * once (their load times are reported separately). insightface runs as STAND-IN models
 * (tests/helpers/face_models.ts: an average-pool "detector" and a pooled-linear "recognizer" with the real
 * input/output layout) because scrfd_10g_bnkps.onnx and glintr100.onnx are not available here: the
 * detection column measures letterbox, blobs, the ORT round trips, decoding, NMS and the ArcFace warp, not
 * the real networks (which cost far more).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { peakRssMiB, table, timed } from "./util.ts";
import { loadFaceModels } from "../src/stages/image/insightface.ts";
import { BUNDLED_FACE_LANDMARKER, createFaceLandmarker } from "../src/stages/image/landmarker.ts";
import { prepareImage } from "../src/stages/image/prepare.ts";
import {
  arcfaceStandIn,
  BLOCK_DETECTOR,
  scrfdStandIn,
  writeFaceModels,
} from "../tests/helpers/face_models.ts";

const ASTRONAUT = fileURLToPath(new URL("../fixtures/astronaut.png", import.meta.url));
const SIZES: readonly [number, number][] = [[512, 512], [1024, 1024], [2048, 1536]];

/** One benchmark table. */
export interface BenchTable {
  name: string;
  headers: string[];
  rows: (string | number)[][];
  notes: string[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Times prepareImage's steps per image size (median of `runs` after one warm-up run). */
export async function benchImage(o: { threads?: number; runs?: number } = {}): Promise<BenchTable> {
  const runs = o.runs ?? 3;
  const tmp = await Deno.makeTempDir({ prefix: "hallo-bench-image-" });
  const notes: string[] = [];
  try {
    const weights = writeFaceModels(
      join(tmp, "weights"),
      scrfdStandIn({ block: BLOCK_DETECTOR }),
      arcfaceStandIn(),
    );
    const [models, modelS] = await timed(() => loadFaceModels(weights, { threads: o.threads }));
    const [landmarker, lmS] = await timed(() =>
      createFaceLandmarker(BUNDLED_FACE_LANDMARKER, { numFaces: 2 })
    );
    notes.push(
      `FaceLandmarker created in ${lmS.toFixed(2)} s; stand-in face models loaded in ${modelS.toFixed(2)} s`,
      "detection = STAND-IN SCRFD + ArcFace (same I/O layout as scrfd_10g_bnkps / glintr100, trivial compute): " +
        "pre/post-processing and ORT overhead only",
    );
    const rows: (string | number)[][] = [];
    try {
      for (const [w, h] of SIZES) {
        const file = join(tmp, `astronaut_${w}x${h}.png`);
        await sharp(ASTRONAUT).removeAlpha().resize(w, h, { fit: "fill" }).png().toFile(file);
        const samples: Record<string, number[]> = {};
        for (let r = 0; r <= runs; r++) {
          const p = await prepareImage(file, { weightsDir: weights, faceModels: models, landmarker });
          if (r === 0) continue; // warm-up: JIT and first-use allocations
          for (const [k, v] of Object.entries(p.timings)) (samples[k] ??= []).push(v * 1000);
        }
        const m = (k: string) => median(samples[k]);
        rows.push([
          `${w}x${h}`,
          m("load"),
          m("landmarks"),
          m("detection"),
          m("masks"),
          m("pixels"),
          m("total"),
        ]);
      }
    } finally {
      landmarker.close();
      await models.release();
    }
    notes.push(
      `peak RSS ${peakRssMiB().toFixed(0)} MiB; median of ${runs} runs after a warm-up, milliseconds`,
    );
    return {
      name: "image",
      headers: [
        "image",
        "load ms",
        "landmarks ms",
        "detection ms (stand-in)",
        "masks ms",
        "pixels ms",
        "total ms",
      ],
      rows,
      notes,
    };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { threads: { type: "string" }, runs: { type: "string" } },
  });
  const res = await benchImage({
    threads: values.threads ? Number(values.threads) : 1,
    runs: values.runs ? Number(values.runs) : 3,
  });
  console.log(`# ${res.name}: prepareImage per image`);
  console.log(table(res.headers, res.rows));
  for (const n of res.notes) console.log(`- ${n}`);
}
