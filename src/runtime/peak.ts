/**
 * This machine's fp32 peak: a GEMM microbenchmark through ORT (one large square MatMul, best of N, the same
 * thread count the networks run with), and the theoretical figure from /proc/cpuinfo as context.
 */
import { Graph } from "../onnx/graph.ts";
import { Session } from "./session.ts";
import { f32 } from "../tensor.ts";

export interface GemmPeak {
  /** Side of the square product. */
  n: number;
  threads: number;
  /** Best time of one product, seconds. */
  seconds: number;
  gflops: number;
}

/** Measures GFLOP/s of an n x n x n fp32 MatMul (2 n^3 FLOPs) through ORT: the best of `repeats`. */
export async function measureGemmPeak(
  o: { n?: number; threads?: number; repeats?: number } = {},
): Promise<GemmPeak> {
  const n = o.n ?? 2048;
  const threads = o.threads ?? 2;
  const g = new Graph("gemm_peak");
  const a = g.input("a", [n, n]);
  const b = g.input("b", [n, n]);
  g.output(g.op1("MatMul", [a, b], { path: "gemm" }), "y");
  const dir = await Deno.makeTempDir({ prefix: "hallo-peak-" });
  try {
    const s = await Session.create(g.encode(dir), dir, { threads });
    const data = new Float32Array(n * n);
    for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 1000) / 1000 - 0.5;
    const feeds = { a: f32([n, n], data), b: f32([n, n], data) };
    await s.run(feeds);
    let best = Infinity;
    for (let i = 0; i < (o.repeats ?? 5); i++) {
      const t0 = performance.now();
      await s.run(feeds);
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    await s.release();
    return { n, threads, seconds: best, gflops: 2 * n ** 3 / best / 1e9 };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export interface TheoreticalPeak {
  cores: number;
  mhz: number;
  /** fp32 FLOP per cycle per core assumed (two FMA pipes x vector lanes x 2). */
  flopsPerCycle: number;
  gflops: number;
  model: string;
}

/**
 * cores x fp32 FLOP/cycle x clock from /proc/cpuinfo text: 32 FLOP/cycle with AVX2+FMA (2 x 8 lanes x 2),
 * as the issue states it for this CPU; AVX-512 parts are counted the same (many issue 512-bit FMAs as two
 * 256-bit halves), so the figure is context, the measured GEMM is the reference.
 */
export function theoreticalPeak(cpuinfo: string, cores: number): TheoreticalPeak {
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1] ?? NaN);
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(/\s+/) ?? [];
  const flopsPerCycle = flags.includes("fma") && flags.includes("avx2") ? 32 : flags.includes("avx") ? 16 : 8;
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1].trim() ?? "unknown CPU";
  return { cores, mhz, flopsPerCycle, gflops: cores * flopsPerCycle * mhz / 1000, model };
}
