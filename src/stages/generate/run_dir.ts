/**
 * The run directory, the one module that reads and writes it. Layout:
 *
 * ```
 * run.json              the run record: identity (what the frames depend on), geometry, status, every
 *                       finished clip with the sha256 of its files, and free fields (command, timings, ...)
 * run.lock              present while a process works on the directory (see run_lock.ts)
 * clips/NNNN.rgb        clip NNNN's frames, packed RGB24, frames_per_clip x height x width x 3 bytes
 * clips/NNNN.motion.f32 the motion frames the next clip is conditioned on, float32 (M, 3, H, W)
 * clips/NNNN.steps.safetensors  with `recordSteps`: what re-runs any step of the clip (run_steps.ts)
 * clips/NNNN.measures.json  what was measured while the clip sampled (clip_measures.ts), its sha256 in run.json
 * clip-NNNN.activations-*.safetensors  an activation cache's spill files (inspect/cache.ts)
 * ```
 *
 * Every file is written to a temporary name, flushed and renamed, and a clip counts as finished only once
 * run.json lists it with its checksums, so a killed run loses at most the clip in progress. `RunDir.open`
 * takes the lock and, for `resume`, refuses a run of another identity before anything is written;
 * `begin` verifies the finished clips (a damaged one and those after it are computed again); readers
 * (`readRunFrames`, `runFrame`) verify every clip they hand out.
 *
 * @example
 * ```ts
 * const run = await RunDir.open("out.run", { identity, resume: true });
 * let ok = false;
 * try {
 *   const start = await run.begin({ clips, audioLength, width, height, framesPerClip: 16, motionFrames: 2 });
 *   for (let t = start; t < clips; t++) await run.writeClip(t, frames, motion, seconds);
 *   await run.complete();
 *   ok = true;
 * } finally {
 *   await run.close({ failed: !ok });
 * }
 * ```
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { RunDirError, RunPathError } from "./run_errors.ts";
import {
  identityDifference,
  RUN_FORMAT,
  type RunIdentity,
  runIdentityOfFiles,
  type RunIdentityOptions,
} from "./run_identity.ts";
import { LOCK_FILE, type LockInfo, RunLock } from "./run_lock.ts";
import { encodeSteps, readRecordedStep, type RecordedStep, type RecordedSteps } from "./run_steps.ts";
import { writeSafetensors } from "../../weights/safetensors_write.ts";
import type { ClipMeasures } from "./clip_measures.ts";

export { RunDirError, RunDirLockedError, RunPathError } from "./run_errors.ts";
export {
  fileSha256,
  identityDifference,
  makeRunIdentity,
  RUN_FORMAT,
  type RunIdentity,
  runIdentityOfFiles,
  type RunIdentityOptions,
  weightsIdentity,
} from "./run_identity.ts";
export { type LockInfo, lockIsStale, RunLock } from "./run_lock.ts";

const clipName = (i: number) => String(i).padStart(4, "0");

/** Paths of a run directory's files. */
export const runFiles = {
  record: (dir: string) => join(dir, "run.json"),
  lock: (dir: string) => join(dir, LOCK_FILE),
  clips: (dir: string) => join(dir, "clips"),
  frames: (dir: string, i: number) => join(dir, "clips", `${clipName(i)}.rgb`),
  motion: (dir: string, i: number) => join(dir, "clips", `${clipName(i)}.motion.f32`),
  steps: (dir: string, i: number) => join(dir, "clips", `${clipName(i)}.steps.safetensors`),
  measures: (dir: string, i: number) => join(dir, "clips", `${clipName(i)}.measures.json`),
  /** Spill-file prefix of clip `i`'s activation cache (the files go in the run dir itself). */
  cachePrefix: (i: number) => `clip-${clipName(i)}.`,
};

/**
 * Step `step` of clip `clip` of a run recorded with `recordSteps`: the clip's conditioning, the latents the
 * step saw, its guided prediction and the latents after it.
 */
export async function readRunStep(dir: string, clip: number, step: number): Promise<RecordedStep> {
  const rec = await readRunRecord(dir);
  if (!Number.isInteger(clip) || clip < 0 || clip >= rec.finished.length) {
    throw new RunDirError(`run dir ${dir}: clip ${clip} is not finished (${rec.finished.length} finished)`);
  }
  const file = runFiles.steps(dir, clip);
  try {
    await Deno.stat(file);
  } catch {
    throw new RunDirError(
      `run dir ${dir}: clip ${clip} has no recorded steps (${file}); run with --record-steps`,
    );
  }
  return readRecordedStep(file, step);
}

/** The shape of a run's clips, fixed when the clip loop begins. */
export interface RunLayout {
  /** Clips of the run. */
  clips: number;
  /** Frames of the video (upstream's audio_length; the last clip may be padding). */
  audioLength: number;
  width: number;
  height: number;
  framesPerClip: number;
  motionFrames: number;
}

/** A finished clip as run.json lists it. */
export interface FinishedClip {
  clip: number;
  frames_sha256: string;
  motion_sha256: string;
  seconds: number;
  /** sha256 of `clips/NNNN.measures.json`, when the clip was measured. */
  measures_sha256?: string;
}

/** run.json. Free fields (command, settings, inputs, timings, output, ...) sit beside these. */
export interface RunRecord {
  format: number;
  identity: RunIdentity;
  status: "running" | "complete";
  clips: number;
  audio_length: number;
  geometry: { width: number; height: number; frames_per_clip: number; motion_frames: number };
  /** Finished clips 0..n-1, in order. */
  finished: FinishedClip[];
  [extra: string]: unknown;
}

/** What a run directory holds, for readers. */
export interface RunGeometry {
  width: number;
  height: number;
  clips: number;
  /** Frames of the video (audio_length, at most clips x framesPerClip). */
  frames: number;
  framesPerClip: number;
  /** Clips finished so far (all of them in a complete run). */
  finished: number;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

/** Writes `data` to `path` through a flushed temporary file and a rename: the file is whole or absent. */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    for (let done = 0; done < bytes.length;) done += await f.write(bytes.subarray(done));
    await f.syncData();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}

/** Reads and checks a run directory's run.json. */
export async function readRunRecord(dir: string): Promise<RunRecord> {
  const file = runFiles.record(dir);
  let rec: Partial<RunRecord>;
  try {
    rec = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    throw new RunDirError(`${file}: cannot read the run record (${firstLine(e)})`);
  }
  // Records of earlier versions have an identity but another (or no) format.
  if (
    rec !== null && typeof rec === "object" && (rec.format ?? rec.identity) !== undefined &&
    rec.format !== RUN_FORMAT
  ) {
    throw new RunDirError(
      `${file}: written by another version of hallo-lab (run format ${rec.format ?? 1}, this one reads ` +
        `${RUN_FORMAT}); run it again without --resume`,
    );
  }
  const g = rec?.geometry;
  const ok = rec !== null && typeof rec === "object" && Number.isInteger(rec.clips) &&
    Number.isInteger(rec.audio_length) && Array.isArray(rec.finished) && typeof g === "object" &&
    g !== null && [g.width, g.height, g.frames_per_clip, g.motion_frames].every(Number.isInteger);
  if (!ok) {
    throw new RunDirError(
      `${file}: not a run record of format ${RUN_FORMAT} (clips, audio_length, geometry, finished missing)`,
    );
  }
  return rec as RunRecord;
}

/** The geometry of a run directory, from its run.json. */
export async function runGeometry(dir: string): Promise<RunGeometry> {
  return recordGeometry(await readRunRecord(dir));
}

/** The geometry a run record describes. */
export function recordGeometry(rec: RunRecord): RunGeometry {
  const g = rec.geometry;
  return {
    width: g.width,
    height: g.height,
    clips: rec.clips,
    frames: Math.min(rec.audio_length, rec.clips * g.frames_per_clip),
    framesPerClip: g.frames_per_clip,
    finished: rec.finished.length,
  };
}

/** Why clip `i`'s files do not match the record, or undefined when they do. */
async function clipProblem(
  dir: string,
  rec: RunRecord,
  i: number,
  want: "frames" | "motion" | "both",
): Promise<{ problem?: string; frames?: Uint8Array; motion?: Uint8Array }> {
  const entry = rec.finished[i];
  if (!entry || entry.clip !== i) return { problem: `clip ${i} is not finished` };
  const g = rec.geometry;
  const sizes = {
    frames: g.frames_per_clip * g.width * g.height * 3,
    motion: g.motion_frames * 3 * g.width * g.height * 4,
  };
  const out: { frames?: Uint8Array; motion?: Uint8Array } = {};
  for (const kind of want === "both" ? (["frames", "motion"] as const) : [want]) {
    const file = runFiles[kind](dir, i);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch {
      return { problem: `${file} is missing` };
    }
    if (bytes.length !== sizes[kind]) {
      return { problem: `${file} has ${bytes.length} bytes, not ${sizes[kind]}` };
    }
    if (sha256(bytes) !== entry[`${kind}_sha256`]) {
      return { problem: `${file} does not match its sha256 in run.json (damaged)` };
    }
    out[kind] = bytes;
  }
  if (want === "both" && entry.measures_sha256 !== undefined) {
    const { problem } = await measuresFile(dir, entry);
    if (problem) return { problem };
  }
  return out;
}

/** Clip `entry`'s measures file, or why it does not match its sha256 in run.json. */
async function measuresFile(
  dir: string,
  entry: FinishedClip,
): Promise<{ problem?: string; bytes?: Uint8Array }> {
  const file = runFiles.measures(dir, entry.clip);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch {
    return { problem: `${file} is missing` };
  }
  if (sha256(bytes) !== entry.measures_sha256) {
    return { problem: `${file} does not match its sha256 in run.json (damaged)` };
  }
  return { bytes };
}

/**
 * What was measured while each finished clip sampled (`ClipMeasures`, or undefined for a clip measured with
 * nothing), each file verified against its sha256 in run.json; with `g`, only its `finished` clips.
 *
 * @example
 * ```ts ignore
 * const [clip0] = await readRunMeasures("out.run");
 * console.log(clip0?.guidance?.filter((r) => r.region === "lip")); // |cond - uncond| and update per step
 * ```
 */
export async function readRunMeasures(
  dir: string,
  g?: Pick<RunGeometry, "finished">,
): Promise<(ClipMeasures | undefined)[]> {
  const rec = await readRunRecord(dir);
  const n = Math.min(g?.finished ?? rec.finished.length, rec.finished.length);
  const out: (ClipMeasures | undefined)[] = [];
  for (const entry of rec.finished.slice(0, n)) {
    if (entry.measures_sha256 === undefined) {
      out.push(undefined);
      continue;
    }
    const { problem, bytes } = await measuresFile(dir, entry);
    if (problem) throw new RunDirError(`run dir ${dir}: ${problem}`);
    out.push(JSON.parse(new TextDecoder().decode(bytes)));
  }
  return out;
}

async function verifiedClip(dir: string, rec: RunRecord, i: number): Promise<Uint8Array> {
  const r = await clipProblem(dir, rec, i, "frames");
  if (r.problem) throw new RunDirError(`run dir ${dir}: ${r.problem}`);
  return r.frames!;
}

/**
 * The frames of a run directory's video in order, each clip verified against its checksum, trimmed to the
 * video's length; with `g` (e.g. `finished` clips of a partial run) only the frames it counts.
 */
export async function* readRunFrames(dir: string, g?: RunGeometry): AsyncGenerator<Uint8Array> {
  const rec = await readRunRecord(dir);
  const geo = g ?? recordGeometry(rec);
  const size = geo.width * geo.height * 3;
  let left = geo.frames;
  for (let c = 0; c < geo.clips && left > 0; c++) {
    const all = await verifiedClip(dir, rec, c);
    for (let i = 0; i < all.length / size && left > 0; i++, left--) {
      yield all.subarray(i * size, (i + 1) * size);
    }
  }
}

/** Frame `index` of a run directory's video as an RGB image (its clip verified against its checksum). */
export async function runFrame(
  dir: string,
  index: number,
  g?: RunGeometry,
): Promise<{ width: number; height: number; data: Uint8Array }> {
  const rec = await readRunRecord(dir);
  const geo = g ?? recordGeometry(rec);
  if (!Number.isInteger(index) || index < 0 || index >= geo.frames) {
    throw new RunDirError(`${dir}: frame ${index} out of range (${geo.frames} frames)`);
  }
  const size = geo.width * geo.height * 3;
  const all = await verifiedClip(dir, rec, Math.floor(index / geo.framesPerClip));
  const at = (index % geo.framesPerClip) * size;
  return { width: geo.width, height: geo.height, data: all.slice(at, at + size) };
}

/** The file behind `path` (symlinks followed; for a missing file its folder's real path plus its name). */
function realish(path: string): string {
  const abs = resolve(path);
  try {
    return Deno.realPathSync(abs);
  } catch {
    try {
      return join(Deno.realPathSync(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

function sameFile(a: string, b: string): boolean {
  if (realish(a) === realish(b)) return true;
  try {
    const [x, y] = [Deno.statSync(a), Deno.statSync(b)];
    return x.ino !== null && x.ino === y.ino && x.dev === y.dev; // hard links
  } catch {
    return false;
  }
}

/** Whether `path` is the run directory itself or one of the files it owns. */
function ownedByRunDir(path: string, runDir: string): boolean {
  const rel = relative(realish(runDir), realish(path));
  if (rel === "") return true;
  if (rel.startsWith("..") || rel.startsWith(sep)) return false;
  const top = rel.split(sep)[0];
  return top === "clips" || top.startsWith("run.json") || top === LOCK_FILE;
}

/**
 * Refuses, before any work, outputs that would overwrite an input: `outputs` (name -> path, e.g.
 * `{"--out": "o.mp4"}`) that resolve to one of `inputs` (symlinks and hard links included) or to the run
 * directory's own files, and inputs that are files of the run directory (a fresh run replaces those).
 */
export function checkRunPaths(
  outputs: Record<string, string>,
  inputs: Record<string, string>,
  runDir?: string,
): void {
  for (const [o, out] of Object.entries(outputs)) {
    for (const [i, inp] of Object.entries(inputs)) {
      if (sameFile(out, inp)) {
        throw new RunPathError(`${o} ${out} is the ${i} file; refusing to overwrite an input`);
      }
    }
    if (runDir && ownedByRunDir(out, runDir)) {
      throw new RunPathError(`${o} ${out} is inside the run dir ${runDir}'s own files; choose another path`);
    }
  }
  if (!runDir) return;
  for (const [i, inp] of Object.entries(inputs)) {
    if (ownedByRunDir(inp, runDir)) {
      throw new RunPathError(`${i} ${inp} is a file of the run dir ${runDir}; copy it elsewhere first`);
    }
  }
}

/** Options of `RunDir.open`. */
export interface OpenRunOptions {
  /** What the frames of this run depend on (`makeRunIdentity` / `runIdentityOfFiles`). */
  identity: RunIdentity;
  /** Continue the run recorded in the directory: it must exist with a run.json of the same identity. */
  resume?: boolean;
}

/** A run directory opened by this process: locked, and for a resume checked against the identity. */
export class RunDir {
  /** Clips found damaged or incomplete by `begin` (computed again), one line each. */
  readonly problems: string[] = [];
  #record: RunRecord | undefined;
  #finishedHere = 0;

  private constructor(
    /** The directory. */
    readonly dir: string,
    /** The identity of this run. */
    readonly identity: RunIdentity,
    /** Whether this run continues the recorded one. */
    readonly resume: boolean,
    private lock: RunLock,
    private created: boolean,
    record: RunRecord | undefined,
  ) {
    this.#record = record;
  }

  /**
   * Opens `dir` for a run of `o.identity`, before any heavy work: takes the lock (a RunDirLockedError when
   * another live process holds it; a stale lock is taken over). A fresh run creates the directory; a resume
   * needs it with a run.json of the same identity and otherwise is a one-line RunDirError naming what
   * differs, with nothing written or created.
   */
  static async open(dir: string, o: OpenRunOptions): Promise<RunDir> {
    let created = false;
    if (o.resume) {
      try {
        await Deno.stat(runFiles.record(dir));
      } catch {
        throw new RunDirError(`run dir ${dir} has no run.json to resume from`);
      }
    } else {
      try {
        await Deno.mkdir(dirname(resolve(dir)), { recursive: true });
        await Deno.mkdir(dir);
        created = true;
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) {
          throw new RunDirError(`run dir ${dir}: cannot be created (${firstLine(e)})`);
        }
        if (!(await Deno.stat(dir)).isDirectory) throw new RunDirError(`run dir ${dir} is not a directory`);
      }
    }
    let lock: RunLock;
    try {
      lock = await RunLock.acquire(dir);
    } catch (e) {
      if (created) await Deno.remove(dir).catch(() => {});
      throw e;
    }
    let record: RunRecord | undefined;
    if (o.resume) {
      try {
        record = await readRunRecord(dir);
        const diff = identityDifference(record.identity, o.identity);
        if (diff) throw new RunDirError(`run dir ${dir} was made with ${diff}`);
      } catch (e) {
        await lock.release();
        throw e;
      }
    }
    return new RunDir(dir, o.identity, Boolean(o.resume), lock, created, record);
  }

  /** The holder of a stale lock this process took over, if any. */
  get tookOverLock(): LockInfo | undefined {
    return this.lock.tookOver;
  }

  /** The run record as last written (undefined before `begin` on a fresh run). */
  get record(): Readonly<RunRecord> | undefined {
    return this.#record;
  }

  /**
   * Starts the clip loop with `layout` and the free fields `extra` for run.json; returns how many clips
   * are finished: on a resume, the clips from 0 on whose files match their checksums (a damaged clip and
   * those after it are computed again, noted in `problems`), else 0 (older clip files are removed).
   */
  async begin(layout: RunLayout, extra: Record<string, unknown> = {}): Promise<number> {
    const geometry = {
      width: layout.width,
      height: layout.height,
      frames_per_clip: layout.framesPerClip,
      motion_frames: layout.motionFrames,
    };
    let finished: FinishedClip[] = [];
    const old = this.#record;
    if (this.resume && old) {
      const same = old.clips === layout.clips && old.audio_length === layout.audioLength &&
        JSON.stringify(old.geometry) === JSON.stringify(geometry);
      if (!same) {
        throw new RunDirError(
          `run dir ${this.dir} holds ${old.clips} clips of ${JSON.stringify(old.geometry)}, this run makes ` +
            `${layout.clips} of ${JSON.stringify(geometry)}`,
        );
      }
      for (let i = 0; i < old.finished.length; i++) {
        const { problem } = await clipProblem(this.dir, old, i, "both");
        if (problem) {
          this.problems.push(`${problem}: clip ${i} and those after it are computed again`);
          break;
        }
        finished.push(old.finished[i]);
      }
    } else {
      await this.removeClipFiles();
      finished = [];
    }
    await Deno.mkdir(runFiles.clips(this.dir), { recursive: true });
    await this.write({
      ...(this.resume ? old : {}),
      ...extra,
      format: RUN_FORMAT,
      identity: this.identity,
      status: "running",
      clips: layout.clips,
      audio_length: layout.audioLength,
      geometry,
      finished,
    });
    return finished.length;
  }

  /** The motion frames clip `i` left for the next clip, verified against its checksum. */
  async readMotion(i: number): Promise<Float32Array> {
    const r = await clipProblem(this.dir, this.requireRecord(), i, "motion");
    if (r.problem) throw new RunDirError(`run dir ${this.dir}: ${r.problem}`);
    const m = r.motion!;
    return new Float32Array(m.buffer, m.byteOffset, m.byteLength / 4);
  }

  /**
   * Records clip `i` (the next one) as finished: its files (and what was measured while it sampled, if
   * anything) written atomically, their sha256 in run.json.
   */
  async writeClip(
    i: number,
    frames: Uint8Array,
    motion: Float32Array,
    seconds: number,
    measures?: ClipMeasures,
  ): Promise<void> {
    const rec = this.requireRecord();
    if (i !== rec.finished.length) {
      throw new RunDirError(
        `run dir ${this.dir}: clip ${i} written after ${rec.finished.length} finished clips`,
      );
    }
    const mot = new Uint8Array(motion.buffer, motion.byteOffset, motion.byteLength);
    await writeAtomic(runFiles.frames(this.dir, i), frames);
    await writeAtomic(runFiles.motion(this.dir, i), mot);
    const entry: FinishedClip = {
      clip: i,
      frames_sha256: sha256(frames),
      motion_sha256: sha256(mot),
      seconds,
    };
    if (measures) {
      const json = new TextEncoder().encode(JSON.stringify(measures));
      await writeAtomic(runFiles.measures(this.dir, i), json);
      entry.measures_sha256 = sha256(json);
    }
    await this.write({ ...rec, finished: [...rec.finished, entry] });
    this.#finishedHere++;
  }

  /** Writes clip `i`'s recorded steps (before `writeClip(i)`, which makes the clip count as finished). */
  async writeSteps(i: number, steps: RecordedSteps): Promise<void> {
    const rec = this.requireRecord();
    if (i !== rec.finished.length) {
      throw new RunDirError(
        `run dir ${this.dir}: steps of clip ${i} written after ${rec.finished.length} clips`,
      );
    }
    const file = runFiles.steps(this.dir, i);
    const { tensors, metadata } = encodeSteps(steps);
    writeSafetensors(`${file}.tmp`, tensors, metadata);
    await Deno.rename(`${file}.tmp`, file);
  }

  /** Merges `fields` into run.json (the record's own fields cannot be replaced this way). */
  async update(fields: Record<string, unknown>): Promise<void> {
    const rec = this.requireRecord();
    const own = ["format", "identity", "status", "clips", "audio_length", "geometry", "finished"];
    const free = Object.fromEntries(Object.entries(fields).filter(([k]) => !own.includes(k)));
    await this.write({ ...rec, ...free });
  }

  /** Marks the run complete (every clip finished). */
  async complete(): Promise<void> {
    const rec = this.requireRecord();
    if (rec.finished.length !== rec.clips) {
      throw new RunDirError(`run dir ${this.dir}: ${rec.finished.length} of ${rec.clips} clips finished`);
    }
    await this.write({ ...rec, status: "complete" });
  }

  /** The frames of the video, verified (see `readRunFrames`). */
  frames(): AsyncGenerator<Uint8Array> {
    return readRunFrames(this.dir);
  }

  /**
   * Releases the lock. After a failure (`failed`), a directory this run created and finished no clip in is
   * removed, so a failed run leaves nothing behind; a directory that held anything before is kept.
   */
  async close(o: { failed?: boolean } = {}): Promise<void> {
    await this.lock.release();
    if (o.failed && this.created && this.#finishedHere === 0) {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }

  private requireRecord(): RunRecord {
    if (!this.#record) throw new RunDirError(`run dir ${this.dir}: begin() was not called`);
    return this.#record;
  }

  private async write(rec: RunRecord): Promise<void> {
    await writeAtomic(runFiles.record(this.dir), JSON.stringify(rec, null, 2));
    this.#record = rec;
  }

  /** Clip files (and temporary files) of an earlier run: a fresh run must never mix them with its own. */
  private async removeClipFiles(): Promise<void> {
    try {
      for await (const e of Deno.readDir(runFiles.clips(this.dir))) {
        if (/^\d{4}\.(rgb|motion\.f32|json|steps\.safetensors|measures\.json)(\.tmp)?$/.test(e.name)) {
          await Deno.remove(join(runFiles.clips(this.dir), e.name));
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

/** The files of a run, for `openRunFor`. */
export interface RunPaths {
  image: string;
  audio: string;
  /** The video to write. */
  out: string;
  runDir: string;
  weightsDir: string;
  resume?: boolean;
}

/**
 * Opens the run directory of a run of `p.image` and `p.audio` with options `o`, before any heavy work:
 * refuses an `--out` over an input or the run directory's files (RunPathError), hashes the inputs, and
 * opens `p.runDir` (see `RunDir.open`).
 */
export async function openRunFor(p: RunPaths, o: RunIdentityOptions): Promise<RunDir> {
  checkRunPaths({ "--out": p.out }, { "--image": p.image, "--audio": p.audio }, p.runDir);
  const identity = await runIdentityOfFiles(p.image, p.audio, o, p.weightsDir);
  return await RunDir.open(p.runDir, { identity, resume: p.resume });
}
