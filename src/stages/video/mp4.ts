/**
 * frames -> H.264 mp4 (yuv420p, 25 fps) muxed with the original driving audio trimmed to the video's length
 * (AAC), as upstream's moviepy `write_videofile(fps=25, audio_codec="aac")` does. Written to a temporary
 * name and renamed, so a failed or killed run never leaves a truncated mp4 under the final name.
 *
 * The temporary name carries the writer's host and pid (`<out>.<host>-<pid>-<n>.partial.mp4`): an ffmpeg
 * orphaned by a killed writer may still be finishing its file, and must never share it with the next
 * writer. After a successful write, the partial files of `out` whose writers are gone are removed.
 */
import { basename, dirname, join } from "node:path";
import { FfmpegError, ffmpegPath } from "../../util/ffmpeg.ts";
import { pidAlive } from "../../util/process.ts";

const host = () => Deno.hostname().replace(/[^A-Za-z0-9_]/g, "_");
/** Partial files this process is writing now. */
const writing = new Set<string>();
let partials = 0;

/** The temporary name of a write of `out` by this process. */
function partialPath(out: string): string {
  return `${out}.${host()}-${Deno.pid}-${partials++}.partial.mp4`;
}

/**
 * Removes the partial files of `out` left by writers that are gone: this host's dead pids, and the
 * unnamed `<out>.partial.mp4` of earlier versions. Partial files of live writers (or other hosts) stay.
 */
export async function removeStalePartials(out: string): Promise<string[]> {
  const dir = dirname(out), base = `${basename(out)}.`;
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return removed;
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.startsWith(base) || !e.name.endsWith(".partial.mp4")) continue;
    const path = join(dir, e.name);
    const tag = e.name.slice(base.length, -".partial.mp4".length);
    const m = /^(.+)-(\d+)-(\d+)$/.exec(tag);
    const stale = e.name === `${base}partial.mp4` ||
      (m !== null && m[1] === host() && !writing.has(path) &&
        (Number(m[2]) === Deno.pid || !pidAlive(Number(m[2]))));
    if (!stale) continue;
    try {
      await Deno.remove(path);
      removed.push(path);
    } catch { /* already gone */ }
  }
  return removed;
}

export interface Mp4Options {
  width: number;
  height: number;
  fps?: number;
  /** Audio to mux (the original driving audio, not the vocals); trimmed to frames / fps. */
  audio?: string;
  /** Number of frames, when `frames` is not an array (needed to cut the audio exactly). */
  frameCount?: number;
  /** x264 preset (moviepy's default: medium). */
  preset?: string;
}

/** Encodes packed RGB24 frames (width*height*3 bytes each) to `out`. Returns the number of frames written. */
export async function writeMp4(
  frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  out: string,
  o: Mp4Options,
): Promise<number> {
  const tmp = partialPath(out);
  writing.add(tmp);
  try {
    return await encode(frames, out, tmp, o);
  } finally {
    writing.delete(tmp);
  }
}

async function encode(
  frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  out: string,
  tmp: string,
  o: Mp4Options,
): Promise<number> {
  const fps = o.fps ?? 25;
  const args = [
    "-hide_banner",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    "-s",
    `${o.width}x${o.height}`,
    "-r",
    String(fps),
    "-i",
    "pipe:0",
  ];
  if (o.audio) args.push("-i", o.audio);
  args.push("-map", "0:v:0");
  const count = o.frameCount ?? (Array.isArray(frames) ? frames.length : undefined);
  if (o.audio) {
    // moviepy's AudioFileClip.subclip(0, F/fps): the audio is cut at the video's end.
    args.push("-map", "1:a:0", "-c:a", "aac", "-ar", "44100");
    args.push(...(count !== undefined ? ["-af", `atrim=end=${count / fps}`] : ["-shortest"]));
  }
  args.push(
    "-c:v",
    "libx264",
    "-preset",
    o.preset ?? "medium",
    "-pix_fmt",
    "yuv420p",
    "-movflags",
    "+faststart",
  );
  args.push(tmp);
  const child = new Deno.Command(await ffmpegPath(), {
    args,
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderrP = new Response(child.stderr).text();
  const size = o.width * o.height * 3;
  let n = 0;
  const w = child.stdin.getWriter();
  try {
    for await (const f of frames) {
      if (f.length !== size) throw new FfmpegError(`frame ${n} has ${f.length} bytes, expected ${size}`);
      await w.write(f);
      n++;
    }
    await w.close();
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(tmp).catch(() => {});
    if (e instanceof FfmpegError) throw e;
    throw new FfmpegError(`ffmpeg stopped reading frames for ${out}: ${(await stderrP).trim().slice(-400)}`);
  }
  const status = await child.status;
  const stderr = await stderrP;
  if (!status.success) {
    await Deno.remove(tmp).catch(() => {});
    throw new FfmpegError(
      `ffmpeg could not write ${out}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
    );
  }
  // -shortest trims the audio to the video; the video itself is exactly the frames given.
  await Deno.rename(tmp, out);
  await removeStalePartials(out);
  return n;
}

/** Stream facts read back from a file with ffmpeg (no ffprobe ships with the npm package). */
export interface MediaInfo {
  videoCodec?: string;
  pixFmt?: string;
  fps?: number;
  width?: number;
  height?: number;
  audioCodec?: string;
  /** Container duration in seconds. */
  duration?: number;
  /** Decoded video frame count. */
  frames?: number;
}

/** Reads codec, pixel format, fps, size, duration and the decoded frame count of a media file. */
export async function probeMedia(path: string): Promise<MediaInfo> {
  const r = await new Deno.Command(await ffmpegPath(), {
    args: ["-hide_banner", "-nostdin", "-i", path, "-map", "0:v:0?", "-f", "null", "-"],
    stdout: "null",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stderr);
  if (!r.success) {
    throw new FfmpegError(`cannot read ${path}: ${text.trim().split("\n").slice(-2).join(" | ")}`);
  }
  const info: MediaInfo = {};
  const v =
    /Stream #\d+:\d+[^:]*: Video: (\w+)[^,]*, (\w+)[^,]*(?:\([^)]*\))?, (\d+)x(\d+)[^\n]*?, ([\d.]+) fps/
      .exec(text);
  if (v) {
    info.videoCodec = v[1];
    info.pixFmt = v[2];
    info.width = Number(v[3]);
    info.height = Number(v[4]);
    info.fps = Number(v[5]);
  }
  const a = /Stream #\d+:\d+[^:]*: Audio: (\w+)/.exec(text);
  if (a) info.audioCodec = a[1];
  const d = /Duration: (\d+):(\d+):([\d.]+)/.exec(text);
  if (d) info.duration = Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]);
  const frames = [...text.matchAll(/frame=\s*(\d+)/g)].pop();
  if (frames) info.frames = Number(frames[1]);
  return info;
}
