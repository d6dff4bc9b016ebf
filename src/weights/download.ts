/**
 * Downloads manifest files from the Hugging Face hub into a `pretrained_models/` folder, resumably and safely:
 * bytes go to `<final>.partial`, an interrupted transfer continues with an HTTP Range request on the next
 * run, and only a file that passes its format check and opens with the stages' readers is renamed to its final name (one that fails is kept
 * aside as `<final>.invalid`). Transfers go through @huggingface/hub: `fileDownloadInfo` resolves size,
 * ETag and URL (and Xet storage), and the Blob it leads to fetches `slice(offset)` with a Range header.
 */
import { formatBytes } from "../util/bytes.ts";
import { downloadFile, fileDownloadInfo, type FileDownloadInfoOutput } from "@huggingface/hub";
import { dirname, join } from "node:path";
import { MANIFEST, type WeightsFile, type WeightsManifest } from "./manifest.ts";
import { verifyFile, WeightsFormatError } from "./verify.ts";

/** Public hub used when `HF_ENDPOINT` is not set. */
export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** Environment variable giving the stall limit in seconds (default 60). */
export const STALL_ENV = "HALLO_DOWNLOAD_STALL_S";

/** Default stall limit: a transfer that receives nothing for this long is aborted. */
export const DEFAULT_STALL_MS = 60_000;

/** What went wrong, so a caller can decide whether to go on with the other files. */
export type DownloadErrorKind =
  | "not-found"
  | "auth"
  | "network"
  | "interrupted"
  | "invalid"
  | "disk"
  | "http"
  | "config";

/** A download failure with a one-line message fit to print as is. */
export class WeightsDownloadError extends Error {
  readonly kind: DownloadErrorKind;
  constructor(kind: DownloadErrorKind, message: string, options?: ErrorOptions) {
    super(message.replace(/\s*\n\s*/g, " "), options);
    this.name = "WeightsDownloadError";
    this.kind = kind;
  }
  /** Errors after which trying the next file is pointless (no network, refused credentials, disk). */
  get fatal(): boolean {
    return this.kind === "network" || this.kind === "auth" || this.kind === "disk" || this.kind === "config";
  }
}

/** Progress and outcome notifications, in order, for a progress display. */
export type DownloadEvent =
  | { type: "present"; file: WeightsFile; detail: string }
  | { type: "set-aside"; file: WeightsFile; invalidPath: string; problem: string }
  | { type: "plan"; files: { file: WeightsFile; size: number; offset: number }[]; totalBytes: number }
  | { type: "start"; file: WeightsFile; size: number; offset: number }
  | { type: "progress"; file: WeightsFile; bytes: number; size: number }
  | { type: "done"; file: WeightsFile; size: number; detail: string; resumedFrom: number }
  | { type: "error"; file: WeightsFile | null; error: WeightsDownloadError };

/** Options of {@link downloadWeights}. */
export interface DownloadOptions {
  /** The `pretrained_models/` folder to fill. */
  dir: string;
  files: readonly WeightsFile[];
  manifest?: WeightsManifest;
  /** Hub base URL; default `$HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Access token; default `$HF_TOKEN`. */
  token?: string;
  onEvent?: (event: DownloadEvent) => void;
  /** Give up on a request that sends nothing for this long (default `$HALLO_DOWNLOAD_STALL_S`, else 60 s). */
  stallTimeoutMs?: number;
  /** Replaces the global fetch (tests, proxies). */
  fetch?: typeof fetch;
}

/** Outcome of {@link downloadWeights}; `failed` is empty when every file is in place. */
export interface DownloadReport {
  downloaded: string[];
  present: string[];
  failed: { name: string; error: WeightsDownloadError }[];
  /** True when a fatal error stopped the run before every file was tried. */
  aborted: boolean;
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** Hub base URL from the option or `HF_ENDPOINT`, validated, without a trailing slash. */
export function hubEndpoint(endpoint?: string): string {
  const raw = endpoint ?? env("HF_ENDPOINT") ?? DEFAULT_ENDPOINT;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WeightsDownloadError("config", `HF_ENDPOINT '${raw}' is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new WeightsDownloadError("config", `HF_ENDPOINT '${raw}' is not an http(s) URL`);
  }
  return raw.replace(/\/+$/, "");
}

/** The stall limit in ms from the option, else `$HALLO_DOWNLOAD_STALL_S` (seconds), else 60 s. */
export function stallLimitMs(ms?: number): number {
  if (ms !== undefined) {
    if (!(Number.isFinite(ms) && ms > 0)) {
      throw new WeightsDownloadError("config", `stall limit must be a positive number of ms, got ${ms}`);
    }
    return ms;
  }
  const raw = env(STALL_ENV);
  if (raw === undefined) return DEFAULT_STALL_MS;
  const s = Number(raw);
  if (!(Number.isFinite(s) && s > 0)) {
    throw new WeightsDownloadError("config", `${STALL_ENV} '${raw}' is not a positive number of seconds`);
  }
  return s * 1000;
}

/** The URL layout every hub (and mirror) serves files at. */
export function resolveUrl(endpoint: string, repo: string, revision: string, path: string): string {
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/** Byte counts as the progress display and messages print them. */

/**
 * The useful part of an error: Deno's fetch throws "fetch failed" with the real cause attached, whose message
 * ends with the reason after a long URL prefix ("...: tcp connect error: Connection refused (os error 111)").
 */
function shortCause(e: unknown): string {
  let inner = e;
  for (let i = 0; i < 5 && inner instanceof Error && inner.cause !== undefined; i++) inner = inner.cause;
  const msg = inner instanceof Error ? inner.message : String(inner);
  const cut = msg.lastIndexOf("): ");
  return (cut >= 0 ? msg.slice(cut + 3) : msg).split("\n")[0];
}

/**
 * A timer that fires when nothing arrives for `ms`; `kick` on every chunk. Firing aborts the requests it
 * wrapped, and also rejects `stalled`, which callers race against every await on the network: Deno holds a
 * fetch's abort listener weakly, so once the Request object is garbage-collected (seconds into a transfer)
 * aborting the signal no longer reaches the response body, and a read on a silent connection waits forever.
 */
class Watchdog {
  readonly controller = new AbortController();
  /** Rejects with a StallError when the timer fires; never resolves. */
  readonly stalled: Promise<never>;
  #reject!: (e: unknown) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  constructor(readonly ms: number) {
    this.stalled = new Promise<never>((_, reject) => this.#reject = reject);
    // Nobody may be racing it when it fires (between two awaits): that is not an unhandled rejection.
    this.stalled.catch(() => {});
    this.kick();
  }
  kick(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.controller.abort(new DOMException("stalled", "TimeoutError"));
      this.#reject(new StallError(this.ms));
    }, this.ms);
  }
  stop(): void {
    clearTimeout(this.#timer);
  }
  get fired(): boolean {
    return this.controller.signal.aborted;
  }
  /** `p`, or a StallError as soon as the timer fires. */
  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.stalled]);
  }
  /** A fetch whose every request the watchdog can abort. */
  wrap(base: typeof fetch): typeof fetch {
    return (input, init) => base(input, { ...init, signal: this.controller.signal });
  }
}

/** Nothing arrived for the stall limit. */
class StallError extends Error {
  constructor(readonly ms: number) {
    super(`no data for ${ms / 1000} s`);
    this.name = "StallError";
  }
}

interface Ctx {
  dir: string;
  repo: string;
  revision: string;
  endpoint: string;
  token?: string;
  fetch: typeof fetch;
  stallMs: number;
  emit: (e: DownloadEvent) => void;
}

/** Maps a failed hub request onto a one-line error. */
function requestError(ctx: Ctx, file: WeightsFile, e: unknown, dog: Watchdog): WeightsDownloadError {
  if (e instanceof WeightsDownloadError) return e;
  const url = resolveUrl(ctx.endpoint, ctx.repo, ctx.revision, file.path);
  const status = (e as { statusCode?: unknown })?.statusCode;
  if (typeof status === "number") {
    if (status === 401 || status === 403) {
      const hint = ctx.token
        ? "HF_TOKEN is set but was refused: check that it may read"
        : "set HF_TOKEN to a Hugging Face token that may read";
      return new WeightsDownloadError(
        "auth",
        `${file.path}: HTTP ${status} from ${url}: access denied; ${hint} ${ctx.repo} (the repository may be gated or private)`,
      );
    }
    if (status === 404) {
      return new WeightsDownloadError(
        "not-found",
        `${file.path}: not found in ${ctx.repo}@${ctx.revision} (HTTP 404 from ${url})`,
      );
    }
    return new WeightsDownloadError("http", `${file.path}: HTTP ${status} from ${url}`);
  }
  if (dog.fired) {
    return new WeightsDownloadError(
      "network",
      `cannot reach ${ctx.endpoint}: no response in ${
        ctx.stallMs / 1000
      } s; check the network or set HF_ENDPOINT to a reachable mirror`,
    );
  }
  if (e instanceof TypeError && /token/i.test(e.message)) {
    return new WeightsDownloadError("config", `HF_TOKEN: ${e.message}`);
  }
  if (e instanceof TypeError) {
    return new WeightsDownloadError(
      "network",
      `cannot reach ${ctx.endpoint} (${
        shortCause(e)
      }); check the network or set HF_ENDPOINT to a reachable mirror`,
    );
  }
  return new WeightsDownloadError("http", `${file.path}: ${shortCause(e)}`);
}

/** Runs a file-system operation, turning any failure into a fatal disk error naming the path. */
async function disk<T>(path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw new WeightsDownloadError("disk", `cannot write ${path}: ${shortCause(e)}`, { cause: e });
  }
}

async function statSize(path: string): Promise<number | null> {
  try {
    const s = await Deno.stat(path);
    return s.isFile ? s.size : null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

async function removeIfThere(path: string): Promise<void> {
  await Deno.remove(path).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** The ETag the partial bytes came from: a resume is only valid against the same remote file. */
function metaPath(partial: string): string {
  return `${partial}.etag`;
}

async function resumeOffset(partial: string, info: FileDownloadInfoOutput): Promise<number> {
  const have = await statSize(partial);
  if (!have) return 0;
  const etag = await Deno.readTextFile(metaPath(partial)).catch(() => null);
  return etag === info.etag && have <= info.size ? have : 0;
}

/** Moves a file that failed its check out of the way; returns where it went. */
async function setAside(path: string, finalPath: string): Promise<string> {
  const invalid = `${finalPath}.invalid`;
  await disk(invalid, () => Deno.rename(path, invalid));
  return invalid;
}

async function writeAll(f: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += await f.write(chunk.subarray(off));
}

/** Streams the missing bytes of one file into `<final>.partial`, then checks and renames it. */
async function transfer(
  ctx: Ctx,
  file: WeightsFile,
  info: FileDownloadInfoOutput,
  offset: number,
): Promise<void> {
  const finalPath = join(ctx.dir, file.path);
  const partial = `${finalPath}.partial`;
  await disk(partial, async () => {
    await Deno.mkdir(dirname(finalPath), { recursive: true });
    await Deno.writeTextFile(metaPath(partial), info.etag);
  });
  ctx.emit({ type: "start", file, size: info.size, offset });
  let written = offset;
  if (offset < info.size) {
    const out = await disk(
      partial,
      () => Deno.open(partial, { write: true, create: true, append: offset > 0, truncate: offset === 0 }),
    );
    const dog = new Watchdog(ctx.stallMs);
    try {
      let reader: ReadableStreamDefaultReader<Uint8Array>;
      try {
        const blob = await dog.race(downloadFile({
          repo: ctx.repo,
          path: file.path,
          revision: ctx.revision,
          hubUrl: ctx.endpoint,
          accessToken: ctx.token,
          fetch: dog.wrap(ctx.fetch),
          downloadInfo: info,
        }));
        if (!blob) throw new WeightsDownloadError("not-found", `${file.path}: not found in ${ctx.repo}`);
        // slice(offset) makes the hub library send `Range: bytes=offset-` (a plain GET when offset is 0).
        reader = (offset > 0 ? blob.slice(offset) : blob).stream().getReader();
      } catch (e) {
        throw requestError(ctx, file, e, dog);
      }
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await dog.race(reader.read());
        } catch (e) {
          const why = dog.fired ? `no data for ${ctx.stallMs / 1000} s` : shortCause(e);
          // Closes the connection (the body's abort may not arrive, see Watchdog); never awaited, as a
          // stalled pipe may not answer.
          reader.cancel(e).catch(() => {});
          throw new WeightsDownloadError(
            "interrupted",
            `${file.path}: transfer interrupted after ${formatBytes(written)} of ${
              formatBytes(info.size)
            } (${why}); run the same command again to resume`,
          );
        }
        if (chunk.done) break;
        dog.kick();
        written += chunk.value.length;
        if (written > info.size) {
          // A server that ignores Range answers 200 with the whole file: appending it would corrupt the
          // partial, so start over next time.
          await reader.cancel().catch(() => {});
          out.close();
          await disk(partial, () => removeIfThere(partial));
          throw new WeightsDownloadError(
            "interrupted",
            `${file.path}: server sent more than ${
              formatBytes(info.size)
            } (Range ignored?); partial file discarded, run again`,
          );
        }
        await disk(partial, () => writeAll(out, chunk.value));
        ctx.emit({ type: "progress", file, bytes: written, size: info.size });
      }
    } finally {
      dog.stop();
      try {
        out.close();
      } catch { /* already closed after a discarded partial */ }
    }
  }
  if (written < info.size) {
    throw new WeightsDownloadError(
      "interrupted",
      `${file.path}: transfer ended after ${formatBytes(written)} of ${
        formatBytes(info.size)
      }; run the same command again to resume`,
    );
  }
  let detail: string;
  try {
    detail = await verifyFile(partial, file);
  } catch (e) {
    if (!(e instanceof WeightsFormatError)) throw e;
    const invalid = await setAside(partial, finalPath);
    await disk(partial, () => removeIfThere(metaPath(partial)));
    throw new WeightsDownloadError(
      "invalid",
      `${file.path}: downloaded file failed its ${file.format} check (${e.problem}); kept aside as ${invalid}`,
    );
  }
  await disk(finalPath, async () => {
    await Deno.rename(partial, finalPath);
    await removeIfThere(metaPath(partial));
  });
  ctx.emit({ type: "done", file, size: info.size, detail, resumedFrom: offset });
}

/** Size, ETag and URL of one file, or a one-line error. */
async function lookUp(ctx: Ctx, file: WeightsFile): Promise<FileDownloadInfoOutput> {
  const dog = new Watchdog(ctx.stallMs);
  try {
    const info = await dog.race(fileDownloadInfo({
      repo: ctx.repo,
      path: file.path,
      revision: ctx.revision,
      hubUrl: ctx.endpoint,
      accessToken: ctx.token,
      fetch: dog.wrap(ctx.fetch),
    }));
    if (!info) {
      const url = resolveUrl(ctx.endpoint, ctx.repo, ctx.revision, file.path);
      throw new WeightsDownloadError(
        "not-found",
        `${file.path}: not found in ${ctx.repo}@${ctx.revision} (HTTP 404 from ${url})`,
      );
    }
    return info;
  } catch (e) {
    throw requestError(ctx, file, e, dog);
  } finally {
    dog.stop();
  }
}

/**
 * Downloads `files` into `dir`. Files already present and valid are skipped without a request. Never
 * throws for a download problem: each failure is reported as an event and in the report; fatal ones (no
 * network, refused credentials, disk) stop the run.
 */
export async function downloadWeights(opts: DownloadOptions): Promise<DownloadReport> {
  const manifest = opts.manifest ?? MANIFEST;
  const emit = opts.onEvent ?? (() => {});
  const report: DownloadReport = { downloaded: [], present: [], failed: [], aborted: false };
  const fail = (file: WeightsFile | null, error: WeightsDownloadError) => {
    report.failed.push({ name: file?.name ?? "", error });
    emit({ type: "error", file, error });
    if (error.fatal) report.aborted = true;
  };
  let ctx: Ctx;
  try {
    ctx = {
      dir: opts.dir,
      repo: manifest.repo,
      revision: manifest.revision,
      endpoint: hubEndpoint(opts.endpoint),
      token: opts.token ?? env("HF_TOKEN"),
      fetch: opts.fetch ?? fetch,
      stallMs: stallLimitMs(opts.stallTimeoutMs),
      emit,
    };
  } catch (e) {
    fail(null, e as WeightsDownloadError);
    return report;
  }

  const todo: WeightsFile[] = [];
  for (const file of opts.files) {
    const finalPath = join(ctx.dir, file.path);
    if ((await statSize(finalPath)) === null) {
      todo.push(file);
      continue;
    }
    try {
      const detail = await verifyFile(finalPath, file);
      report.present.push(file.name);
      emit({ type: "present", file, detail });
    } catch (e) {
      if (!(e instanceof WeightsFormatError)) throw e;
      try {
        const invalidPath = await setAside(finalPath, finalPath);
        emit({ type: "set-aside", file, invalidPath, problem: e.problem });
        todo.push(file);
      } catch (d) {
        fail(file, d as WeightsDownloadError);
        return report;
      }
    }
  }

  const planned: { file: WeightsFile; info: FileDownloadInfoOutput; offset: number }[] = [];
  for (const file of todo) {
    try {
      const info = await lookUp(ctx, file);
      const offset = await resumeOffset(`${join(ctx.dir, file.path)}.partial`, info);
      planned.push({ file, info, offset });
    } catch (e) {
      if (!(e instanceof WeightsDownloadError)) throw e;
      fail(file, e);
      if (e.fatal) return report;
    }
  }
  if (planned.length) {
    emit({
      type: "plan",
      files: planned.map((p) => ({ file: p.file, size: p.info.size, offset: p.offset })),
      totalBytes: planned.reduce((a, p) => a + p.info.size, 0),
    });
  }
  for (const p of planned) {
    try {
      await transfer(ctx, p.file, p.info, p.offset);
      report.downloaded.push(p.file.name);
    } catch (e) {
      if (!(e instanceof WeightsDownloadError)) throw e;
      fail(p.file, e);
      if (e.fatal) return report;
    }
  }
  return report;
}
