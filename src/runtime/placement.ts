/**
 * Which execution provider ORT assigned each node to, read from the session's verbose log
 * (`VerifyEachNodeIsAssignedToAnEp`), and which of the nodes on the CPU under a GPU device are compute nodes.
 * Shape-only nodes (int64 shape arithmetic that ORT keeps on the CPU on purpose, or for which the GPU EP has
 * no int64 kernel) may stay there; a compute node on the CPU is a silent fallback this module names.
 */
import { DataType, type NodeInfo, type ValueInfo } from "../onnx/proto.ts";
import { DeviceError } from "./device.ts";

/** One node as ORT's placement report names it. */
export interface PlacedNode {
  opType: string;
  name: string;
}

/** Where ORT put a session's nodes. */
export interface Placement {
  /**
   * Nodes per execution provider (ORT's names, e.g. `CPUExecutionProvider`, `WebGpuExecutionProvider`). A
   * provider that got every node is reported by count: its entries are named "?" (see `classifyPlacement`).
   */
  byProvider: Record<string, PlacedNode[]>;
  /** Nodes on the CPU provider that compute on tensor data (empty on CPU-only sessions). */
  cpuCompute: PlacedNode[];
  /** Nodes on the CPU provider that only compute shapes. */
  cpuShape: PlacedNode[];
}

/** The part of a built graph the classification reads. */
export interface GraphNodes {
  nodes: readonly NodeInfo[];
  inputs: readonly ValueInfo[];
}

/** A compute node on the CPU under a GPU device with the strict option: the session is not used. */
export class PlacementError extends DeviceError {
  override name = "PlacementError";
}

const CPU = "CPUExecutionProvider";

/**
 * Op types that move shapes around. Used only for nodes ORT's optimisers created (their names are not in the
 * built graph), whose data dependence therefore cannot be traced.
 */
const SHAPE_OPS = new Set([
  "Shape",
  "Size",
  "Gather",
  "Slice",
  "Split",
  "Concat",
  "Unsqueeze",
  "Squeeze",
  "Reshape",
  "Cast",
  "Range",
  "ConstantOfShape",
  "Identity",
]);

const HEADER = /(All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)/;
const NODE = /VerifyEachNodeIsAssignedToAnEp\]\s+(\S+) \((.*)\)\s*$/;

/** Parses the placement report of ORT's verbose session log; undefined when the log has none. */
export function parsePlacement(log: string): Record<string, PlacedNode[]> | undefined {
  const by: Record<string, PlacedNode[]> = {};
  let current: PlacedNode[] | undefined;
  let found = false;
  for (const line of log.split("\n")) {
    if (!line.includes("VerifyEachNodeIsAssignedToAnEp]")) {
      current = undefined;
      continue;
    }
    const h = HEADER.exec(line);
    if (h) {
      found = true;
      current = by[h[2]] ??= [];
      // "All nodes placed" lists no names; the count stands for them
      if (h[1] === "All nodes") {
        for (let i = 0; i < Number(h[3]); i++) current.push({ opType: "?", name: "?" });
        current = undefined;
      }
      continue;
    }
    const n = NODE.exec(line);
    if (n && current) current.push({ opType: n[1], name: n[2] });
  }
  return found ? by : undefined;
}

/**
 * Values of `graph` that depend on tensor data: float graph inputs and everything computed from them, except
 * what Shape/Size return (a shape is known before the data is). Integer graph inputs are sizes and indices
 * (e.g. wav2vec2's `seq_len`), not data.
 */
export function dataValues(graph: GraphNodes): Set<string> {
  const ints: readonly number[] = [DataType.INT64, DataType.INT32];
  const data = new Set(graph.inputs.filter((i) => !ints.includes(i.elemType)).map((i) => i.name));
  for (const n of graph.nodes) {
    if (n.opType === "Shape" || n.opType === "Size") continue;
    if (n.inputs.some((i) => data.has(i))) { for (const o of n.outputs) data.add(o); }
  }
  return data;
}

/**
 * Splits the CPU-placed nodes into compute and shape-only: a node of the built graph by whether one of its
 * outputs depends on tensor data (`dataValues`), a node ORT's optimisers made by its op type.
 */
export function classifyPlacement(by: Record<string, PlacedNode[]>, graph?: GraphNodes): Placement {
  let cpu = by[CPU] ?? [];
  // "All nodes placed on [CPU]" names none: they are the built graph's nodes (ORT drops Identity nodes)
  if (graph && cpu.length > 0 && cpu.every((n) => n.name === "?")) {
    cpu = graph.nodes.filter((n) => n.opType !== "Identity").map((n) => ({ opType: n.opType, name: n.name }));
  }
  const built = new Map((graph?.nodes ?? []).map((n) => [n.name, n]));
  const data = graph ? dataValues(graph) : new Set<string>();
  const cpuCompute: PlacedNode[] = [];
  const cpuShape: PlacedNode[] = [];
  for (const p of cpu) {
    const n = built.get(p.name);
    const compute = n ? n.outputs.some((o) => data.has(o)) : !SHAPE_OPS.has(p.opType);
    (compute ? cpuCompute : cpuShape).push(p);
  }
  return { byProvider: by, cpuCompute, cpuShape };
}

/** One line naming every compute node on the CPU, for the load-time warning or the strict error. */
export function describeFallback(network: string, device: string, nodes: readonly PlacedNode[]): string {
  const list = nodes.map((n) => `${n.opType} (${n.name})`).join(", ");
  return `${network}: ${nodes.length} compute node(s) placed on the CPU under --device ${device}: ${list}`;
}

/**
 * Lines of a captured stderr worth passing on: everything but ORT's verbose/info log entries (and their
 * continuation lines) and its generic "not assigned to the preferred execution providers" warning, which the
 * placement report replaces with the nodes' names.
 */
export function passThrough(log: string): string[] {
  const out: string[] = [];
  let keep = true;
  for (const line of log.split("\n")) {
    // ORT colours its warnings
    // deno-lint-ignore no-control-regex
    const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
    const entry = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \[([VIWEF]):onnxruntime/.exec(plain);
    if (entry) {
      keep = entry[1] !== "V" && entry[1] !== "I" && !plain.includes("VerifyEachNodeIsAssignedToAnEp");
    }
    if (keep && plain.trim() !== "") out.push(line);
  }
  return out;
}
