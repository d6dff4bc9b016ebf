/**
 * causal lip sync by occlusion (ORT gives no gradients, so perturbation is the method): silence or shift the
 * audio of a clip window by window, re-run the clip, and measure how much the mouth region of each frame
 * changes. The audio is the per-frame audio tensor a clip is conditioned on, with its frame axis named
 * (`audio_embedding` (B, F, 32, 768): axis 1; the stacked wav2vec windows (F, 5, 12, 768): axis 0).
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import { InspectError } from "./errors.ts";
import { regionMeanAbsDiff } from "./region_mean.ts";

function frameLayout(name: string, audio: F32Tensor, axis: number) {
  const s = audio.shape;
  if (!Number.isInteger(axis) || axis < 0 || axis >= s.length) {
    throw new InspectError(`${name}: frame axis ${axis} of audio [${s}]`);
  }
  const outer = s.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = s.slice(axis + 1).reduce((a, d) => a * d, 1);
  return { outer, frames: s[axis], inner };
}

/**
 * The audio with window k silenced: `y[.., k, ..] = fill[..]` (zeros by default, upstream's uncond audio; or a
 * silent embedding of one frame's size), every other value copied.
 */
export function silenceWindow(
  audio: F32Tensor,
  window: number,
  axis: number,
  fill?: Float32Array,
): F32Tensor {
  const { outer, frames, inner } = frameLayout("silence window", audio, axis);
  if (!Number.isInteger(window) || window < 0 || window >= frames) {
    throw new InspectError(`silence window: window ${window} of ${frames} frames`);
  }
  if (fill && fill.length !== inner) {
    throw new InspectError(`silence window: fill has ${fill.length} values, a frame ${inner}`);
  }
  const out = audio.data.slice();
  for (let o = 0; o < outer; o++) {
    const at = (o * frames + window) * inner;
    if (fill) out.set(fill, at);
    else out.fill(0, at, at + inner);
  }
  return f32(audio.shape, out);
}

/**
 * The audio shifted by n windows: `y[.., f, ..] = x[.., clamp(f - n, 0, F-1), ..]` (n > 0 delays the audio;
 * the edges repeat, as upstream clamps its window indices).
 */
export function shiftWindows(audio: F32Tensor, n: number, axis: number): F32Tensor {
  const { outer, frames, inner } = frameLayout("shift windows", audio, axis);
  if (!Number.isInteger(n)) {
    throw new InspectError(`shift windows: shift ${n} is not a whole number of windows`);
  }
  const out = new Float32Array(audio.data.length);
  for (let o = 0; o < outer; o++) {
    for (let f = 0; f < frames; f++) {
      const src = Math.min(frames - 1, Math.max(0, f - n));
      out.set(
        audio.data.subarray((o * frames + src) * inner, (o * frames + src + 1) * inner),
        (o * frames + f) * inner,
      );
    }
  }
  return f32(audio.shape, out);
}

/**
 * Per frame, the mouth change between two videos (1, 3, F, H, W):
 * `c[f] = sum_{c,p} w_p |a[c, f, p] - b[c, f, p]| / (3 sum_p w_p)`, `w` the mouth mask at the frame size.
 */
export function mouthChange(base: F32Tensor, perturbed: F32Tensor, mouth: Float32Array): number[] {
  return regionMeanAbsDiff("mouth change", base, perturbed, mouth);
}

/** Runs a clip on the given audio and returns its video (1, 3, F, H, W), same noise every call. */
export type ClipRunner = (audio: F32Tensor) => Promise<F32Tensor>;

/** Occlusion attribution of a clip. */
export interface Occlusion {
  /** The windows silenced, one row each. */
  windows: number[];
  frames: number;
  /** (windows, F): `change[k, f] = mouthChange(run(audio), run(silence(audio, k)))[f]`. */
  change: F32Tensor;
}

/** Silences each window in turn (all by default) and measures the mouth change of every frame. */
export async function occlusionAttribution(
  run: ClipRunner,
  audio: F32Tensor,
  o: { axis: number; mouth: Float32Array; windows?: readonly number[]; fill?: Float32Array },
): Promise<Occlusion> {
  const { frames } = frameLayout("occlusion", audio, o.axis);
  const windows = [...(o.windows ?? Array.from({ length: frames }, (_, k) => k))];
  const base = await run(audio);
  const rows: number[] = [];
  for (const k of windows) {
    rows.push(...mouthChange(base, await run(silenceWindow(audio, k, o.axis, o.fill)), o.mouth));
  }
  const F = base.shape[2];
  return { windows, frames: F, change: f32([windows.length, F], Float32Array.from(rows)) };
}
