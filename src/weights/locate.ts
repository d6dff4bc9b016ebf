/**
 * Where the `pretrained_models/` folder is: `--weights DIR`, else `$HALLO_WEIGHTS`, else
 * `weights/pretrained_models` of this project.
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MANIFEST, type WeightsManifest, type WeightsStage } from "./manifest.ts";
import { checkFile, type FileCheck } from "./verify.ts";

/** Name of the environment variable that points at a `pretrained_models/` folder. */
export const WEIGHTS_ENV = "HALLO_WEIGHTS";

function envDir(): string | undefined {
  try {
    return Deno.env.get(WEIGHTS_ENV) || undefined;
  } catch {
    // Without --allow-env the variable simply does not count; the default still works.
    return undefined;
  }
}

/** The project's default folder, anchored at the project root rather than the working directory. */
function defaultDir(): string {
  const url = new URL("../../weights/pretrained_models", import.meta.url);
  // Imported from a remote URL there is no project folder on disk: fall back to the working directory.
  return url.protocol === "file:" ? fileURLToPath(url) : resolve("weights/pretrained_models");
}

/**
 * Absolute path of the weights folder: the flag value if given, then `$HALLO_WEIGHTS`, then
 * `weights/pretrained_models` in the project root.
 */
export function resolveWeightsDir(flag?: string): string {
  const chosen = flag || envDir();
  return chosen ? resolve(chosen) : defaultDir();
}

/** A stage cannot run because weights it reads are missing or broken; the message says how to fetch them. */
export class MissingWeightsError extends Error {
  readonly stage: WeightsStage;
  /** The failing files, each missing or invalid. */
  readonly files: readonly FileCheck[];
  constructor(stage: WeightsStage, dir: string, files: readonly FileCheck[]) {
    super(missingMessage(stage, dir, files));
    this.name = "MissingWeightsError";
    this.stage = stage;
    this.files = files;
  }
}

/** The command that fetches `names` into `dir` (`--dir` only when `dir` is not where it would go anyway). */
export function downloadCommand(names: readonly string[], dir: string): string {
  const dirFlag = resolve(dir) === resolveWeightsDir() ? "" : ` --dir ${JSON.stringify(resolve(dir))}`;
  return `deno task hallo weights download --only ${names.join(",")}${dirFlag}`;
}

function missingMessage(stage: WeightsStage, dir: string, files: readonly FileCheck[]): string {
  const what = files.map((c) => `${c.file.path} (${c.present ? `invalid: ${c.detail}` : "missing"})`).join(
    ", ",
  );
  return `stage '${stage}' needs weights not found in ${dir}: ${what}; fetch with: ${
    downloadCommand(files.map((c) => c.file.name), dir)
  }`;
}

/**
 * Fails early, before a stage does any work, when a file it requires is missing or fails its format check.
 * Returns the absolute path of each required file and each optional one that is present and valid, by
 * manifest name.
 */
export async function requireWeights(
  dir: string,
  stage: WeightsStage,
  manifest: WeightsManifest = MANIFEST,
): Promise<Record<string, string>> {
  const paths: Record<string, string> = {};
  const bad: FileCheck[] = [];
  for (const f of manifest.files) {
    if (f.stage !== stage || f.status === "unused") continue;
    const c = await checkFile(dir, f);
    if (c.valid) paths[f.name] = c.path;
    else if (f.status === "required") bad.push(c);
  }
  if (bad.length) throw new MissingWeightsError(stage, dir, bad);
  return paths;
}

/** Where Hallo's trained weights may be, in order of preference: upstream's file, then a safetensors copy. */
export const NET_CHECKPOINTS: readonly string[] = ["hallo/net.pth", "hallo/net.safetensors"];

/** `pretrained_models/` has neither `hallo/net.pth` nor `hallo/net.safetensors`. */
export class MissingNetCheckpointError extends Error {
  override name = "MissingNetCheckpointError";
}

/**
 * The checkpoint of Hallo's trained networks in `weightsDir`: `hallo/net.pth` when present, else
 * `hallo/net.safetensors` (the tiny random set and converted copies). Throws a MissingNetCheckpointError
 * naming both paths and the download command when neither is a file.
 */
export function resolveNetCheckpoint(weightsDir: string): string {
  const candidates = NET_CHECKPOINTS.map((p) => join(resolve(weightsDir), p));
  for (const c of candidates) {
    try {
      if (Deno.statSync(c).isFile) return c;
    } catch { /* try the next one */ }
  }
  throw new MissingNetCheckpointError(
    `no Hallo checkpoint: neither ${candidates.join(" nor ")} exists; fetch with: ${
      downloadCommand(["net"], weightsDir)
    }`,
  );
}
