/**
 * `deno task hallo inspect <checkpoint> [--json]`: the tensors of a .pth or .safetensors file (key, dtype, shape,
 * byte offset) and the parameter count. A bad or hostile file gives exit code 1 and a one-line error.
 */
import type { Checkpoint } from "../weights/checkpoint_types.ts";
import { openCheckpoint } from "../weights/checkpoint.ts";
import { CheckpointError, oneLine } from "../weights/errors.ts";
import type { TensorRef } from "../onnx/tensor_ref.ts";

const USAGE = "usage: deno task hallo inspect <checkpoint.pth|.safetensors> [--json]";

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The JSON document `--json` prints. */
export interface InspectReport {
  file: string;
  format: string;
  tensors: { name: string; dtype: string; shape: number[]; offset: number; length: number }[];
  total_parameters: number;
  total_bytes: number;
  metadata: Record<string, string>;
}

/** Summarises a checkpoint as the `--json` output. */
export function inspectReport(ckpt: Checkpoint): InspectReport {
  const tensors = [...ckpt.tensors.values()].map((r: TensorRef) => ({
    name: r.name,
    dtype: r.dtype,
    shape: [...r.shape],
    offset: r.offset,
    length: r.length,
  }));
  return {
    file: ckpt.file,
    format: ckpt.format,
    tensors,
    total_parameters: tensors.reduce((a, t) => a + numel(t.shape), 0),
    total_bytes: tensors.reduce((a, t) => a + t.length, 0),
    metadata: { ...ckpt.metadata },
  };
}

function table(rep: InspectReport): string {
  const rows = rep.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(", ")}]`, String(t.offset)]);
  const head = ["key", "dtype", "shape", "offset"];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (i === 3 ? c.padStart(width[i]) : c.padEnd(width[i]))).join("  ");
  const n = rep.total_parameters.toLocaleString("en-US");
  return [
    fmt(head),
    ...rows.map(fmt),
    `${rep.tensors.length} tensors, ${n} parameters, ${
      rep.total_bytes.toLocaleString("en-US")
    } bytes (${rep.format}: ${rep.file})`,
  ].join("\n");
}

/** Pretty JSON with one tensor per line: diffable and greppable, unlike one value per line. */
function toJson(rep: InspectReport): string {
  const { tensors, ...head } = rep;
  const fields = Object.entries(head).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  const rows = tensors.map((t) => `    ${JSON.stringify(t)}`).join(",\n");
  return `{\n${fields.join(",\n")},\n  "tensors": [\n${rows}\n  ]\n}`;
}

/** CLI entry: returns the exit code (0 ok, 1 bad checkpoint, 2 usage). */
export function run(args: string[]): Promise<number> {
  const json = args.includes("--json");
  const rest = args.filter((a) => a !== "--json");
  if (rest.length !== 1 || rest[0].startsWith("-")) {
    console.error(USAGE);
    return Promise.resolve(args.includes("--help") || args.includes("-h") ? 0 : 2);
  }
  let rep: InspectReport;
  try {
    rep = inspectReport(openCheckpoint(rest[0]));
  } catch (e) {
    // Checkpoint problems are expected input errors: one line, no stack. Anything else is reported the same
    // way so a hostile file can never make the CLI dump internals.
    const msg = e instanceof CheckpointError ? e.message : `${rest[0]}: ${(e as Error)?.message ?? e}`;
    console.error(`hallo inspect: ${oneLine(msg, 1000)}`);
    return Promise.resolve(1);
  }
  console.log(json ? toJson(rep) : table(rep));
  return Promise.resolve(0);
}
