/**
 * The one event contract for progress and inspection, shared by the sampler's consumers, the clip loop, sweeps,
 * the CLI progress bar and notebooks: a single `HalloEvent` type told apart by `kind`, each event saying where it
 * happened (which run of a sweep, which clip of a video) and, for steps, carrying the step with its shaped
 * tensors.
 */
import type { SamplerStep } from "./sampler.ts";

/** Index and count of something in progress (0-based index). */
export interface EventPosition {
  index: number;
  count: number;
}

/** Where an event happened; absent fields mean "not inside one" (a single video has no run). */
export interface EventPlace {
  /** The run of a sweep, with its label (e.g. `cfg3.5_pose1_face1_lip1`). */
  run?: EventPosition & { label: string };
  /** The clip of the video. */
  clip?: EventPosition;
}

/** One event of a generation; `kind` says which. */
export type HalloEvent =
  & EventPlace
  & (
    /** A long phase begins (preparing, loading networks, writing the grid): one line for a log. */
    | { kind: "phase"; message: string }
    /** The image and audio are prepared: what they warned about, and the seconds each took. */
    | { kind: "prepared"; warnings: readonly string[]; timings: Readonly<Record<string, number>> }
    /** A run of a sweep begins (`run` is set). */
    | { kind: "run" }
    /** One sampler step of a clip finished (`clip` is set inside a video). */
    | { kind: "step"; step: SamplerStep }
    /** A clip is finished and on disk (`clip` is set); `bankCached` when its reference bank was reused. */
    | { kind: "clip"; seconds: number; bankCached: boolean }
  );

/** The one callback every stage that reports progress takes. */
export type OnEvent = (e: HalloEvent) => void;

/**
 * Fraction of a generation done after `e` (a step event), counting runs x clips x steps; undefined for events
 * that are not steps.
 */
export function stepProgress(e: HalloEvent): { done: number; total: number } | undefined {
  if (e.kind !== "step") return undefined;
  const s = e.step;
  const clip = e.clip ?? { index: 0, count: 1 };
  const run = e.run ?? { index: 0, count: 1 };
  return {
    done: (run.index * clip.count + clip.index) * s.total + s.index + 1,
    total: run.count * clip.count * s.total,
  };
}
