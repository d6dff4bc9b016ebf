/**
 * Decoding any audio (or the first audio track of a video) to planar float32 PCM at the rate a step needs:
 * 44.1 kHz stereo for vocal separation, 16 kHz mono for wav2vec2.
 *
 * Upstream loads with librosa: float32 samples, channels averaged for mono (`np.mean` over channels), a mono file
 * duplicated for stereo (`prepare_mix`), soxr_hq when the rate differs. Here ffmpeg decodes and resamples
 * (with its soxr resampler by default, the nearest to librosa's), always to the file's own channel count: the
 * channel mixing is done here, because ffmpeg's `-ac` mixes with non-unit gains and would not match librosa.
 * A WAV that is already at the target rate (PCM 8/16/24/32-bit or float) is read directly, bypassing ffmpeg:
 * a 16-bit WAV gives exactly int16/32768, as soundfile does.
 */
import { streamFfmpeg } from "../../util/ffmpeg.ts";
import { decodeSamples, parseWavHeader, type WavHeader } from "./wav.ts";

/** The input cannot be decoded: missing, empty, not audio, no audio stream, no samples. */
export class AudioDecodeError extends Error {
  override name = "AudioDecodeError";
}

/** What a step needs from a decode. */
export interface DecodeOptions {
  /** Output sample rate in Hz (resampled when the file differs). */
  sampleRate: number;
  /** 1: mean of all channels (librosa mono); 2: stereo (mono duplicated; more than 2 channels down-mixed by ffmpeg). */
  channels: 1 | 2;
  /** Frames per chunk yielded by decodeAudioChunks (default 65,536). */
  chunkFrames?: number;
  /** Resampler used when the rate differs: "soxr" (default, near librosa's soxr_hq) or ffmpeg's own "swr". */
  resampler?: "soxr" | "swr";
  /** Never read WAVs directly (always go through ffmpeg); for tests and comparisons. */
  forceFfmpeg?: boolean;
}

/** Planar float32 audio. */
export interface PcmAudio {
  sampleRate: number;
  /** One array per channel, all the same length. */
  channels: Float32Array[];
}

const DEFAULT_CHUNK = 65536;

function checkFile(path: string): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    throw new AudioDecodeError(`${path}: no such file`);
  }
  if (!st.isFile) throw new AudioDecodeError(`${path}: not a regular file`);
  if (st.size === 0) throw new AudioDecodeError(`${path}: file is empty`);
}

/**
 * Float files can hold NaN and infinities, which would turn every later value (normalisation, wav2vec2) into
 * NaN: refused here, naming the file, the sample and which value it is.
 */
function checkFinite(
  path: string,
  samples: Float32Array,
  channels: number,
  first: number,
  rate: number,
): void {
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i];
    if (Number.isFinite(v)) continue;
    const frame = first + Math.floor(i / channels);
    const what = Number.isNaN(v) ? "NaN" : v > 0 ? "+inf" : "-inf";
    throw new AudioDecodeError(
      `${path}: sample ${frame} (channel ${i % channels}, at ${(frame / rate).toFixed(3)} s) is ${what}; ` +
        "audio samples must be finite",
    );
  }
}

/** The header of a WAV that can be read directly at `sampleRate`, else undefined (use ffmpeg). */
async function directWavHeader(path: string, sampleRate: number): Promise<WavHeader | undefined> {
  const f = await Deno.open(path);
  try {
    const buf = new Uint8Array(65536);
    const n = (await f.read(buf)) ?? 0;
    const h = parseWavHeader(buf.subarray(0, n), path);
    return h && h.sampleRate === sampleRate ? h : undefined;
  } catch {
    return undefined; // not a WAV, or an encoding the direct reader lacks: ffmpeg decides
  } finally {
    f.close();
  }
}

async function* fileBytes(path: string, h: WavHeader): AsyncGenerator<Uint8Array> {
  const f = await Deno.open(path);
  try {
    await f.seek(h.dataOffset, Deno.SeekMode.Start);
    let left = h.dataBytes ?? Infinity;
    const buf = new Uint8Array(1 << 20);
    while (left > 0) {
      const n = await f.read(buf.subarray(0, Math.min(buf.length, left)));
      if (n === null) break;
      left -= n;
      yield buf.slice(0, n);
    }
  } finally {
    f.close();
  }
}

function ffmpegArgs(path: string, o: DecodeOptions, downmixStereo: boolean): string[] {
  const resample = (o.resampler ?? "soxr") === "soxr"
    ? ["-af", `aresample=${o.sampleRate}:resampler=soxr`]
    : ["-ar", String(o.sampleRate)];
  return [
    ...["-v", "error", "-i", path, "-map", "0:a:0", "-vn", "-sn", "-dn"],
    ...resample,
    ...(downmixStereo ? ["-ac", "2"] : []),
    ...["-f", "wav", "-acodec", "pcm_f32le", "pipe:1"],
  ];
}

function explain(path: string, e: unknown): Error {
  const msg = (e as Error).message ?? String(e);
  if (!(e instanceof Error) || e.name !== "FfmpegError") return e as Error;
  if (/matches no streams|does not contain any stream|no audio stream/i.test(msg)) {
    return new AudioDecodeError(`${path}: no audio stream`);
  }
  if (/Invalid data found|could not find codec|Invalid argument|moov atom not found/i.test(msg)) {
    return new AudioDecodeError(
      `${path}: not an audio or video file ffmpeg can read (${msg.split(": ").pop()})`,
    );
  }
  return new AudioDecodeError(`${path}: ${msg}`);
}

/** Splits a byte stream into its WAV header and the sample bytes after it. */
async function* afterHeader(
  src: AsyncIterator<Uint8Array>,
  name: string,
  onHeader: (h: WavHeader) => void,
): AsyncGenerator<Uint8Array> {
  let head = new Uint8Array(0);
  for (;;) {
    const r = await src.next();
    if (r.done) throw new AudioDecodeError(`${name}: decoder produced no output`);
    const joined = new Uint8Array(head.length + r.value.length);
    joined.set(head);
    joined.set(r.value, head.length);
    head = joined;
    const h = parseWavHeader(head, name);
    if (h) {
      onHeader(h);
      if (head.length > h.dataOffset) yield head.slice(h.dataOffset);
      break;
    }
    if (head.length > 1 << 20) throw new AudioDecodeError(`${name}: decoder output has no data chunk`);
  }
  for (;;) {
    const r = await src.next();
    if (r.done) return;
    yield r.value;
  }
}

/** Maps interleaved frames of `src` channels to planar `dst` channels, as librosa would. */
function mapChannels(inter: Float32Array, src: number, dst: 1 | 2): Float32Array[] {
  const frames = inter.length / src;
  if (dst === 1) {
    const out = new Float32Array(frames);
    if (src === 1) {
      out.set(inter);
      return [out];
    }
    // np.mean over the channel axis: float32 running sum over channels, then one float32 division.
    for (let i = 0, j = 0; i < frames; i++, j += src) {
      let s = inter[j];
      for (let c = 1; c < src; c++) s = Math.fround(s + inter[j + c]);
      out[i] = s / src;
    }
    return [out];
  }
  if (src === 1) return [inter.slice(), inter.slice()];
  const l = new Float32Array(frames);
  const r = new Float32Array(frames);
  for (let i = 0, j = 0; i < frames; i++, j += src) {
    l[i] = inter[j];
    r[i] = inter[j + 1];
  }
  return [l, r];
}

/**
 * Decodes `path` and yields planar chunks of `chunkFrames` frames (the last may be shorter), so that long files
 * need not be held whole. Throws AudioDecodeError for a missing/empty file, a file that is not audio, one with
 * no audio stream, and one that decodes to no samples.
 */
export async function* decodeAudioChunks(path: string, opts: DecodeOptions): AsyncGenerator<Float32Array[]> {
  checkFile(path);
  const chunkFrames = opts.chunkFrames ?? DEFAULT_CHUNK;
  if (!Number.isInteger(opts.sampleRate) || opts.sampleRate < 1) {
    throw new AudioDecodeError(`${path}: bad target sample rate ${opts.sampleRate}`);
  }
  let header: WavHeader | undefined = opts.forceFfmpeg
    ? undefined
    : await directWavHeader(path, opts.sampleRate);
  let downmix = false;
  let total = 0;
  for (let attempt = 0; attempt < 2; attempt++) {
    let framesSeen = 0;
    let bytes: AsyncGenerator<Uint8Array>;
    if (header) {
      bytes = fileBytes(path, header);
    } else {
      const raw = streamFfmpeg(ffmpegArgs(path, opts, downmix), { input: path });
      bytes = afterHeader(raw, path, (h) => header = h);
    }
    let restart = false;
    try {
      let pending = new Uint8Array(0);
      let out: Float32Array[] | undefined;
      let filled = 0;
      for await (const piece of bytes) {
        const h = header!;
        if (h.channelCount > 2 && opts.channels === 2) {
          // librosa would hand >2 channels to the separator, which fails; let ffmpeg make stereo instead.
          restart = true;
          break;
        }
        const frameBytes = h.bytesPerSample * h.channelCount;
        let buf = piece;
        if (pending.length) {
          buf = new Uint8Array(pending.length + piece.length);
          buf.set(pending);
          buf.set(piece, pending.length);
        }
        const whole = buf.length - (buf.length % frameBytes);
        pending = buf.slice(whole);
        const samples = decodeSamples(buf.subarray(0, whole), h.format);
        checkFinite(path, samples, h.channelCount, framesSeen, h.sampleRate);
        framesSeen += samples.length / h.channelCount;
        const planar = mapChannels(samples, h.channelCount, opts.channels);
        const n = planar[0].length;
        for (let i = 0; i < n;) {
          out ??= planar.map(() => new Float32Array(chunkFrames));
          const take = Math.min(chunkFrames - filled, n - i);
          for (let c = 0; c < out.length; c++) out[c].set(planar[c].subarray(i, i + take), filled);
          filled += take;
          i += take;
          if (filled === chunkFrames) {
            total += filled;
            yield out;
            out = undefined;
            filled = 0;
          }
        }
      }
      if (restart) {
        await bytes.return(undefined);
        header = undefined;
        downmix = true;
        continue;
      }
      if (out && filled > 0) {
        total += filled;
        yield out.map((c) => c.slice(0, filled));
      }
    } catch (e) {
      throw explain(path, e);
    }
    break;
  }
  if (total === 0) throw new AudioDecodeError(`${path}: contains no audio samples`);
}

/** Decodes a whole file to planar float32 at `opts.sampleRate` (see decodeAudioChunks). */
export async function decodeAudio(path: string, opts: DecodeOptions): Promise<PcmAudio> {
  const parts: Float32Array[][] = [];
  let n = 0;
  for await (const c of decodeAudioChunks(path, { ...opts, chunkFrames: opts.chunkFrames ?? 1 << 20 })) {
    parts.push(c);
    n += c[0].length;
  }
  const channels = Array.from({ length: opts.channels }, () => new Float32Array(n));
  let o = 0;
  for (const p of parts) {
    for (let c = 0; c < channels.length; c++) channels[c].set(p[c], o);
    o += p[0].length;
  }
  return { sampleRate: opts.sampleRate, channels };
}
