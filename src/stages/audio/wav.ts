/**
 * A direct RIFF/WAVE reader and a PCM16 writer. Reading a WAV that is already at the rate a step needs bypasses
 * ffmpeg, so samples are exactly what librosa/soundfile give (int16/32768 as float32): parity is bit-exact.
 */

/** A WAV file the reader cannot use, named with the problem. */
export class WavFormatError extends Error {
  override name = "WavFormatError";
}

/** Sample encodings the reader understands. */
export type WavSampleFormat = "pcm8" | "pcm16" | "pcm24" | "pcm32" | "float32" | "float64";

/** What the `fmt ` chunk and the position of the `data` chunk say. */
export interface WavHeader {
  sampleRate: number;
  channelCount: number;
  format: WavSampleFormat;
  bytesPerSample: number;
  /** Byte offset of the first sample. */
  dataOffset: number;
  /** Bytes of sample data, or undefined when the header does not say (streamed WAV: size 0 or 0xFFFFFFFF). */
  dataBytes: number | undefined;
}

const FMT_PCM = 1;
const FMT_FLOAT = 3;
const FMT_EXTENSIBLE = 0xfffe;

function tag(b: Uint8Array, o: number): string {
  return String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]);
}

function sampleFormat(code: number, bits: number, name: string): WavSampleFormat {
  if (code === FMT_PCM) {
    if (bits === 8) return "pcm8";
    if (bits === 16) return "pcm16";
    if (bits === 24) return "pcm24";
    if (bits === 32) return "pcm32";
  } else if (code === FMT_FLOAT) {
    if (bits === 32) return "float32";
    if (bits === 64) return "float64";
  }
  throw new WavFormatError(`${name}: unsupported WAV encoding (format code ${code}, ${bits} bits)`);
}

/**
 * Parses the header of a WAV held in `bytes` (the whole file or a prefix of it). Returns undefined when the
 * prefix is too short to reach the `data` chunk; throws WavFormatError when it is not a usable WAV.
 */
export function parseWavHeader(bytes: Uint8Array, name = "WAV"): WavHeader | undefined {
  if (bytes.length < 12) return undefined;
  if (tag(bytes, 0) !== "RIFF" || tag(bytes, 8) !== "WAVE") {
    throw new WavFormatError(`${name}: not a RIFF/WAVE file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fmt: Omit<WavHeader, "dataOffset" | "dataBytes"> | undefined;
  let o = 12;
  while (o + 8 <= bytes.length) {
    const id = tag(bytes, o);
    const size = view.getUint32(o + 4, true);
    const body = o + 8;
    if (id === "data") {
      if (!fmt) throw new WavFormatError(`${name}: 'data' chunk comes before the 'fmt ' chunk`);
      const streamed = size === 0 || size === 0xffffffff;
      return { ...fmt, dataOffset: body, dataBytes: streamed ? undefined : size };
    }
    if (id === "fmt ") {
      if (body + 16 > bytes.length) return undefined;
      let code = view.getUint16(body, true);
      const channelCount = view.getUint16(body + 2, true);
      const sampleRate = view.getUint32(body + 4, true);
      const bits = view.getUint16(body + 14, true);
      if (code === FMT_EXTENSIBLE) {
        if (size < 40) throw new WavFormatError(`${name}: truncated WAVE_FORMAT_EXTENSIBLE header`);
        if (body + 26 > bytes.length) return undefined;
        code = view.getUint16(body + 24, true); // first two bytes of the sub-format GUID
      }
      if (channelCount < 1) throw new WavFormatError(`${name}: WAV header says 0 channels`);
      if (sampleRate < 1) throw new WavFormatError(`${name}: WAV header says sample rate 0`);
      const format = sampleFormat(code, bits, name);
      fmt = { sampleRate, channelCount, format, bytesPerSample: bits / 8 };
    }
    o = body + size + (size & 1); // chunks are word aligned
  }
  return undefined;
}

/** Converts interleaved sample bytes to float32 the way libsndfile does (ints scaled by 2^-(bits-1)). */
export function decodeSamples(bytes: Uint8Array, format: WavSampleFormat): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bps = format === "pcm8"
    ? 1
    : format === "pcm16"
    ? 2
    : format === "pcm24"
    ? 3
    : format === "float64"
    ? 8
    : 4;
  const n = Math.floor(bytes.length / bps);
  const out = new Float32Array(n);
  switch (format) {
    case "pcm8":
      for (let i = 0; i < n; i++) out[i] = (bytes[i] - 128) / 128;
      break;
    case "pcm16":
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true) / 32768;
      break;
    case "pcm24":
      for (let i = 0; i < n; i++) {
        const v = bytes[3 * i] | (bytes[3 * i + 1] << 8) | (bytes[3 * i + 2] << 24 >> 8);
        out[i] = v / 8388608;
      }
      break;
    case "pcm32":
      // int -> float32 first, then the exact power-of-two scale (libsndfile's order).
      for (let i = 0; i < n; i++) out[i] = Math.fround(view.getInt32(4 * i, true)) / 2147483648;
      break;
    case "float32":
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case "float64":
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
  }
  return out;
}

/** Splits interleaved samples into one array per channel. */
export function deinterleave(samples: Float32Array, channelCount: number): Float32Array[] {
  const frames = Math.floor(samples.length / channelCount);
  const out = Array.from({ length: channelCount }, () => new Float32Array(frames));
  for (let c = 0; c < channelCount; c++) {
    const ch = out[c];
    for (let i = 0, j = c; i < frames; i++, j += channelCount) ch[i] = samples[j];
  }
  return out;
}

/** A decoded WAV: planar float32 channels. */
export interface WavAudio {
  sampleRate: number;
  format: WavSampleFormat;
  channels: Float32Array[];
}

/** Reads a whole WAV from bytes (`name` appears in errors). */
export function readWavBytes(bytes: Uint8Array, name = "WAV"): WavAudio {
  const h = parseWavHeader(bytes, name);
  if (!h) throw new WavFormatError(`${name}: WAV header is truncated (no 'data' chunk)`);
  const end = h.dataBytes === undefined ? bytes.length : Math.min(bytes.length, h.dataOffset + h.dataBytes);
  const frameBytes = h.bytesPerSample * h.channelCount;
  const usable = end - h.dataOffset - ((end - h.dataOffset) % frameBytes);
  const samples = decodeSamples(bytes.subarray(h.dataOffset, h.dataOffset + usable), h.format);
  return { sampleRate: h.sampleRate, format: h.format, channels: deinterleave(samples, h.channelCount) };
}

/** Reads a whole WAV file. */
export async function readWav(path: string): Promise<WavAudio> {
  return readWavBytes(await Deno.readFile(path), path);
}

/**
 * Planar float channels to interleaved int16, the inverse of the reader's int16/32768: `round(x·32768)` clamped
 * to [-32768, 32767], so samples read from a 16-bit WAV come back bit-exact.
 *
 * @example
 * ```ts
 * const bytes = encodeWavPcm16(toPcm16([left, right]), 2, 16000);
 * ```
 */
export function toPcm16(channels: readonly Float32Array[]): Int16Array {
  const c = channels.length;
  const n = c ? channels[0].length : 0;
  if (channels.some((ch) => ch.length !== n)) {
    throw new RangeError(`channels differ in length (${channels.map((ch) => ch.length).join(", ")})`);
  }
  const out = new Int16Array(n * c);
  for (let k = 0; k < c; k++) {
    const ch = channels[k];
    for (let i = 0; i < n; i++) {
      const v = Math.round(ch[i] * 32768);
      out[i * c + k] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
  }
  return out;
}

/** Encodes interleaved int16 samples as a canonical 44-byte-header PCM16 WAV. */
export function encodeWavPcm16(
  interleaved: Int16Array,
  channelCount: number,
  sampleRate: number,
): Uint8Array {
  const dataBytes = interleaved.length * 2;
  const out = new Uint8Array(44 + dataBytes);
  const v = new DataView(out.buffer);
  const put = (o: number, s: string) => {
    for (let i = 0; i < 4; i++) out[o + i] = s.charCodeAt(i);
  };
  put(0, "RIFF");
  v.setUint32(4, 36 + dataBytes, true);
  put(8, "WAVE");
  put(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, FMT_PCM, true);
  v.setUint16(22, channelCount, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * channelCount * 2, true);
  v.setUint16(32, channelCount * 2, true);
  v.setUint16(34, 16, true);
  put(36, "data");
  v.setUint32(40, dataBytes, true);
  for (let i = 0; i < interleaved.length; i++) v.setInt16(44 + 2 * i, interleaved[i], true);
  return out;
}
