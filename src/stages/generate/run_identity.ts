/**
 * The identity of a run: everything that changes its frames. Two runs with equal identities produce the same
 * video, so a run directory may only be resumed by a run of the same identity; any difference is named
 * (`identityDifference`) in the words of the command line.
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { MANIFEST } from "../../weights/manifest.ts";
import { NET_CHECKPOINTS } from "../../weights/locate.ts";
import { TINY_JSON } from "../../tiny/configs.ts";
import { InputFileError } from "./errors.ts";

/** Bumped whenever the meaning of a run directory's files changes (2: identity, clip checksums, lock). */
export const RUN_FORMAT = 2;

/** What a run's frames depend on. */
export interface RunIdentity {
  /** RUN_FORMAT of the writer. */
  format: number;
  /** sha256 (hex) of the image file. */
  image: string;
  /** sha256 (hex) of the audio file. */
  audio: string;
  faceExpandRatio: number;
  /** Video size in pixels (square). */
  size: number;
  /** Vocal separation before wav2vec2. */
  separate: boolean;
  /**
   * A separation model given instead of the weights folder's (`separatorIdentity`); "" for the folder's,
   * which `weights` covers.
   */
  separator: string;
  device: string;
  /** Precision of the compiled graphs ("float32" | "float16"). */
  dtype: string;
  steps: number;
  cfg: number;
  poseWeight: number;
  faceWeight: number;
  lipWeight: number;
  seed: number;
  /** The checkpoint identity: `weightsIdentity` of the weights folder. */
  weights: Record<string, string>;
}

/**
 * Everything but the input hashes and the checkpoint identity, as resolved values (no defaults here); a
 * separation model given by path in place of the identity's `separator`.
 */
export type RunIdentityOptions = Omit<RunIdentity, "format" | "image" | "audio" | "weights" | "separator"> & {
  separatorModel?: string;
};

/** sha256 (hex) of a file, streamed. */
export async function fileSha256(path: string): Promise<string> {
  const h = createHash("sha256");
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path);
  } catch (e) {
    throw new InputFileError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  try {
    for await (const chunk of f.readable) h.update(chunk);
  } catch (e) {
    throw new InputFileError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  return h.digest("hex");
}

/**
 * The checkpoint identity of a weights folder: size and modification time of every file whose content
 * reaches the frames (the manifest's required and optional files, Hallo's checkpoint in either format, the
 * tiny set's record), keyed by its path in the folder. Hashing gigabytes on every start would cost minutes;
 * a re-download or an edit changes the size or the time.
 */
export function weightsIdentity(weightsDir: string): Record<string, string> {
  const paths = new Set<string>([
    ...MANIFEST.files.filter((f) => f.status !== "unused").map((f) => f.path),
    ...NET_CHECKPOINTS,
    TINY_JSON,
  ]);
  const out: Record<string, string> = {};
  for (const p of [...paths].sort()) {
    try {
      const st = Deno.statSync(join(resolve(weightsDir), p));
      if (st.isFile) out[p] = `${st.size} bytes, modified ${st.mtime?.toISOString() ?? "?"}`;
    } catch { /* absent: absent files are part of the identity by their absence */ }
  }
  return out;
}

/**
 * The identity of a separation model given by path: its size and modification time, as `weightsIdentity`
 * does for the weights folder ("" when none is given).
 */
export function separatorIdentity(path: string | undefined): string {
  if (!path) return "";
  try {
    const st = Deno.statSync(path);
    return `${st.size} bytes, modified ${st.mtime?.toISOString() ?? "?"}`;
  } catch (e) {
    throw new InputFileError(
      `${path}: cannot read the separation model (${(e as Error).message.split(":")[0]})`,
    );
  }
}

/** The identity of a run from its input hashes, options and weights folder. */
export function makeRunIdentity(
  hashes: { image: string; audio: string },
  o: RunIdentityOptions,
  weightsDir: string,
): RunIdentity {
  return {
    format: RUN_FORMAT,
    image: hashes.image,
    audio: hashes.audio,
    faceExpandRatio: o.faceExpandRatio,
    size: o.size,
    separate: o.separate,
    separator: separatorIdentity(o.separatorModel),
    device: o.device,
    dtype: o.dtype,
    steps: o.steps,
    cfg: o.cfg,
    poseWeight: o.poseWeight,
    faceWeight: o.faceWeight,
    lipWeight: o.lipWeight,
    seed: o.seed,
    weights: weightsIdentity(weightsDir),
  };
}

/** The identity of a run of `image` and `audio` files (hashed here), before anything is prepared. */
export async function runIdentityOfFiles(
  image: string,
  audio: string,
  o: RunIdentityOptions,
  weightsDir: string,
): Promise<RunIdentity> {
  return makeRunIdentity({ image: await fileSha256(image), audio: await fileSha256(audio) }, o, weightsDir);
}

/** How each field is called on the command line. */
const FIELD_NAMES: Record<keyof RunIdentity, string> = {
  format: "run directory format",
  image: "--image",
  audio: "--audio",
  faceExpandRatio: "--face-expand-ratio",
  size: "--size",
  separate: "vocal separation (--no-separate)",
  separator: "separation model",
  device: "--device",
  dtype: "--dtype",
  steps: "--steps",
  cfg: "--cfg",
  poseWeight: "--pose-weight",
  faceWeight: "--face-weight",
  lipWeight: "--lip-weight",
  seed: "--seed",
  weights: "weights",
};

const short = (h: unknown) => (typeof h === "string" ? `${h.slice(0, 12)}…` : String(h));

function show(field: keyof RunIdentity, v: unknown): string {
  if (v === undefined) return "unrecorded";
  if (field === "separate") return v ? "on" : "off";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function weightsDifference(was: unknown, now: Record<string, string>): string {
  const w = (typeof was === "object" && was !== null ? was : {}) as Record<string, string>;
  const keys = [...new Set([...Object.keys(w), ...Object.keys(now)])].sort();
  const k = keys.find((x) => w[x] !== now[x]);
  if (k === undefined) return "different weights";
  return `different weights (${k}: ${w[k] ?? "absent"} there, ${now[k] ?? "absent"} now)`;
}

/**
 * What differs between the identity recorded in a run directory (`was`, as read from run.json) and `now`,
 * in words naming the option, e.g. `a different --image (sha256 ab12… there, cd34… now)`; further
 * differences are listed by name. Undefined when they are equal.
 */
export function identityDifference(was: unknown, now: RunIdentity): string | undefined {
  const rec = (typeof was === "object" && was !== null ? was : {}) as Partial<RunIdentity>;
  if (rec.format !== now.format) {
    return `another version of hallo-lab (run format ${rec.format ?? 1}, this one writes ${now.format})`;
  }
  const fields = (Object.keys(FIELD_NAMES) as (keyof RunIdentity)[]).filter((k) =>
    JSON.stringify(rec[k]) !== JSON.stringify(now[k])
  );
  if (fields.length === 0) return undefined;
  const [f, ...more] = fields;
  let first: string;
  if (f === "weights") first = weightsDifference(rec.weights, now.weights);
  else if (f === "image" || f === "audio") {
    first = `a different ${FIELD_NAMES[f]} (sha256 ${short(rec[f])} there, ${short(now[f])} now)`;
  } else first = `a different ${FIELD_NAMES[f]} (${show(f, rec[f])} there, ${show(f, now[f])} now)`;
  return more.length ? `${first}; also ${more.map((k) => FIELD_NAMES[k]).join(", ")}` : first;
}
