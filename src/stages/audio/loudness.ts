/**
 * Audio level in dBFS and a gain that sets it: for loudness experiments (the same speech louder or quieter).
 * Full scale is 1.0, the float the WAV reader gives for int16 -32768 (int16/32768, as soundfile).
 *
 * - `peak`: 20·log10(max |x|): 0 dBFS is the loudest level that does not clip.
 * - `rms`: 20·log10(sqrt(mean x²)) over every sample of every channel, with no sine correction (a full-scale
 *   sine is -3.01 dBFS RMS here; AES17 would call it 0).
 */

/** How a level is measured: the largest |sample| or the root mean square. */
export type LoudnessMeasure = "peak" | "rms";

/** The level of planar channels as a linear amplitude (1 = full scale). */
function level(channels: readonly Float32Array[], measure: LoudnessMeasure): number {
  let peak = 0, squares = 0, n = 0;
  for (const ch of channels) {
    for (let i = 0; i < ch.length; i++) {
      const v = ch[i];
      const a = Math.abs(v);
      if (a > peak) peak = a;
      squares += v * v;
    }
    n += ch.length;
  }
  if (measure === "peak") return peak;
  return n > 0 ? Math.sqrt(squares / n) : 0;
}

/**
 * The level of planar channels in dBFS (full scale 1.0); -Infinity for silence or no samples.
 *
 * @example
 * ```ts
 * const sine = Float32Array.from({ length: 16000 }, (_, i) => Math.sin((2 * Math.PI * 440 * i) / 16000));
 * dbfs([sine], "peak"); // ≈ 0
 * dbfs([sine], "rms"); // ≈ -3.01
 * ```
 */
export function dbfs(channels: readonly Float32Array[], measure: LoudnessMeasure): number {
  return 20 * Math.log10(level(channels, measure));
}

/** Channels scaled to a level, and the gain that did it. */
export interface ScaledAudio {
  channels: Float32Array[];
  /** The linear factor every sample was multiplied by. */
  gain: number;
}

/**
 * Scales planar channels by one gain so that their level is `target` dBFS (`measure`: peak or RMS). Refuses
 * silence (no gain can make it louder), a target that is not finite, and a result whose peak would pass full
 * scale: clipping would change the waveform's shape, not only its loudness.
 *
 * @example The bundled speech at -20 dBFS peak, written as a 16-bit WAV
 * ```ts ignore
 * const wav = await readWav(fixture("speech.wav"));
 * const { channels } = scaleToDbfs(wav.channels, -20, "peak");
 * await Deno.writeFile("speech_-20dBFS.wav", encodeWavPcm16(toPcm16(channels), channels.length, wav.sampleRate));
 * ```
 */
export function scaleToDbfs(
  channels: readonly Float32Array[],
  target: number,
  measure: LoudnessMeasure,
): ScaledAudio {
  if (!Number.isFinite(target)) {
    throw new RangeError(`target level must be a finite dBFS value, got ${target}`);
  }
  const now = level(channels, measure);
  if (!(now > 0)) throw new RangeError("cannot scale silence to a level");
  const gain = 10 ** (target / 20) / now;
  const peak = level(channels, "peak") * gain;
  // A float32 rounding of a 0 dBFS peak may land a hair above 1: only a real excess is clipping.
  if (peak > 1 + 1e-6) {
    throw new RangeError(
      `${target} dBFS ${measure} puts the peak at ${(20 * Math.log10(peak)).toFixed(2)} dBFS: it would clip`,
    );
  }
  return { channels: channels.map((ch) => ch.map((v) => v * gain)), gain };
}
