/**
 * Which MDX parameters a model file gets: audio-separator looks them up in UVR's `mdx_model_data.json`, keyed by
 * the MD5 of the last 10,000×1024 bytes of the .onnx file (the whole file when it is smaller).
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { KIM_VOCAL_2_PARAMS, type MdxParams } from "./mdx.ts";

/** The model data file is unreadable or has no usable entry for the model. */
export class MdxModelDataError extends Error {
  override name = "MdxModelDataError";
}

/** Bytes at the end of the model file that the hash covers. */
export const MODEL_HASH_TAIL_BYTES = 10000 * 1024;

/** `Separator.get_model_hash`: MD5 (hex) of the last 10,000×1024 bytes of the file, or of all of it if smaller. */
export async function mdxModelHash(onnxPath: string): Promise<string> {
  const f = await Deno.open(onnxPath).catch((e) => {
    throw new MdxModelDataError(`${onnxPath}: cannot open the model file (${(e as Error).message})`);
  });
  try {
    const size = (await f.stat()).size;
    // Python's seek(-N, 2) fails on a shorter file and upstream then hashes the whole file.
    const start = size >= MODEL_HASH_TAIL_BYTES ? size - MODEL_HASH_TAIL_BYTES : 0;
    await f.seek(start, Deno.SeekMode.Start);
    const h = createHash("md5");
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      const n = await f.read(buf);
      if (n === null) break;
      h.update(buf.subarray(0, n));
    }
    return h.digest("hex");
  } finally {
    f.close();
  }
}

/** An entry of mdx_model_data.json. */
interface ModelDataEntry {
  compensate?: number;
  mdx_dim_f_set?: number;
  mdx_dim_t_set?: number;
  mdx_n_fft_scale_set?: number;
  primary_stem?: string;
  config_yaml?: string;
}

/** Where the parameters came from. */
export interface ResolvedMdxParams {
  params: MdxParams;
  /** "model-data" (found by hash) or "defaults" (no model data file: Kim_Vocal_2's values). */
  source: "model-data" | "defaults";
  hash: string;
  /** The model name upstream uses in output file names: the .onnx file name without extension. */
  modelName: string;
}

/**
 * Parameters for `onnxPath`: from `modelDataPath` (default: `mdx_model_data.json` beside the model) when that file
 * exists, else Kim_Vocal_2's. A model data file without an entry for the model's hash is an error, as upstream.
 * `overrides` (separator options such as segmentSize, overlap) win over both.
 */
export async function resolveMdxParams(
  onnxPath: string,
  opts: { modelDataPath?: string; overrides?: Partial<MdxParams> } = {},
): Promise<ResolvedMdxParams> {
  const hash = await mdxModelHash(onnxPath);
  const modelName = basename(onnxPath).replace(/\.[^.]*$/, "");
  const dataPath = opts.modelDataPath ?? join(dirname(onnxPath), "mdx_model_data.json");
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(dataPath);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new MdxModelDataError(`${dataPath}: cannot read (${(e as Error).message})`);
    }
  }
  if (text === undefined) {
    return { params: { ...KIM_VOCAL_2_PARAMS, ...opts.overrides }, source: "defaults", hash, modelName };
  }
  let table: Record<string, ModelDataEntry>;
  try {
    table = JSON.parse(text);
  } catch (e) {
    throw new MdxModelDataError(`${dataPath}: not valid JSON (${(e as Error).message})`);
  }
  const entry = table?.[hash];
  if (!entry || typeof entry !== "object") {
    throw new MdxModelDataError(`${dataPath}: no parameters for ${basename(onnxPath)} (MD5 ${hash})`);
  }
  if (entry.config_yaml) {
    throw new MdxModelDataError(
      `${
        basename(onnxPath)
      } is an MDXC model (config ${entry.config_yaml}); only MDX-Net models are supported`,
    );
  }
  const num = (k: keyof ModelDataEntry): number => {
    const v = entry[k];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new MdxModelDataError(`${dataPath}: entry ${hash} lacks a numeric '${k}'`);
    }
    return v;
  };
  const params: MdxParams = {
    ...KIM_VOCAL_2_PARAMS,
    compensate: num("compensate"),
    dimF: num("mdx_dim_f_set"),
    dimT: 2 ** num("mdx_dim_t_set"),
    nFft: num("mdx_n_fft_scale_set"),
    primaryStem: entry.primary_stem ?? "Vocals",
    ...opts.overrides,
  };
  return { params, source: "model-data", hash, modelName };
}
