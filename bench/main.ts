/**
 * `deno task bench [--quick] [--json] [--force-64] [--only networks|image|audio|peak|unet32|unet64|vae512[,...]]`:
 * every benchmark, printed as tables (`--json`: the roofline rows as JSON lines, see roofline.ts).
 * networks: build, session creation, forward and peak RSS of each network at the tiny size and at the real
 * full size with random weights (one process per network so peak RSS is its own; the full UNets write
 * 3.4 GB and 6.1 GB temporary checkpoints). `--quick` runs the tiny sizes only.
 */
import { fileURLToPath } from "node:url";
import { table } from "./util.ts";
import { roofline, ROOFLINE_ROWS } from "./roofline.ts";

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const args = Deno.args;
const quick = args.includes("--quick");
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
const selected = (row: string) => !only || only.split(",").includes(row);

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

if (selected("networks")) await networks();
if (selected("image")) await script("./image.ts", []);
if (selected("audio")) await script("./audio.ts", quick ? ["--quick", "--no-10min"] : []);
const roofRows = ROOFLINE_ROWS.filter(selected);
if (!quick && roofRows.length) {
  await roofline(roofRows, { json: args.includes("--json"), force64: args.includes("--force-64") });
}
