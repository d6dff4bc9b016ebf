/** Makes small test media with ffmpeg (lavfi sources) in one temporary folder per test process. */
import { join } from "node:path";
import { runFfmpeg } from "../../src/util/ffmpeg.ts";

let dir: string | undefined;
const made = new Map<string, Promise<string>>();

/** The temporary folder (created on first use, removed when the test process ends). */
export function mediaDir(): string {
  if (!dir) {
    const d = Deno.makeTempDirSync({ prefix: "hallo_audio_test_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(d, { recursive: true }));
    dir = d;
  }
  return dir;
}

/** ffmpeg args (inputs and codec) that produce each named test file. */
const RECIPES: Record<string, string[]> = {
  // 0.01 s of a 440 Hz tone, 16 kHz mono 16-bit: 160 samples
  "tone_10ms_16k_mono.wav": ["-f", "lavfi", "-i", "sine=f=440:r=16000:d=0.01", "-c:a", "pcm_s16le"],
  "silence_16k_mono.wav": ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0.5", "-c:a", "pcm_s16le"],
  "tone_8k_mono.wav": ["-f", "lavfi", "-i", "sine=f=300:r=8000:d=0.5", "-c:a", "pcm_s16le"],
  "tones_48k_stereo.wav": [
    ...["-f", "lavfi", "-i", "sine=f=440:r=48000:d=0.5", "-f", "lavfi", "-i", "sine=f=1000:r=48000:d=0.5"],
    ...["-filter_complex", "[0][1]amerge=inputs=2", "-c:a", "pcm_s16le"],
  ],
  "tones_16k_stereo.wav": [
    ...["-f", "lavfi", "-i", "sine=f=440:r=16000:d=0.25", "-f", "lavfi", "-i", "sine=f=1000:r=16000:d=0.25"],
    ...["-filter_complex", "[0][1]amerge=inputs=2", "-c:a", "pcm_s16le"],
  ],
  "tones_44k_6ch.wav": [
    ...[
      "-f",
      "lavfi",
      "-i",
      "sine=f=440:r=44100:d=0.2",
      "-filter_complex",
      "[0]pan=5.1|c0=c0|c1=0.5*c0|c2=0.25*c0",
    ],
    ...["-c:a", "pcm_s16le"],
  ],
  "tone_44k_mono.mp3": ["-f", "lavfi", "-i", "sine=f=440:r=44100:d=0.5", "-c:a", "libmp3lame", "-b:a", "64k"],
  "video_with_sound.mp4": [
    ...[
      "-f",
      "lavfi",
      "-i",
      "testsrc=size=64x64:rate=25:d=0.6",
      "-f",
      "lavfi",
      "-i",
      "sine=f=300:r=22050:d=0.6",
    ],
    ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"],
  ],
  "video_no_sound.mp4": ["-f", "lavfi", "-i", "testsrc=size=64x64:rate=25:d=0.2", "-c:v", "libx264"],
  "tone_16k_mono_float.wav": ["-f", "lavfi", "-i", "sine=f=440:r=16000:d=0.1", "-c:a", "pcm_f32le"],
};

/** Path of the named test file, made on first request. */
export function media(name: keyof typeof RECIPES | string): Promise<string> {
  let p = made.get(name);
  if (!p) {
    const recipe = RECIPES[name];
    if (!recipe) throw new Error(`no recipe for test media ${name}`);
    const out = join(mediaDir(), name);
    p = runFfmpeg(["-y", "-v", "error", ...recipe, out], { captureStdout: false }).then(() => out);
    made.set(name, p);
  }
  return p;
}
