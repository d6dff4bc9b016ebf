/**
 * `deno task bench [--quick] [--json] [--force-64] [--device webgpu|cuda]
 *   [--only networks|sessions|image|audio|step512|peak|unet32|unet64|vae512|inspect|demo[,...]]`:
 * every benchmark, printed as tables (`--json`: one JSON line per benchmark that has one, instead of its table).
 * networks: build, session creation (without the optimised-model cache), forward and peak RSS of each
 * network at the tiny size and at the real full size with random weights (one process per network so peak
 * RSS is its own; the full UNets write 3.4 GB and 6.1 GB temporary checkpoints). sessions: cold and warm
 * session creation of both full-size UNets through the optimised-model cache. step512: one 512x512 step
 * after its self-check. peak/unet32/unet64/vae512: the machine's GEMM peak and profiled forwards with
 * achieved GFLOP/s per op class (roofline.ts). inspect: the cost of the probes, the activation cache and each
 * inspection measure relative to a plain clip, through the front door on tiny random weights (inspect.ts).
 * demo: `deno task demo` end to end on a fresh clone of the committed tree (demo.ts).
 * `--quick` runs the tiny sizes only. With `--device`: both full-size UNets at a 16x16 latent on that device,
 * checked against the CPU EP (nothing else).
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { treeBytes } from "../src/weights/clean_caches.ts";
import { formatBytes } from "../src/util/bytes.ts";
import { table } from "./util.ts";
import { roofline, ROOFLINE_ROWS } from "./roofline.ts";

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const args = Deno.args;
const quick = args.includes("--quick");
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
const json = args.includes("--json");
const selected = (row: string) => !only || only.split(",").includes(row);

/** Upstream PyTorch 1.13 on this CPU, 2 threads, 16x16 latent, 2+2 frames, CFG (spec section 9). */
const UPSTREAM_S: Record<string, number> = { reference_unet: 3.05, denoising_unet: 5.2 };

async function runOne(
  network: string,
  size: string,
  env: Record<string, string> = { HALLO_OPTIMIZED_CACHE: "off" },
): Promise<Record<string, unknown> | undefined> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", here("./network_one.ts"), network, size],
    env: { BENCH_MMAP: "0", ...env },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const line = new TextDecoder().decode(r.stdout).trim().split("\n").pop();
  if (!r.success || !line) {
    console.error(`bench: ${network} ${size} failed`);
    return undefined;
  }
  return JSON.parse(line);
}

async function networks(): Promise<void> {
  const nets = [
    "image_proj",
    "audio_proj",
    "face_locator",
    "vae",
    "wav2vec2",
    "reference_unet",
    "denoising_unet",
  ];
  const rows: (string | number)[][] = [];
  for (const size of quick ? ["tiny"] : ["tiny", "full"]) {
    for (const n of nets) {
      const r = await runOne(n, size);
      if (!r) continue;
      const fwd = Math.min(r.forward_s as number, r.forward2_s as number);
      const up = size === "full" ? UPSTREAM_S[n] : undefined;
      rows.push([
        n,
        size,
        r.what as string,
        `${((r.params as number) / 1e6).toFixed(2)} M`,
        r.build_s as number,
        r.session_s as number,
        r.forward_s as number,
        r.forward2_s as number,
        up ? `${(up / fwd).toFixed(2)}x` : "-",
        Math.round(r.peak_rss_mib as number),
      ]);
      console.error(`bench: ${n} ${size} done`);
    }
  }
  console.log("\nNetworks (CPU, 2 threads, random weights)");
  console.log(table([
    "network",
    "size",
    "input",
    "params",
    "build s",
    "session s",
    "forward s",
    "warm fwd s",
    "vs upstream",
    "peak RSS MiB",
  ], rows));
  console.log(
    "vs upstream: PyTorch 1.13 on this CPU (reference 3.05 s, denoising 5.20 s) / our warm forward.",
  );
}

/** One UNet's session creation: first load (optimise + save the cache) and a later load from the cache. */
interface SessionFigures {
  cold_s: number;
  warm_s: number;
  /** The forward after the warm load gave the same bits as after the cold one. */
  identical: boolean;
  /** Bytes of the optimised-model cache entry. */
  cache_bytes: number;
}

/**
 * Cold and warm session creation of both full-size UNets (random weights, 16x16 latent): two processes over
 * the same kept checkpoint; the first optimises and writes the cache beside it, the second loads from it.
 */
async function sessions(): Promise<void> {
  const loadBefore = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
  const res: Record<string, SessionFigures> = {};
  for (const n of ["reference_unet", "denoising_unet"]) {
    const dir = await Deno.makeTempDir({ prefix: "hallo-bench-sessions-" });
    try {
      // weights in place, as loadHalloModels loads them (pre-packed copies make a warm load seconds longer)
      const env = { BENCH_KEEP: dir, BENCH_WARM_FORWARDS: "0", BENCH_MMAP: "1" };
      const cold = await runOne(n, "full", env);
      const entries = () => [...Deno.readDirSync(join(dir, ".hallo-cache", "optimized"))].map((e) => e.name);
      const written = cold ? entries() : [];
      const warm = cold && written.length === 1 ? await runOne(n, "full", env) : undefined;
      if (!cold || !warm) {
        console.error(`bench: sessions ${n}: ${!cold ? "cold load failed" : `cache entries ${written}`}`);
        continue;
      }
      const reused = entries().join() === written.join();
      res[n] = {
        cold_s: cold.session_s as number,
        warm_s: warm.session_s as number,
        identical: reused && cold.out_sha256 === warm.out_sha256,
        cache_bytes: treeBytes(join(dir, ".hallo-cache", "optimized")),
      };
      console.error(`bench: sessions ${n} done`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const loadAfter = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
  if (json) {
    console.log(
      JSON.stringify({ bench: "sessions", ...res, loadavg_before: loadBefore, loadavg_after: loadAfter }),
    );
    return;
  }
  console.log(
    "\nSession creation (CPU, 2 threads, full-size random weights, 16x16 latent, weights in place)",
  );
  console.log(table(
    ["network", "cold s (optimise + save)", "warm s (from cache)", "cache on disk", "same output"],
    Object.entries(res).map(([n, r]) => [
      n,
      r.cold_s,
      r.warm_s,
      formatBytes(r.cache_bytes),
      r.identical ? "bit for bit" : "NO",
    ]),
  ));
  console.log(`load average before ${loadBefore.join(" ")}, after ${loadAfter.join(" ")} (2 cores)`);
}

/** The last stdout line of `bench/<file>` as JSON, stderr passed through; undefined when it failed. */
async function jsonLine(file: string, extra: string[]): Promise<Record<string, unknown> | undefined> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", here(file), ...extra],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const line = new TextDecoder().decode(r.stdout).trim().split("\n").pop();
  if (!line) return undefined;
  const parsed = JSON.parse(line);
  if (!r.success) console.error(`bench: ${file} ${extra.join(" ")} failed`);
  return parsed;
}

/**
 * One 512x512 step (bench/step512.ts) with full-size random weights, the denoising UNet in CFG halves, after
 * its self-check: CFG halves against the joint batch-2 denoising UNet on the same weights at 32x32, 8+2 frames.
 */
async function step512(): Promise<void> {
  const check = await jsonLine("./step512.ts", ["--self-check"]);
  const step = await jsonLine("./step512.ts", []);
  if (!step) {
    console.error("bench: step512 failed");
    return;
  }
  step.self_check_rel_l2 = check?.rel_l2 ?? null;
  step.self_check_ok = check?.ok ?? false;
  if (json) {
    console.log(JSON.stringify(step));
    return;
  }
  console.log("\nOne 512x512 step (CPU, 2 threads, full-size random weights)");
  console.log(
    table(["what", "seconds", "reference fwd s", "denoising fwd s", "peak RSS GiB", "self-check"], [[
      step.what as string,
      step.seconds as number,
      step.reference_forward_s as number,
      step.denoising_forward_s as number,
      step.peak_rss_gib as number,
      check ? `rel L2 ${(check.rel_l2 as number).toExponential(1)} ${check.ok ? "ok" : "FAILED"}` : "failed",
    ]]),
  );
}

/** `deno task demo` on a fresh clone, timed (bench/demo.ts). */
async function demo(): Promise<void> {
  const r = await jsonLine("./demo.ts", []);
  if (!r) {
    console.error("bench: demo failed");
    return;
  }
  if (json) {
    console.log(JSON.stringify(r));
    return;
  }
  console.log("\nThe demo, end to end on a fresh clone (tiny random weights)");
  console.log(
    table(["what", "seconds", "load before"], [[
      r.what as string,
      r.seconds as number,
      String(r.load_before),
    ]]),
  );
}

async function script(file: string, extra: string[]): Promise<void> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", here(file), ...extra],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!r.success) console.error(`bench: ${file} failed`);
}

const device = args.includes("--device") ? args[args.indexOf("--device") + 1] : undefined;

/** Both full-size UNets on `device` against the CPU EP: relative L2, forwards, the share spent moving data. */
async function onDevice(device: string): Promise<boolean> {
  const rows: (string | number)[][] = [];
  let ok = true;
  for (const n of ["reference_unet", "denoising_unet"]) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", here("./network_one.ts"), n, "full", device],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const line = new TextDecoder().decode(r.stdout).trim().split("\n").pop();
    if (!r.success || !line) {
      console.error(`bench: ${n} on ${device} failed`);
      ok = false;
      continue;
    }
    const j = JSON.parse(line);
    const pass = j.rel_l2_max <= 1e-4;
    ok &&= pass;
    const share = j.moving_share === undefined ? "-" : `${(j.moving_share * 100).toFixed(1)} %`;
    rows.push([
      n,
      j.what,
      j.session_s,
      j.forward_s,
      j.forward2_s,
      j.cpu_forward_s,
      // exponent form: the table's 3 decimals would print every passing value as 0.000
      (j.rel_l2_max as number).toExponential(2),
      pass ? "pass" : "FAIL",
      share,
    ]);
  }
  console.log(`\nFull-size UNets on ${device} vs the CPU EP (random weights, fp32)`);
  console.log(
    table([
      "network",
      "input",
      "session s",
      "forward s",
      "warm fwd s",
      "CPU fwd s",
      "rel L2 max",
      "1e-4",
      "moving",
    ], rows),
  );
  console.log(
    "moving: inputs uploaded + outputs downloaded by themselves, over the warm step. On lavapipe (Vulkan on the " +
      "CPU) this is a correctness run: its speeds mean nothing for a GPU.",
  );
  return ok;
}

if (device) Deno.exit(await onDevice(device) ? 0 : 1);
if (selected("networks")) await networks();
if (selected("sessions") && !quick) await sessions();
if (selected("image")) await script("./image.ts", []);
if (selected("audio")) await script("./audio.ts", quick ? ["--quick", "--no-10min"] : []);
const roofRows = ROOFLINE_ROWS.filter(selected);
if (!quick && roofRows.length) await roofline(roofRows, { json, force64: args.includes("--force-64") });
if (selected("step512") && !quick) await step512();
if (selected("inspect")) await script("./inspect.ts", json ? ["--json"] : []);
if (selected("demo")) await demo();
