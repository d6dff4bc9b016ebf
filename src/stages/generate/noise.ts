/**
 * The initial noise of each clip, as upstream's `prepare_latents` draws it: `randn((1, 4, F, h, w), generator,
 * float16)` from one generator seeded once per video and consumed clip after clip. Both the sampler's input and a
 * resumed run's skipping of finished clips go through `initialNoise`, so the stream always lines up.
 */
import type { TorchCpuGenerator } from "../../sampling/noise.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import type { HalloModels } from "./models.ts";

/** (1, latent channels, F, h, w) of the loaded networks' clips. */
export function latentShape(m: Pick<HalloModels, "geometry" | "vae">): number[] {
  const g = m.geometry;
  return [1, m.vae.config.latentChannels, g.frames, g.height, g.width];
}

/** The next clip's initial latents from `generator` (float16 draws, as upstream). */
export function initialNoise(generator: TorchCpuGenerator, shape: readonly number[]): F32Tensor {
  return f32(shape, generator.randn(shape, "float16").values);
}
