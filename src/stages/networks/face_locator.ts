/**
 * The face-locator stage over Hallo's `net.pth`: the face-region mask becomes the feature map added to
 * the denoising UNet's `conv_in` output, (b, C, f, h, w) as upstream returns it.
 */
import {
  buildFaceLocator,
  FACE_LOCATOR_CONFIG,
  FACE_LOCATOR_INPUT,
  FACE_LOCATOR_OUTPUT,
  FACE_LOCATOR_PREFIX,
  type FaceLocatorConfig,
  resolveFaceLocatorConfig,
} from "../../models/face_locator.ts";
import { f32, type F32Tensor, type Tensor } from "../../tensor.ts";
import type { WeightStore } from "../../weights/store.ts";
import { expectF32, netWeights, NetworkStageError, openNetwork } from "./load.ts";
import type { LoadProjectionOptions, ProjectionModel } from "./projections.ts";

export type FaceLocatorModel = ProjectionModel<Required<FaceLocatorConfig>>;

/** Loads `face_locator.*` from `net` (a path to net.pth / net.safetensors, or an opened store of it). */
export async function loadFaceLocator(
  net: string | WeightStore,
  opts: LoadProjectionOptions<FaceLocatorConfig> = {},
): Promise<FaceLocatorModel> {
  const config = resolveFaceLocatorConfig(opts.config ?? FACE_LOCATOR_CONFIG);
  const { store, files } = netWeights(net, FACE_LOCATOR_PREFIX);
  const n = await openNetwork(
    "face_locator",
    config,
    files,
    (w = store, dtype) => buildFaceLocator(w, config, { dtype }),
    { ...opts, weights: store },
  );
  return { config, session: n.session, timings: n.timings, release: () => n.session.release() };
}

/** Repeats (b, C, 1, h, w) `frames` times along the frame axis. */
function repeatFrames(t: F32Tensor, frames: number): F32Tensor {
  const [b, c, , h, w] = t.shape;
  const hw = h * w;
  const out = new Float32Array(b * c * frames * hw);
  for (let i = 0; i < b * c; i++) {
    const plane = t.data.subarray(i * hw, (i + 1) * hw);
    for (let f = 0; f < frames; f++) out.set(plane, (i * frames + f) * hw);
  }
  return f32([b, c, frames, h, w], out);
}

/**
 * `face_locator(conditioning)`. A video (b, 3, f, H, W) runs as is. A single image (3, H, W) or
 * (1, 3, H, W) — Hallo's `face_region`, which the pipeline repeats over the clip's `frames` — runs once
 * and its features are repeated: every frame is the same per-frame convolution of the same image, so
 * the result equals upstream's on the repeated input.
 */
export async function locateFace(
  model: FaceLocatorModel,
  conditioning: Tensor,
  opts: { frames?: number } = {},
): Promise<F32Tensor> {
  const inC = model.config.conditioning_channels;
  const rank = conditioning.shape.length;
  if (rank === 5) {
    const video = expectF32(conditioning, "face locator input", [
      undefined,
      inC,
      undefined,
      undefined,
      undefined,
    ]);
    return (await model.session.run({ [FACE_LOCATOR_INPUT]: video }))[FACE_LOCATOR_OUTPUT] as F32Tensor;
  }
  const frames = opts.frames ?? 1;
  if (!Number.isSafeInteger(frames) || frames < 1) {
    throw new NetworkStageError(`face locator: frames must be a positive integer, got ${frames}`);
  }
  const image = expectF32(
    rank === 3 ? { ...conditioning, shape: [1, ...conditioning.shape] } : conditioning,
    "face locator image",
    [1, inC, undefined, undefined],
  );
  const [, , H, W] = image.shape;
  const one = f32([1, inC, 1, H, W], image.data);
  const feat = (await model.session.run({ [FACE_LOCATOR_INPUT]: one }))[FACE_LOCATOR_OUTPUT] as F32Tensor;
  return frames === 1 ? feat : repeatFrames(feat, frames);
}
