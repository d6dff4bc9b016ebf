/**
 * Building a network's graph at the precision asked for. fp32 graphs bind the checkpoints as they are.
 * fp16 graphs are built twice: once over the checkpoints to learn which tensors they bind (milliseconds,
 * no weight is read), then over the fp16 weights cache of exactly those tensors (written on first use),
 * with a float32 interface so that stage functions never see fp16 tensors. The second build computes in
 * `computeDType` (float32 on the CPU and WebGPU, where it casts each f16 weight in-graph and rounds its inputs
 * and outputs to fp16).
 */
import { type Graph, GraphBuildError, type GraphDType, type WeightSource } from "../onnx/graph.ts";
import { f32Interface, fp16Rounding } from "../onnx/f32_interface.ts";
import { buildFor } from "../onnx/layers.ts";
import { fp16Weights } from "../weights/fp16_cache.ts";
import type { Device } from "./device.ts";
import { computeDType, warnIfFp16OnCpu } from "./dtype.ts";

/**
 * A graph builder over a weight source. `w` undefined means the builder's own checkpoint store; `dtype` is
 * the graph precision to build.
 */
export type DtypeBuilder = (w: WeightSource | undefined, dtype: GraphDType) => Graph;

/** A built graph and the files it reads (what `compile()` takes as `files`). */
export interface GraphForDtype {
  graph: Graph;
  files: string[];
  /** For fp16: the cache file (undefined when none could be written) and whether this build wrote it. */
  fp16?: { file?: string; written: boolean };
  /** The precision the graph computes in (`computeDType`): float32 for fp16 on the CPU and WebGPU. */
  compute?: GraphDType;
}

/**
 * Builds `network` at `dtype`. `weights` is the checkpoint store the builder reads (it answers `has` during the
 * fp16 build, so both builds choose alike); `files` are the checkpoint files of an fp32 build; `probes` are
 * values that will be graph outputs (cast to float32 too); `device` chooses the layer forms. Warns once when
 * fp16 is asked for on CPU.
 */
export function buildForDtype(
  network: string,
  dtype: GraphDType,
  builder: DtypeBuilder,
  o: { weights?: WeightSource; files: readonly string[]; probes?: readonly string[]; device?: Device },
): GraphForDtype {
  // Every layer takes the forms the device runs correctly and fast (`formsFor`).
  const device = o.device ?? "cpu";
  const build = (w: WeightSource | undefined, d: GraphDType) => buildFor(device, () => builder(w, d));
  if (dtype === "float32") return { graph: build(o.weights, "float32"), files: [...o.files] };
  warnIfFp16OnCpu(dtype, o.device);
  const bound = build(o.weights, dtype).boundKeys();
  const w = fp16Weights(network, bound.map((b) => ({ ...b.ref, name: b.key })), o.weights);
  // The weights are fp16 either way; the graph computes in `compute` (float32 casts each weight in-graph).
  const compute = computeDType(dtype, device);
  const graph = build(w.source, compute);
  if (graph.dtype !== compute) {
    throw new GraphBuildError(
      `${network}: the graph builder ignored dtype ${compute} (built ${graph.dtype})`,
    );
  }
  const keys = new Set(bound.map((b) => b.key));
  const again = graph.boundKeys();
  if (again.length !== keys.size || again.some((b) => !keys.has(b.key))) {
    throw new GraphBuildError(`${network}: the fp16 build bound other weights than the first build`);
  }
  // Stage functions keep exchanging float32: the Casts (or the roundings) live inside the graph.
  if (compute === "float32") fp16Rounding(graph);
  else f32Interface(graph, o.probes ?? []);
  return { graph, files: w.files, fp16: { file: w.file, written: w.written }, compute };
}
