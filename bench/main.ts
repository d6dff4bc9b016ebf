/**
 * `deno task bench [--quick] [--only networks|image|audio] [--device webgpu|cuda]`: every benchmark, printed
 * as tables. With `--device`: both full-size UNets at a 16x16 latent on that device, checked against the CPU EP.
 * networks: build, session creation, forward and peak RSS of each network at the tiny size and at the real
 * full size with random weights (one process per network so peak RSS is its own; the full UNets write
 * 3.4 GB and 6.1 GB temporary checkpoints). `--quick` runs the tiny sizes only.
 */
import { fileURLToPath } from "node:url";
import { table } from "./util.ts";

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const args = Deno.args;
const quick = args.includes("--quick");
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;

/** Upstream PyTorch 1.13 on this CPU, 2 threads, 16x16 latent, 2+2 frames, CFG (spec section 9). */
const UPSTREAM_S: Record<string, number> = { reference_unet: 3.05, denoising_unet: 5.2 };

async function runOne(network: string, size: string): Promise<Record<string, unknown> | undefined> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", here("./network_one.ts"), network, size],
    env: { BENCH_MMAP: "0" },
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
      j.rel_l2_max,
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
if (!only || only === "networks") await networks();
if (!only || only === "image") await script("./image.ts", []);
if (!only || only === "audio") await script("./audio.ts", quick ? ["--quick", "--no-10min"] : []);
