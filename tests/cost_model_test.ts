/**
 * The cost model (src/stages/generate/cost.ts): its time and memory arithmetic on hand-made figures, the
 * available-memory reading, the clip count from a WAV header, FLOP counts of the real-size networks at two
 * sizes, and the refusal of a run that cannot fit (available memory faked through HALLO_MEM_AVAILABLE_GIB),
 * in the function and through `animate`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GraphCost } from "../src/onnx/flops.ts";
import {
  availableMemory,
  type BenchFigures,
  checkRunCost,
  estimateRun,
  type NetworkFigure,
  readFigures,
  RunCostError,
  wavClips,
} from "../src/stages/generate/cost.ts";
import DEFAULTS from "../src/stages/generate/cost_figures.json" with { type: "json" };
import { type CostNetwork, fullSizeConfigs, networkCosts } from "../src/stages/generate/cost_networks.ts";
import { encodeWavPcm16 } from "../src/stages/audio/wav.ts";
import { ensureTinyWeights } from "../src/tiny/random.ts";
import { withEnv } from "./helpers/env.ts";

const GIB = 2 ** 30;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const work = await Deno.makeTempDir({ prefix: "hallo-cost-" });

function cost(flops: number, weightBytes: number, activationPeakBytes: number): GraphCost {
  return {
    flops: { conv: flops, matmul: 0, attention: 0, norm: 0, other: 0 },
    totalFlops: flops,
    weightBytes,
    activationPeakBytes,
    attentionScoresBytes: 0,
    nodes: 1,
  };
}

function figure(
  gflops: number,
  session_s: number,
  rssGiB: number,
  wGiB: number,
  actGiB: number,
): NetworkFigure {
  return {
    gflops,
    session_s,
    peak_rss_bytes: rssGiB * GIB,
    weight_bytes: wGiB * GIB,
    activation_peak_bytes: actGiB * GIB,
    measured: { size: 256, frames: 8, guidance: true, flops: 1e12, seconds: 10 },
  };
}

// slack (rss - weights - activations): 1 GiB, 0.5 GiB, 0.25 GiB; base = the smallest, 0.25 GiB
const FIGURES: BenchFigures = {
  device: "cpu",
  threads: 2,
  measured_at: "2026-12-02T00:00:00Z",
  networks: {
    reference_unet: figure(50, 10, 5, 3, 1),
    denoising_unet: figure(100, 20, 7.5, 5, 2),
    vae_decoder: figure(25, 2, 1.25, 0.5, 0.5),
  },
};

const COSTS: Record<CostNetwork, GraphCost> = {
  reference_unet: cost(1e12, 3 * GIB, 2 * GIB),
  denoising_unet: cost(5e12, 5 * GIB, 8 * GIB),
  vae_decoder: cost(2.5e12, 0.5 * GIB, 1 * GIB),
};

Deno.test("time: loads + clips x (reference + steps x denoising + frames x VAE), FLOPs / measured GFLOP/s", () => {
  const e = estimateRun(
    { size: 512, frames: 16, guidance: true, steps: 40, clips: 3, device: "cpu" },
    COSTS,
    FIGURES,
  );
  assert.deepEqual(e.forward_s, { reference_unet: 20, denoising_unet: 50, vae_decoder: 100 });
  assert.equal(e.load_s, 32);
  assert.equal(e.clip_s, 20 + 40 * 50 + 16 * 100);
  assert.equal(e.total_s, 32 + 3 * 3620);
  const sweep = estimateRun(
    { size: 512, frames: 16, guidance: true, steps: 40, clips: 3, runs: 4, device: "cpu" },
    COSTS,
    FIGURES,
  );
  assert.equal(sweep.total_s, 32 + 4 * 3 * 3620, "a sweep loads once and renders every setting");
  const noClips = estimateRun(
    { size: 512, frames: 16, guidance: true, steps: 40, device: "cpu" },
    COSTS,
    FIGURES,
  );
  assert.equal(noClips.total_s, undefined);
});

Deno.test("memory: base + every network's weights and slack above base + the largest activation peak", () => {
  const e = estimateRun({ size: 512, frames: 16, guidance: true, steps: 1, device: "cpu" }, COSTS, FIGURES);
  // base 0.25; weights 3 + 5 + 0.5; slack above base 0.75 + 0.25 + 0; largest activations 8 (denoising)
  assert.equal(e.peak_bytes, (0.25 + 8.5 + 1 + 8) * GIB);
});

Deno.test("figures for another device or without a network are errors naming them", () => {
  const plan = { size: 512, frames: 16, guidance: true, steps: 1, device: "cuda" as const };
  assert.throws(() => estimateRun(plan, COSTS, FIGURES), /figures are for device 'cpu', not 'cuda'/);
  const partial = { ...FIGURES, networks: { reference_unet: FIGURES.networks.reference_unet } };
  assert.throws(() => estimateRun({ ...plan, device: "cpu" }, COSTS, partial), /no entry for denoising_unet/);
});

Deno.test("available memory: MemAvailable of /proc/meminfo, or HALLO_MEM_AVAILABLE_GIB", async () => {
  await withEnv({ HALLO_MEM_AVAILABLE_GIB: undefined }, () => {
    const m = availableMemory("MemTotal:  24683548 kB\nMemFree:  100 kB\nMemAvailable:   2097152 kB\n");
    assert.equal(m.bytes, 2 * GIB);
    assert.throws(() => availableMemory("MemTotal: 1 kB\n"), /no MemAvailable/);
    Deno.env.set("HALLO_MEM_AVAILABLE_GIB", "1.5");
    assert.equal(availableMemory().bytes, 1.5 * GIB);
    Deno.env.set("HALLO_MEM_AVAILABLE_GIB", "lots");
    assert.throws(() => availableMemory(), /HALLO_MEM_AVAILABLE_GIB=lots: not a positive number/);
  });
});

Deno.test("clips of a WAV: ceil(ceil(seconds x 25) / frames per clip); other files are unknown", async () => {
  const wav = join(work, "a.wav");
  await Deno.writeFile(wav, encodeWavPcm16(new Int16Array(16000 * 5 / 2), 1, 16000)); // 2.5 s -> 63 frames
  assert.equal(await wavClips(wav, 16), 4);
  assert.equal(await wavClips(wav, 63), 1);
  const png = join(ROOT, "fixtures", "astronaut.png");
  assert.equal(await wavClips(png, 16), undefined);
});

Deno.test("real-size networks: conv FLOPs scale exactly with the latent area, attention faster", () => {
  const c = fullSizeConfigs();
  const small = networkCosts({ size: 128, frames: 2, guidance: true }, c);
  const large = networkCosts({ size: 256, frames: 2, guidance: true }, c);
  for (const n of ["reference_unet", "denoising_unet", "vae_decoder"] as const) {
    assert.equal(large[n].flops.conv, 4 * small[n].flops.conv, n);
    assert.equal(large[n].weightBytes, small[n].weightBytes, `${n}: weights do not depend on the size`);
    assert.ok(large[n].flops.attention > 4 * small[n].flops.attention, `${n}: attention grows with area^2`);
  }
  const noCfg = networkCosts({ size: 128, frames: 2, guidance: false }, c);
  assert.equal(2 * noCfg.denoising_unet.flops.conv, small.denoising_unet.flops.conv, "CFG doubles the batch");
});

const tiny = (await ensureTinyWeights(join(work, "tiny"))).dir;
const figuresFile = join(work, "figures.json");
await Deno.writeTextFile(figuresFile, JSON.stringify(FIGURES));

Deno.test("checkRunCost prints the estimate, and refuses with both numbers when memory is short", async () => {
  const opts = { weightsDir: tiny, size: 128, steps: 2, guidance: true, device: "cpu" as const };
  const lines: string[] = [];
  const est = await withEnv(
    { HALLO_BENCH_FIGURES: figuresFile, HALLO_MEM_AVAILABLE_GIB: "64" },
    () => checkRunCost({ ...opts, log: (l) => lines.push(l) }),
  );
  assert.ok(est);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^expected: .* per clip .*peak memory \d+\.\d GiB of 64\.0 GiB available/);
  // tiny weights: the base (0.25 GiB) and a few MiB of weights, slack and activations
  assert.ok(est.peak_bytes > 0.25 * GIB && est.peak_bytes < 0.3 * GIB, `${est.peak_bytes}`);
  await withEnv({ HALLO_BENCH_FIGURES: figuresFile, HALLO_MEM_AVAILABLE_GIB: "0.1" }, async () => {
    await assert.rejects(
      () => checkRunCost({ ...opts, log: () => {} }),
      (e) =>
        e instanceof RunCostError &&
        /needs about 0\.3 GiB of memory at 128x128 but the machine has 0\.1 GiB available \(HALLO_MEM_AVAILABLE_GIB\)/
          .test(e.message),
    );
  });
  const other: string[] = [];
  await withEnv(
    { HALLO_BENCH_FIGURES: figuresFile },
    () => checkRunCost({ ...opts, device: "cuda", log: (l) => other.push(l) }),
  );
  assert.match(other[0], /no bench figures for device 'cuda'/);
});

Deno.test("a local figures file overrides the defaults network by network; missing networks are said", async () => {
  const local = join(work, "partial.json");
  const vae = figure(123, 1, 1, 0.5, 0.25);
  await Deno.writeTextFile(local, JSON.stringify({ ...FIGURES, networks: { vae_decoder: vae } }));
  const { figures, source } = readFigures(local);
  assert.equal(source, local);
  assert.equal(figures.networks.vae_decoder?.gflops, 123);
  assert.deepEqual(figures.networks.reference_unet, (DEFAULTS as BenchFigures).networks.reference_unet);
  const cuda = join(work, "cuda.json");
  await Deno.writeTextFile(
    cuda,
    JSON.stringify({ ...FIGURES, device: "cuda", networks: { vae_decoder: vae } }),
  );
  const lines: string[] = [];
  const est = await withEnv({ HALLO_BENCH_FIGURES: cuda }, () =>
    checkRunCost({
      weightsDir: tiny,
      size: 128,
      steps: 2,
      guidance: true,
      device: "cuda",
      log: (l) => lines.push(l),
    }));
  assert.equal(est, undefined);
  assert.match(lines[0], /figures \(.*cuda\.json\) lack reference_unet, denoising_unet$/);
});

/** `command` on the fixtures and the tiny set at 128 px with 0.1 GiB "available"; exit code and stderr lines. */
async function refusedRun(command: string, extra: string[]): Promise<{ code: number; err: string[] }> {
  const fixtures = [
    "--image",
    join(ROOT, "fixtures", "astronaut.png"),
    "--audio",
    join(ROOT, "fixtures", "speech.wav"),
  ];
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "src", "cli", "main.ts"),
      command,
      ...fixtures,
      ...extra,
      "--weights",
      tiny,
      "--size",
      "128",
    ],
    env: { HALLO_BENCH_FIGURES: figuresFile, HALLO_MEM_AVAILABLE_GIB: "0.1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, err: new TextDecoder().decode(r.stderr).trim().split("\n") };
}

Deno.test("animate refuses a run that cannot fit, in one line, before preparing anything", async () => {
  const { code, err } = await refusedRun("animate", ["--out", join(work, "o.mp4")]);
  assert.equal(code, 1);
  assert.match(err[0], /^expected: .* clip\(s\) .*peak memory 0\.3 GiB of 0\.1 GiB available/);
  assert.match(err[1], /^animate: this run needs about 0\.3 GiB of memory .* 0\.1 GiB available/);
  assert.equal(err.length, 2, err.join("\n"));
  assert.ok(!err.some((l) => l.startsWith("preparing")), "nothing was prepared");
});

Deno.test("sweep refuses the same way, counting every setting", async () => {
  const { code, err } = await refusedRun("sweep", ["--out", join(work, "sweep"), "--cfg", "1,2"]);
  assert.equal(code, 1);
  assert.match(err[0], /^expected: .* for 2 runs of \d+ clip\(s\)/);
  assert.match(err[1], /^sweep: this run needs about 0\.3 GiB of memory .* 0\.1 GiB available/);
});

globalThis.addEventListener("unload", () => Deno.removeSync(work, { recursive: true }));

Deno.test("CFG halves: the denoising UNet counted as two batch-1 calls, the same FLOPs, a smaller activation peak", () => {
  const c = fullSizeConfigs();
  const geo = { size: 128, frames: 2, guidance: true };
  const joint = networkCosts(geo, c).denoising_unet;
  const halves = networkCosts({ ...geo, cfgBatch: "halves" }, c).denoising_unet;
  assert.equal(halves.flops.conv, joint.flops.conv, "both halves' convolutions are the batch-2 call's");
  assert.equal(
    halves.flops.attention,
    joint.flops.attention,
    "the uncond half attends to its own tokens only",
  );
  assert.equal(halves.weightBytes, joint.weightBytes);
  assert.ok(halves.activationPeakBytes < 0.8 * joint.activationPeakBytes, `${halves.activationPeakBytes}`);
  const noCfg = networkCosts({ ...geo, guidance: false, cfgBatch: "halves" }, c).denoising_unet;
  assert.equal(noCfg.totalFlops, networkCosts({ ...geo, guidance: false }, c).denoising_unet.totalFlops);
});

Deno.test("checkRunCost runs the CFG batch in halves when joint does not fit and halves does; --cfg-batch joint is refused", async () => {
  const opts = { weightsDir: tiny, size: 256, frames: 16, steps: 2, guidance: true, device: "cpu" as const };
  const peak = async (cfgBatch: "joint" | "halves") =>
    (await withEnv(
      { HALLO_BENCH_FIGURES: figuresFile, HALLO_MEM_AVAILABLE_GIB: "64" },
      () => checkRunCost({ ...opts, cfgBatch, log: () => {} }),
    ))!.peak_bytes;
  const [joint, halves] = [await peak("joint"), await peak("halves")];
  assert.ok(halves < joint, `halves ${halves} vs joint ${joint}`);
  const between = String((joint + halves) / 2 / GIB);
  const lines: string[] = [];
  const est = await withEnv(
    { HALLO_BENCH_FIGURES: figuresFile, HALLO_MEM_AVAILABLE_GIB: between },
    () => checkRunCost({ ...opts, log: (l) => lines.push(l) }),
  );
  assert.equal(est?.cfgBatch, "halves");
  assert.equal(est?.peak_bytes, halves);
  assert.match(lines[0], /joint CFG batch needs about .* one CFG half at a time \(--cfg-batch halves\)/);
  assert.match(lines[1], /CFG in halves/);
  await withEnv({ HALLO_BENCH_FIGURES: figuresFile, HALLO_MEM_AVAILABLE_GIB: between }, async () => {
    await assert.rejects(
      () => checkRunCost({ ...opts, cfgBatch: "joint", log: () => {} }),
      (e) => e instanceof RunCostError && /or --cfg-batch halves$/.test(e.message),
    );
  });
  // Room for joint: joint.
  const roomy = await withEnv(
    { HALLO_BENCH_FIGURES: figuresFile, HALLO_MEM_AVAILABLE_GIB: "64" },
    () => checkRunCost({ ...opts, log: () => {} }),
  );
  assert.equal(roomy?.cfgBatch, "joint");
});
