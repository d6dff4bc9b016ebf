/**
 * Locating and running ffmpeg. The binary comes from the npm package `@ffmpeg-installer/ffmpeg` (a static
 * build inside the tarball). Deno does not run the package's postinstall (`chmod u+x`), so the first call makes
 * the binary executable, or copies it into a cache folder when the package folder is read-only.
 * `FFMPEG_PATH` in the environment overrides the package (e.g. a system ffmpeg).
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** ffmpeg could not be found, made executable, started, or it exited with an error. */
export class FfmpegError extends Error {
  override name = "FfmpegError";
}

let cachedPath: Promise<string> | undefined;

/** Absolute path of an executable ffmpeg (resolved once per process). */
export function ffmpegPath(): Promise<string> {
  cachedPath ??= locate().catch((e) => {
    cachedPath = undefined;
    throw e;
  });
  return cachedPath;
}

async function locate(): Promise<string> {
  const override = Deno.env.get("FFMPEG_PATH");
  if (override) {
    if (!isExecutable(override)) throw new FfmpegError(`FFMPEG_PATH=${override} is not an executable file`);
    return override;
  }
  let pkgPath: string;
  try {
    // The package throws a plain string at import time when its binary is missing: import lazily to catch it.
    const mod = await import("@ffmpeg-installer/ffmpeg");
    pkgPath = (mod.default as { path: string }).path;
  } catch (e) {
    throw new FfmpegError(
      `ffmpeg not found: the npm package @ffmpeg-installer/ffmpeg did not give a binary (${String(e)}); ` +
        `set FFMPEG_PATH to an ffmpeg executable`,
    );
  }
  return ensureExecutable(pkgPath, cacheBinDir());
}

/** Folder for a copy of the binary: `$HALLO_CACHE_DIR/bin`, else `<project>/.cache/bin`. */
function cacheBinDir(): string {
  const env = Deno.env.get("HALLO_CACHE_DIR");
  if (env) return join(env, "bin");
  const url = new URL("../../.cache/bin", import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url) : resolve(".cache", "bin");
}

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && st.mode !== null && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Returns `path` when it is executable; else tries `chmod` in place, then a copy in `cacheDir`
 * (reused when it has the same size). Throws FfmpegError naming both places when neither works.
 */
export function ensureExecutable(path: string, cacheDir: string): string {
  if (isExecutable(path)) return path;
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    throw new FfmpegError(`ffmpeg binary ${path} does not exist`);
  }
  try {
    Deno.chmodSync(path, (st.mode ?? 0o644) | 0o755);
    if (isExecutable(path)) return path;
  } catch { /* read-only package folder: fall through to the copy */ }
  const copy = join(cacheDir, "ffmpeg");
  try {
    const have = Deno.statSync(copy);
    if (have.size === st.size && isExecutable(copy)) return copy;
  } catch { /* no copy yet */ }
  try {
    Deno.mkdirSync(dirname(copy), { recursive: true });
    const tmp = `${copy}.${Deno.pid}.tmp`;
    Deno.copyFileSync(path, tmp);
    Deno.chmodSync(tmp, 0o755);
    Deno.renameSync(tmp, copy); // atomic, so a concurrent process never runs a half-written copy
  } catch (e) {
    throw new FfmpegError(
      `ffmpeg binary ${path} is not executable and could not be made so (chmod failed, and copying it to ` +
        `${copy} failed: ${(e as Error).message}); run 'chmod +x ${path}' or set FFMPEG_PATH`,
    );
  }
  if (!isExecutable(copy)) throw new FfmpegError(`copied ffmpeg to ${copy} but it is not executable`);
  return copy;
}

/** Options of one ffmpeg run. */
export interface FfmpegRunOptions {
  /** The file the run reads, named in error messages. */
  input?: string;
  /** Bytes fed to ffmpeg's stdin (use `pipe:0` as an input in `args`). */
  stdin?: Uint8Array;
  /** Collect stdout (default true); false sends it to /dev/null. */
  captureStdout?: boolean;
}

/** What a finished ffmpeg run produced. */
export interface FfmpegResult {
  stdout: Uint8Array;
  stderr: string;
}

const STDERR_TAIL = 4000;

function failure(args: readonly string[], code: number, stderr: string, input?: string): FfmpegError {
  const tail = stderr.trim().split("\n").slice(-6).join(" | ").slice(-600);
  const what = input ? `ffmpeg failed on ${input}` : `ffmpeg ${args.join(" ").slice(0, 200)} failed`;
  return new FfmpegError(`${what} (exit ${code}): ${tail || "no message"}`);
}

async function spawn(args: readonly string[], opts: FfmpegRunOptions): Promise<Deno.ChildProcess> {
  const bin = await ffmpegPath();
  try {
    return new Deno.Command(bin, {
      args: ["-hide_banner", ...(opts.stdin ? [] : ["-nostdin"]), ...args],
      stdin: opts.stdin ? "piped" : "null",
      stdout: opts.captureStdout === false ? "null" : "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    throw new FfmpegError(`could not start ffmpeg (${bin}): ${(e as Error).message}`);
  }
}

/** Keeps the last STDERR_TAIL characters of a stream (ffmpeg can be chatty on long inputs). */
async function readTail(stream: ReadableStream<Uint8Array>): Promise<string> {
  const dec = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += dec.decode(chunk, { stream: true });
    if (text.length > 2 * STDERR_TAIL) text = text.slice(-STDERR_TAIL);
  }
  return (text + dec.decode()).slice(-STDERR_TAIL);
}

async function feed(child: Deno.ChildProcess, data: Uint8Array): Promise<void> {
  const w = child.stdin.getWriter();
  try {
    await w.write(data);
    await w.close();
  } catch { /* ffmpeg closed its stdin early (e.g. bad input): its exit status tells why */ }
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of stream) {
    parts.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Runs ffmpeg with `args` (`-hide_banner -nostdin` are prepended; `-nostdin` is left out when `stdin` is given)
 * and waits for it. Throws FfmpegError with the tail of stderr, naming `opts.input`, on a non-zero exit.
 */
export async function runFfmpeg(args: readonly string[], opts: FfmpegRunOptions = {}): Promise<FfmpegResult> {
  const child = await spawn(args, opts);
  const stderrP = readTail(child.stderr);
  const stdoutP = opts.captureStdout === false ? Promise.resolve(new Uint8Array()) : collect(child.stdout);
  const feedP = opts.stdin ? feed(child, opts.stdin) : Promise.resolve();
  const [status, stdout, stderr] = await Promise.all([child.status, stdoutP, stderrP, feedP]);
  if (!status.success) throw failure(args, status.code, stderr, opts.input);
  return { stdout, stderr };
}

/** An ffmpeg process fed through stdin piece by piece (e.g. raw video frames for an encoder). */
export interface FfmpegSink {
  /** Writes bytes to ffmpeg's stdin, waiting while the pipe is full. Fails with FfmpegError if ffmpeg died. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes stdin and waits for ffmpeg; throws FfmpegError on a non-zero exit. */
  close(): Promise<FfmpegResult>;
  /** Kills ffmpeg (after an error on the caller's side). */
  abort(): Promise<void>;
}

/**
 * Starts ffmpeg reading from stdin (`args` should name `pipe:0` as an input) and returns a sink to feed it.
 * stdout is discarded unless the output is a file; use `opts.input` to name the data in errors.
 */
export async function ffmpegSink(
  args: readonly string[],
  opts: { input?: string } = {},
): Promise<FfmpegSink> {
  const child = await spawn(args, { stdin: new Uint8Array(), captureStdout: false, input: opts.input });
  const stderrP = readTail(child.stderr);
  const writer = child.stdin.getWriter();
  const fail = async (): Promise<never> => {
    const [status, stderr] = await Promise.all([child.status, stderrP]);
    throw failure(args, status.code, stderr, opts.input);
  };
  return {
    async write(bytes) {
      try {
        await writer.write(bytes);
      } catch {
        await fail();
      }
    },
    async close() {
      try {
        await writer.close();
      } catch { /* ffmpeg already closed its end: its status says why */ }
      const [status, stderr] = await Promise.all([child.status, stderrP]);
      if (!status.success) throw failure(args, status.code, stderr, opts.input);
      return { stdout: new Uint8Array(), stderr };
    },
    async abort() {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await writer.abort().catch(() => {});
      await child.status;
      await stderrP.catch(() => "");
    },
  };
}

/**
 * Runs ffmpeg and yields its stdout as it arrives (for decoding long files without holding them whole).
 * Throws FfmpegError after the last chunk if ffmpeg failed. Stopping the iteration early kills ffmpeg.
 */
export async function* streamFfmpeg(
  args: readonly string[],
  opts: Omit<FfmpegRunOptions, "captureStdout"> = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const child = await spawn(args, opts);
  const stderrP = readTail(child.stderr);
  const feedP = opts.stdin ? feed(child, opts.stdin) : Promise.resolve();
  let finished = false;
  try {
    for await (const chunk of child.stdout) yield chunk;
    const [status, stderr] = await Promise.all([child.status, stderrP, feedP]);
    finished = true;
    if (!status.success) throw failure(args, status.code, stderr, opts.input);
  } finally {
    if (!finished) {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await child.status;
      await stderrP.catch(() => "");
    }
  }
}
