/**
 * A stand-in for Kim_Vocal_2.onnx built with our graph builder: one Identity node from `input` to `output`
 * with the real model's (1, 4, 3072, 256) shape, so separation through the ONNX path (chunking, STFT, the
 * session, iSTFT, the vocals files) runs for real and returns its input: the "vocals" are the mix. The tiny
 * random set has no separator, so the demo separates with this one; the separator tests and the audio bench
 * use it too.
 */
import { dirname } from "node:path";
import { Graph } from "../onnx/graph.ts";

/** Writes the identity model to `path` (folders created) and returns `path`. */
export function writeIdentityMdxModel(
  path: string,
  opts: { dims?: readonly (number | string)[]; inputName?: string; outputName?: string } = {},
): string {
  const g = new Graph("mdx_identity");
  const x = g.input(opts.inputName ?? "input", opts.dims ?? [1, 4, 3072, 256]);
  const y = g.op1("Identity", [x], { path: "identity", outName: opts.outputName ?? "output" });
  g.output(y);
  Deno.mkdirSync(dirname(path), { recursive: true });
  Deno.writeFileSync(path, g.encode(dirname(path)));
  return path;
}
