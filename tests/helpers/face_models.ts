/**
 * Small stand-ins for insightface's detector and recognizer, built with our graph builder so that the real
 * ORT path (session, input name, output order) runs end to end without the real files:
 *
 * - SCRFD stand-in: input `input.1` (1,3,?,?) and the 9 outputs of scrfd_10g_bnkps in insightface's order
 *   (scores 8/16/32, boxes 8/16/32, keypoints 8/16/32; shapes (N,1), (N,4), (N,10)). Scores are constants with
 *   planted faces, plus (optionally) a "block detector" at stride 32 whose scores come from the input: the
 *   mean of the blob's first channel over each 32x32 cell mapped to [0,1] (anchor 0; anchor 1 gets 0.9x), so
 *   a white square on black is found where the letterbox put it.
 * - ArcFace stand-in: input `input.1` (1,3,112,112) -> 4x4 average pool -> fixed linear 48 -> 512 (output
 *   `683`), whose value on the warped crop `arcfaceStandInReference` computes in TypeScript.
 */
import { join } from "node:path";
import { Graph } from "../../src/onnx/graph.ts";
import { DataType } from "../../src/onnx/proto.ts";
import type { F32Tensor } from "../../src/tensor.ts";
import { DETECTOR_FILE, RECOGNIZER_FILE } from "../../src/stages/image/insightface.ts";
import { prng } from "./tensors.ts";

export const STRIDES = [8, 16, 32] as const;
/** Output names as scrfd_10g_bnkps-style exports number them (any names work: order is what counts). */
export const SCRFD_OUTPUT_NAMES = ["448", "471", "494", "451", "474", "497", "454", "477", "500"];

/** A face planted at one anchor: distances and keypoint offsets in stride units, as the raw outputs hold them. */
export interface PlantedFace {
  stride: 8 | 16 | 32;
  row: number;
  col: number;
  anchor: 0 | 1;
  score: number;
  /** left, top, right, bottom distances from the anchor point. */
  dist: readonly number[];
  /** 5 (dx, dy) keypoint offsets from the anchor point. */
  kps: readonly number[];
}

/** Stride-32 block detector: per-anchor box distances and keypoint offsets (stride units) for every cell. */
export interface BlockDetector {
  dist: readonly [readonly number[], readonly number[]];
  kps: readonly number[];
}

/** Keypoints at eye/nose/mouth-like places of a cell (stride units), for the block detector. */
export const BLOCK_KPS: readonly number[] = [0.3, 0.35, 0.7, 0.35, 0.5, 0.55, 0.35, 0.75, 0.65, 0.75];
/** Anchor 0 spans exactly its 32x32 cell; anchor 1 (score x0.9) a slightly smaller box that NMS removes. */
export const BLOCK_DETECTOR: BlockDetector = { dist: [[0, 0, 1, 1], [0.05, 0.05, 0.9, 0.9]], kps: BLOCK_KPS };

export interface ScrfdStandInOptions {
  planted?: readonly PlantedFace[];
  block?: BlockDetector;
  inputName?: string;
  outputNames?: readonly string[];
  /** Letterbox size the constant outputs are laid out for (the detector always gets 640). */
  size?: number;
  /** Input dims (default (1, 3, height, width), symbolic like scrfd_10g_bnkps). */
  inputDims?: readonly (number | string)[];
}

/** Anchor index of a planted face in its stride's outputs. */
export function anchorIndex(p: PlantedFace, size = 640): number {
  return (p.row * (size / p.stride) + p.col) * 2 + p.anchor;
}

/** ONNX bytes of the SCRFD stand-in. */
export function scrfdStandIn(o: ScrfdStandInOptions = {}): Uint8Array {
  const size = o.size ?? 640;
  const names = o.outputNames ?? SCRFD_OUTPUT_NAMES;
  const g = new Graph("scrfd_stand_in");
  const x = g.input(o.inputName ?? "input.1", o.inputDims ?? [1, 3, "height", "width"]);
  const outs: string[] = [];
  const kinds = [["scores", 1], ["boxes", 4], ["kps", 10]] as const;
  for (const [kind, width] of kinds) {
    for (const s of STRIDES) {
      const n = (size / s) ** 2 * 2;
      const data = new Float32Array(n * width);
      for (const p of o.planted ?? []) {
        if (p.stride !== s) continue;
        const i = anchorIndex(p, size);
        if (kind === "scores") data[i] = p.score;
        else data.set(kind === "boxes" ? p.dist : p.kps, i * width);
      }
      if (o.block && s === 32 && kind !== "scores") {
        for (let i = 0; i < n; i++) {
          const v = kind === "boxes" ? o.block.dist[i % 2] : o.block.kps;
          for (let k = 0; k < width; k++) data[i * width + k] += v[k];
        }
      }
      let v = g.floats(`${kind}_${s}`, data, [n, width]);
      if (o.block && s === 32 && kind === "scores") {
        const pooled = g.op1("AveragePool", [x], {
          path: "block/pool",
          attrs: { kernel_shape: [32, 32], strides: [32, 32] },
        });
        const first = g.op1("Slice", [pooled, g.ints("s0", [0]), g.ints("s1", [1]), g.ints("ax", [1])], {
          path: "block/channel0",
        });
        const half = g.floats("half", [0.5], []);
        const unit = g.op1("Add", [g.op1("Mul", [first, half], { path: "block/scale" }), half], {
          path: "block/shift",
        });
        const col = g.op1("Reshape", [unit, g.ints("col", [-1, 1])], { path: "block/col" });
        const second = g.op1("Mul", [col, g.floats("ratio", [0.9], [])], { path: "block/anchor1" });
        const both = g.op1("Concat", [col, second], { path: "block/anchors", attrs: { axis: 1 } });
        const flat = g.op1("Reshape", [both, g.ints("flat", [-1, 1])], { path: "block/flat" });
        v = g.op1("Add", [flat, v], { path: "block/planted" });
      }
      outs.push(v);
    }
  }
  outs.forEach((v, i) => g.output(v, names[i], DataType.FLOAT));
  return g.encode(Deno.cwd());
}

/** Weights of the ArcFace stand-in: W (48, 512) row-major and b (512), fixed by `seed`. */
export interface ArcFaceStandInWeights {
  w: Float32Array;
  b: Float32Array;
}

export function arcfaceWeights(seed = 7): ArcFaceStandInWeights {
  const rand = prng(seed);
  return {
    w: Float32Array.from({ length: 48 * 512 }, () => rand() * 2 - 1),
    b: Float32Array.from({ length: 512 }, () => rand() - 0.5),
  };
}

export interface ArcFaceStandInOptions {
  weights?: ArcFaceStandInWeights;
  inputName?: string;
  outputName?: string;
  /** Start with MXNet-style `_minus`/`_mul` nodes (no-ops), which make insightface feed raw pixels. */
  mxnetNames?: boolean;
}

/** ONNX bytes of the ArcFace stand-in. */
export function arcfaceStandIn(o: ArcFaceStandInOptions = {}): Uint8Array {
  const { w, b } = o.weights ?? arcfaceWeights();
  const g = new Graph("arcface_stand_in");
  let x = g.input(o.inputName ?? "input.1", [1, 3, 112, 112]);
  if (o.mxnetNames) {
    x = g.op1("Sub", [x, g.floats("zero", [0], [])], { path: "_minus0" });
    x = g.op1("Mul", [x, g.floats("one", [1], [])], { path: "_mul0" });
  }
  const pooled = g.op1("AveragePool", [x], {
    path: "features",
    attrs: { kernel_shape: [28, 28], strides: [28, 28] },
  });
  const flat = g.op1("Reshape", [pooled, g.ints("shape", [1, 48])], { path: "flatten" });
  const mm = g.op1("MatMul", [flat, g.floats("fc.weight", w, [48, 512])], { path: "fc" });
  const y = g.op1("Add", [mm, g.floats("fc.bias", b, [512])], { path: "fc_bias" });
  g.output(y, o.outputName ?? "683", DataType.FLOAT);
  return g.encode(Deno.cwd());
}

/** What the ArcFace stand-in computes on a (1,3,112,112) blob, in float64. */
export function arcfaceStandInReference(
  blob: F32Tensor,
  weights: ArcFaceStandInWeights = arcfaceWeights(),
): Float32Array {
  const feat = new Float64Array(48);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 112; y++) {
      for (let x = 0; x < 112; x++) {
        feat[c * 16 + Math.floor(y / 28) * 4 + Math.floor(x / 28)] += blob.data[c * 112 * 112 + y * 112 + x];
      }
    }
  }
  const out = new Float32Array(512);
  for (let j = 0; j < 512; j++) {
    let s = weights.b[j];
    for (let i = 0; i < 48; i++) s += (feat[i] / (28 * 28)) * weights.w[i * 512 + j];
    out[j] = s;
  }
  return out;
}

/**
 * Converts a face (box and 5 keypoints in image pixels) into the stride-32 anchor that decodes to it after a
 * letterbox with `detScale`: the anchor of the cell holding the box centre.
 */
export function plantFace(
  box: readonly number[],
  kps: readonly (readonly number[])[],
  detScale: number,
  score = 0.95,
  anchor: 0 | 1 = 0,
): PlantedFace {
  const s = 32;
  const b = box.map((v) => v * detScale);
  const col = Math.floor((b[0] + b[2]) / 2 / s), row = Math.floor((b[1] + b[3]) / 2 / s);
  const cx = col * s, cy = row * s;
  return {
    stride: s,
    row,
    col,
    anchor,
    score,
    dist: [(cx - b[0]) / s, (cy - b[1]) / s, (b[2] - cx) / s, (b[3] - cy) / s],
    kps: kps.flatMap(([x, y]) => [(x * detScale - cx) / s, (y * detScale - cy) / s]),
  };
}

/** Writes detector/recognizer bytes where `pretrained_models/` keeps them; returns the weights folder. */
export function writeFaceModels(weightsDir: string, detector?: Uint8Array, recognizer?: Uint8Array): string {
  Deno.mkdirSync(join(weightsDir, "face_analysis", "models"), { recursive: true });
  if (detector) Deno.writeFileSync(join(weightsDir, DETECTOR_FILE), detector);
  if (recognizer) Deno.writeFileSync(join(weightsDir, RECOGNIZER_FILE), recognizer);
  return weightsDir;
}
