/**
 * The lock of a run directory: `run.lock`, holding the owner's pid, hostname and start time, exists while a
 * process works on the directory. The file is also locked with the kernel's advisory lock (flock), which the
 * kernel drops when its process dies, so a lock file left by a killed run is stale by construction and is
 * taken over at once; its pid and hostname name the holder in messages. Where the file system has no kernel
 * locks, staleness is decided by pid and hostname alone (`lockIsStale`).
 */
import { join } from "node:path";
import { pidAlive } from "../../util/process.ts";
import { RunDirError, RunDirLockedError } from "./run_errors.ts";

/** Name of the lock file inside a run directory. */
export const LOCK_FILE = "run.lock";

/** Who holds (or held) a run directory, as written in its lock file. */
export interface LockInfo {
  pid: number;
  hostname: string;
  /** ISO time the holder took the lock. */
  started: string;
}

/**
 * Whether a lock written by `holder` is stale judged by pid and hostname alone: its host is this one and its
 * process is gone. A lock of another host cannot be judged from here and counts as live.
 */
export function lockIsStale(holder: LockInfo, hostname = Deno.hostname()): boolean {
  return holder.hostname === hostname && !pidAlive(holder.pid);
}

function parseLockInfo(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text);
    if (Number.isInteger(v?.pid) && typeof v.hostname === "string") {
      return { pid: v.pid, hostname: v.hostname, started: String(v.started ?? "?") };
    }
  } catch { /* empty or torn: written by no finished holder */ }
  return undefined;
}

async function readFrom(file: Deno.FsFile): Promise<string> {
  await file.seek(0, Deno.SeekMode.Start);
  const dec = new TextDecoder();
  const buf = new Uint8Array(4096);
  let text = "";
  for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
    text += dec.decode(buf.subarray(0, n), { stream: true });
  }
  return text + dec.decode();
}

/** The open file is still the one at `path` (a releasing holder unlinks it; a waiter may hold the old one). */
async function stillAt(file: Deno.FsFile, path: string): Promise<boolean> {
  try {
    const [a, b] = [await file.stat(), await Deno.stat(path)];
    return a.ino === null || (a.ino === b.ino && a.dev === b.dev);
  } catch {
    return false;
  }
}

function lockedError(dir: string, path: string, holder: LockInfo | undefined): RunDirLockedError {
  const who = holder ? `pid ${holder.pid} on ${holder.hostname} since ${holder.started}` : "another process";
  return new RunDirLockedError(
    `run dir ${dir} is in use by ${who} (lock file ${path}); wait for that run to end or choose another --run-dir`,
  );
}

/** A held run-directory lock. */
export class RunLock {
  private constructor(
    /** The lock file. */
    readonly path: string,
    private file: Deno.FsFile | undefined,
    /** What this process wrote into the lock file. */
    readonly info: LockInfo,
    /** The holder of a stale lock this process took over, if any. */
    readonly tookOver: LockInfo | undefined,
  ) {}

  /**
   * Takes the lock of the existing directory `dir`, at once or not at all: a live holder is a
   * RunDirLockedError naming its pid and host; a stale lock (its process is gone) is taken over.
   */
  static async acquire(dir: string): Promise<RunLock> {
    const path = join(dir, LOCK_FILE);
    for (let attempt = 0; attempt < 5; attempt++) {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { read: true, write: true, create: true });
      } catch (e) {
        throw new RunDirError(`run dir ${dir}: cannot create its lock file (${(e as Error).message})`);
      }
      let kernel: boolean | undefined;
      try {
        kernel = await file.tryLock(true);
      } catch {
        kernel = undefined; // no advisory locks on this file system: pid and hostname decide
      }
      const holder = parseLockInfo(await readFrom(file));
      if (kernel === false || (kernel === undefined && holder && !lockIsStale(holder))) {
        file.close();
        throw lockedError(dir, path, holder);
      }
      if (!(await stillAt(file, path))) {
        file.close();
        continue;
      }
      const info: LockInfo = { pid: Deno.pid, hostname: Deno.hostname(), started: new Date().toISOString() };
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      await file.write(new TextEncoder().encode(JSON.stringify(info)));
      return new RunLock(path, file, info, holder);
    }
    throw new RunDirLockedError(`run dir ${dir}: its lock file ${path} keeps changing under another process`);
  }

  /** Removes the lock file and drops the kernel lock. Calling it twice is harmless. */
  async release(): Promise<void> {
    const file = this.file;
    if (!file) return;
    this.file = undefined;
    try {
      if (await stillAt(file, this.path)) await Deno.remove(this.path);
    } finally {
      file.close();
    }
  }
}
