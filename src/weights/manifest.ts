/**
 * The weights manifest (weights/manifest.json): every file of Hallo's `pretrained_models/` folder, where it
 * lives on the Hugging Face hub, which stage reads it and in what format.
 */
import manifestJson from "../../weights/manifest.json" with { type: "json" };

/** The three stages that read weights. */
export type WeightsStage = "image" | "audio" | "networks";

/** Every stage, in pipeline order. */
export const STAGES: readonly WeightsStage[] = ["image", "audio", "networks"];

/** How a stage depends on a file: `unused` files are loaded upstream but never affect the output. */
export type FileStatus = "required" | "optional" | "unused";

/** Formats that verify.ts knows how to check. */
export type WeightsFormat = "pth" | "safetensors" | "onnx" | "task" | "json" | "ckpt";

/** One file of the manifest. */
export interface WeightsFile {
  /** Short name for `--only` (upstream's file stem where it is unique). */
  readonly name: string;
  /** Path relative to `pretrained_models/`, identical to the path in the hub repository. */
  readonly path: string;
  readonly stage: WeightsStage;
  readonly status: FileStatus;
  readonly format: WeightsFormat;
  /** What upstream does with the file. */
  readonly readBy: string;
  /** Size in bytes, when known for certain (checked by `weights check --deep`). */
  readonly size?: number;
  /** sha256 of the whole file, lower-case hex, when known for certain (checked by `weights check --deep`). */
  readonly sha256?: string;
}

/** The whole manifest. */
export interface WeightsManifest {
  /** Hub repository id (`owner/name`). */
  readonly repo: string;
  readonly revision: string;
  readonly files: readonly WeightsFile[];
}

/** A manifest lookup that matched nothing. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

const FORMATS: readonly string[] = ["pth", "safetensors", "onnx", "task", "json", "ckpt"];
const STATUSES: readonly string[] = ["required", "optional", "unused"];

/** Checks the shape of a parsed manifest so that a bad edit fails at load with the entry named. */
export function parseManifest(raw: unknown): WeightsManifest {
  const m = raw as Partial<WeightsManifest>;
  if (typeof m?.repo !== "string" || typeof m.revision !== "string" || !Array.isArray(m.files)) {
    throw new ManifestError("weights/manifest.json: expected {repo, revision, files[]}");
  }
  const names = new Set<string>();
  for (const f of m.files as WeightsFile[]) {
    const ok = typeof f.name === "string" && typeof f.path === "string" &&
      (STAGES as readonly string[]).includes(f.stage) && STATUSES.includes(f.status) &&
      FORMATS.includes(f.format) && !f.path.startsWith("/") && !f.path.split("/").includes("..") &&
      (f.size === undefined || (Number.isSafeInteger(f.size) && f.size >= 0)) &&
      (f.sha256 === undefined || (typeof f.sha256 === "string" && /^[0-9a-f]{64}$/.test(f.sha256)));
    if (!ok) throw new ManifestError(`weights/manifest.json: bad entry ${JSON.stringify(f)}`);
    if (names.has(f.name)) throw new ManifestError(`weights/manifest.json: duplicate name '${f.name}'`);
    names.add(f.name);
  }
  return { repo: m.repo, revision: m.revision, files: m.files as WeightsFile[] };
}

/** The manifest shipped in weights/manifest.json. */
export const MANIFEST: WeightsManifest = parseManifest(manifestJson);

/** Files of a stage with a given status (default: the required ones). */
export function stageFiles(
  stage: WeightsStage,
  statuses: readonly FileStatus[] = ["required"],
  manifest: WeightsManifest = MANIFEST,
): WeightsFile[] {
  return manifest.files.filter((f) => f.stage === stage && statuses.includes(f.status));
}

/**
 * Resolves `--only` values (comma-separated names or paths) to manifest entries.
 * Throws a ManifestError listing the known names when one matches nothing.
 */
export function selectFiles(only: string, manifest: WeightsManifest = MANIFEST): WeightsFile[] {
  const picked: WeightsFile[] = [];
  for (const key of only.split(",").map((s) => s.trim()).filter(Boolean)) {
    const f = manifest.files.find((e) => e.name === key || e.path === key);
    if (!f) {
      const known = manifest.files.map((e) => e.name).join(", ");
      throw new ManifestError(`no weights file named '${key}' in weights/manifest.json (known: ${known})`);
    }
    if (!picked.includes(f)) picked.push(f);
  }
  return picked;
}

/** Parses a `--stages` value such as `image,audio`; throws a ManifestError on an unknown stage. */
export function parseStages(value: string): WeightsStage[] {
  const out: WeightsStage[] = [];
  for (const s of value.split(",").map((x) => x.trim()).filter(Boolean)) {
    if (!(STAGES as readonly string[]).includes(s)) {
      throw new ManifestError(`unknown stage '${s}' (stages: ${STAGES.join(", ")})`);
    }
    if (!out.includes(s as WeightsStage)) out.push(s as WeightsStage);
  }
  return out;
}
