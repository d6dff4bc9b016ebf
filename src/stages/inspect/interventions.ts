/**
 * Interventions (activation patching, prompt-to-prompt's attention control in spirit) as typed data: what a
 * denoising UNet call sees is replaced at chosen steps, and the rest of the run stays the same (same noise),
 * so two runs differ only there. Each intervention is plain JSON for the run record; applying one is a pure
 * function over the conditioning tensors of a UNet call (the fields of `NoiseInputs` in
 * src/stages/networks/unets.ts it touches). With guidance (batch 2, uncond first) only the cond half changes:
 * the uncond half is upstream's zero audio / projected zero face embedding, which guidance subtracts.
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import { InspectError } from "./errors.ts";
import { shiftWindows, silenceWindow } from "./occlusion.ts";

/** Sampler steps (0-based) an intervention applies at; absent = every step. */
export interface AtSteps {
  steps?: readonly number[];
}

/** Bank layers (transformer block paths) an intervention applies to; absent = every layer. */
export interface AtLayers {
  layers?: readonly string[];
}

/** A named, typed change to what the denoising UNet sees. */
export type Intervention =
  /** The cond audio tokens of another clip (source: `audio`, that clip's cond audio (1, F, A, D)). */
  | { kind: "audio-clip"; clip: number } & AtSteps
  /** Zero cond audio (upstream's uncond audio), in the windows (frames) listed or all. */
  | { kind: "audio-silence"; windows?: readonly number[] } & AtSteps
  /** The cond audio shifted by `by` windows: frame f hears frame clamp(f - by). */
  | { kind: "audio-shift"; by: number } & AtSteps
  /** The reference rows of the bank from another image (source: `bank`, that image's reader bank). */
  | { kind: "bank-image"; image: string } & AtSteps & AtLayers
  /** Zero reference rows in the bank. */
  | { kind: "bank-zero" } & AtSteps & AtLayers
  /** The motion-frame rows of the bank from another clip (source: `bank`, a bank holding those rows). */
  | { kind: "motion-frames-clip"; clip: number } & AtSteps & AtLayers
  /** Zero motion-frame rows in the bank. */
  | { kind: "motion-frames-zero" } & AtSteps & AtLayers
  /** The cond face embedding (image-proj tokens) of another image (source: `faceEmbedding`, (1, tokens, dim)). */
  | { kind: "face-embedding-image"; image: string } & AtSteps
  /** The cond face embedding replaced by the uncond one (the identity removed). */
  | { kind: "face-embedding-uncond" } & AtSteps
  /** Every level of one region's mask pyramid set to `fill` (0 removes the branch's region, 1 opens it fully). */
  | { kind: "mask"; region: "full" | "face" | "lip"; fill: number } & AtSteps;

/** The kinds, for parsing and listing. */
export const INTERVENTION_KINDS = [
  "audio-clip",
  "audio-silence",
  "audio-shift",
  "bank-image",
  "bank-zero",
  "motion-frames-clip",
  "motion-frames-zero",
  "face-embedding-image",
  "face-embedding-uncond",
  "mask",
] as const satisfies readonly Intervention["kind"][];

/** One bank entry as the reader is fed: (b*(1+m), l, c), rows `(b s)`, s = 0 the reference, 1..m motion frames. */
export interface BankLike {
  path: string;
  data: F32Tensor;
}

/** The conditioning tensors of one denoising UNet call an intervention may replace (a subset of NoiseInputs). */
export interface Conditioning {
  /** (B, tokens, dim) image-proj tokens, uncond first when B = 2. */
  encoderHiddenStates: F32Tensor;
  /** (B, F, A, D), uncond (zeros) first when B = 2. */
  audioEmbedding: F32Tensor;
  fullMask: F32Tensor[];
  faceMask: F32Tensor[];
  lipMask: F32Tensor[];
  bank: BankLike[];
}

/** The tensors an intervention's `clip`/`image` names were resolved to by the caller. */
export interface InterventionSources {
  audio?: F32Tensor;
  bank?: readonly BankLike[];
  faceEmbedding?: F32Tensor;
}

/** Whether `iv` applies at sampler step `step`. */
export function appliesAt(iv: Intervention, step: number): boolean {
  return iv.steps === undefined || iv.steps.includes(step);
}

/** Which source tensor an intervention needs, if any. */
export function sourceNeeded(iv: Intervention): keyof InterventionSources | undefined {
  switch (iv.kind) {
    case "audio-clip":
      return "audio";
    case "bank-image":
    case "motion-frames-clip":
      return "bank";
    case "face-embedding-image":
      return "faceEmbedding";
    default:
      return undefined;
  }
}

/** The cond half of a (B, ...) tensor is rows [B-1] (B = 1 or 2); returns its element range. */
function condRange(name: string, t: F32Tensor): [number, number] {
  const B = t.shape[0];
  if (B !== 1 && B !== 2) throw new InspectError(`${name}: batch ${B}, expected 1 or 2 (uncond, cond)`);
  const per = t.data.length / B;
  return [(B - 1) * per, B * per];
}

/** `x` with its cond half replaced by `cond` (the length of one batch row). */
function withCond(name: string, x: F32Tensor, cond: Float32Array): F32Tensor {
  const [a, b] = condRange(name, x);
  if (cond.length !== b - a) {
    throw new InspectError(`${name}: replacement has ${cond.length} values, the cond half ${b - a}`);
  }
  const out = x.data.slice();
  out.set(cond, a);
  return f32(x.shape, out);
}

function condOf(name: string, x: F32Tensor): F32Tensor {
  const [a, b] = condRange(name, x);
  return f32([1, ...x.shape.slice(1)], x.data.slice(a, b));
}

function need<T>(iv: Intervention, v: T | undefined): T {
  if (v === undefined) {
    throw new InspectError(`intervention ${iv.kind}: its source ${sourceNeeded(iv)} was not given`);
  }
  return v;
}

/** The bank with rows of kind `rows` ("reference": s = 0; "motion": s >= 1) replaced, in the listed layers. */
function patchBank(
  iv: Intervention & AtLayers,
  bank: readonly BankLike[],
  batch: number,
  rows: "reference" | "motion",
  from?: readonly BankLike[],
): BankLike[] {
  const known = new Set(bank.map((e) => e.path));
  for (const l of iv.layers ?? []) {
    if (!known.has(l)) throw new InspectError(`intervention ${iv.kind}: no bank layer ${l}`);
  }
  return bank.map((e, i) => {
    if (iv.layers && !iv.layers.includes(e.path)) return e;
    const [n, l, c] = e.data.shape;
    if (n % batch !== 0) throw new InspectError(`bank ${e.path}: ${n} rows are not ${batch} copies`);
    const per = n / batch, row = l * c;
    const src = from?.[i];
    if (from && (src?.path !== e.path || src.data.shape.join() !== e.data.shape.join())) {
      throw new InspectError(
        `intervention ${iv.kind}: source bank entry ${i} does not match ${e.path} [${e.data.shape}]`,
      );
    }
    const out = e.data.data.slice();
    for (let b = 0; b < batch; b++) {
      for (let s = rows === "reference" ? 0 : 1; s < (rows === "reference" ? 1 : per); s++) {
        const at = (b * per + s) * row;
        if (src) out.set(src.data.data.subarray(at, at + row), at);
        else out.fill(0, at, at + row);
      }
    }
    return { path: e.path, data: f32(e.data.shape, out) };
  });
}

/**
 * `x` as the UNet sees it under `iv` (at a step where it applies): a new object whose changed fields are new
 * tensors; `x` and the sources are never written. Replacing a tensor with itself gives bit-identical values.
 */
export function applyIntervention<T extends Conditioning>(
  iv: Intervention,
  x: T,
  sources: InterventionSources = {},
): T {
  const audio = "audio_embedding";
  const batch = x.audioEmbedding.shape[0];
  switch (iv.kind) {
    case "audio-clip":
      return { ...x, audioEmbedding: withCond(audio, x.audioEmbedding, need(iv, sources.audio).data) };
    case "audio-silence": {
      let cond = condOf(audio, x.audioEmbedding);
      const windows = iv.windows ?? Array.from({ length: cond.shape[1] }, (_, f) => f);
      for (const w of windows) cond = silenceWindow(cond, w, 1);
      return { ...x, audioEmbedding: withCond(audio, x.audioEmbedding, cond.data) };
    }
    case "audio-shift":
      return {
        ...x,
        audioEmbedding: withCond(
          audio,
          x.audioEmbedding,
          shiftWindows(condOf(audio, x.audioEmbedding), iv.by, 1).data,
        ),
      };
    case "bank-image":
      return { ...x, bank: patchBank(iv, x.bank, batch, "reference", need(iv, sources.bank)) };
    case "bank-zero":
      return { ...x, bank: patchBank(iv, x.bank, batch, "reference") };
    case "motion-frames-clip":
      return { ...x, bank: patchBank(iv, x.bank, batch, "motion", need(iv, sources.bank)) };
    case "motion-frames-zero":
      return { ...x, bank: patchBank(iv, x.bank, batch, "motion") };
    case "face-embedding-image": {
      const e = "encoder_hidden_states";
      return {
        ...x,
        encoderHiddenStates: withCond(e, x.encoderHiddenStates, need(iv, sources.faceEmbedding).data),
      };
    }
    case "face-embedding-uncond": {
      const e = x.encoderHiddenStates;
      if (e.shape[0] !== 2) {
        throw new InspectError(`intervention ${iv.kind}: needs guidance (batch 2), got ${e.shape[0]}`);
      }
      return {
        ...x,
        encoderHiddenStates: withCond("encoder_hidden_states", e, e.data.slice(0, e.data.length / 2)),
      };
    }
    case "mask": {
      const key = `${iv.region}Mask` as const;
      return { ...x, [key]: x[key].map((m) => f32(m.shape, new Float32Array(m.data.length).fill(iv.fill))) };
    }
  }
}

/** An intervention with the tensors its `clip`/`image` names were resolved to (once per clip). */
export interface PlannedIntervention {
  intervention: Intervention;
  sources?: InterventionSources;
}

/** Applies, in order, every intervention of `list` that applies at `step`; each has its own sources. */
export function applyInterventions<T extends Conditioning>(
  list: readonly PlannedIntervention[],
  x: T,
  step: number,
): T {
  return list.reduce(
    (y, e) => (appliesAt(e.intervention, step) ? applyIntervention(e.intervention, y, e.sources) : y),
    x,
  );
}
