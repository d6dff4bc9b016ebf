/**
 * The prepared GPU check's dry run: on the CPU at tiny sizes it builds the three networks over random weights,
 * measures CPU-vs-CPU parity (exactly 0: the same graph on the same EP), and derives seconds per frame from the
 * forwards as the real check will on the GPU machine.
 */
import assert from "node:assert/strict";
import { gpuCheck } from "../scripts/gpu_check.ts";

Deno.test("gpu_check dry run: three networks, CPU-vs-CPU parity 0, seconds per frame from the forwards", async () => {
  const work = await Deno.makeTempDir({ prefix: "hallo-gpu-check-test-" });
  try {
    const o = {
      device: "cpu" as const,
      dtypes: ["float32" as const],
      latent: 8,
      frames: 2,
      steps: 3,
      parityLatent: 8,
      parityFrames: 2,
      tiny: true,
      work,
    };
    const r = await gpuCheck(o);
    assert.deepEqual(r.figures.map((f) => f.network), ["reference_unet", "denoising_unet", "vae_decoder"]);
    for (const f of r.figures) {
      assert.equal(f.parity_rel_l2, 0, f.network);
      assert.ok(f.warm_forward_s > 0 && f.forward_s > 0);
    }
    const t = Object.fromEntries(r.figures.map((f) => [f.network, f.warm_forward_s]));
    const expected = (t.reference_unet + 3 * t.denoising_unet + 2 * t.vae_decoder) / 2;
    assert.ok(Math.abs(r.seconds_per_frame.float32 - expected) < 1e-12);
    // the random checkpoints are written once into the work folder and reused
    const files = [...Deno.readDirSync(work)].map((e) => e.name).filter((n) =>
      n.endsWith("-tiny.safetensors")
    );
    assert.equal(files.length, 3);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
