/**
 * A side-by-side grid video of several runs of the same length: each run a tile, scaled down so the grid
 * stays within a width budget, with a label band under it (SVG text rendered by sharp, so any font the
 * system's fontconfig knows; DejaVu Sans on Debian). The driving audio is muxed as in `writeMp4`.
 */
import sharp from "sharp";
import { writeMp4 } from "./mp4.ts";

/** Where tiles and labels go. Every size is even (H.264 yuv420p needs even frame sizes). */
export interface GridLayout {
  cols: number;
  rows: number;
  tileWidth: number;
  tileHeight: number;
  /** Height of the label band under each tile. */
  bandHeight: number;
  fontSize: number;
  width: number;
  height: number;
}

const even = (x: number) => Math.max(2, 2 * Math.floor(x / 2));

/**
 * Layout of `n` tiles of `frameWidth` x `frameHeight`: a near-square grid (columns = ceil(sqrt n)), tiles
 * never upscaled and scaled down so the grid is at most `maxWidth` wide, a band of `lines` text lines under
 * each, its font sized so `maxChars` characters fit the tile width.
 */
export function gridLayout(
  n: number,
  frameWidth: number,
  frameHeight: number,
  o: { maxWidth?: number; lines?: number; maxChars?: number } = {},
): GridLayout {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`a grid needs at least one tile, got ${n}`);
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const tileWidth = even(Math.min(frameWidth, (o.maxWidth ?? 1024) / cols));
  const tileHeight = even(tileWidth * frameHeight / frameWidth);
  // DejaVu Sans averages ~0.6 em per character for digits and lower case.
  const fontSize = Math.max(7, Math.min(16, Math.floor((tileWidth - 6) / (0.6 * (o.maxChars ?? 16)))));
  const bandHeight = even((o.lines ?? 1) * Math.ceil(fontSize * 1.25) + 5);
  return {
    cols,
    rows,
    tileWidth,
    tileHeight,
    bandHeight,
    fontSize,
    width: cols * tileWidth,
    height: rows * (tileHeight + bandHeight),
  };
}

const escapeXml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!,
  );

/** A label band: white text lines on black, packed RGB of `width` x `height`. */
export async function renderLabel(
  lines: readonly string[],
  width: number,
  height: number,
  fontSize: number,
): Promise<Uint8Array> {
  const lh = Math.ceil(fontSize * 1.25);
  const text = lines.map((l, i) =>
    `<text x="3" y="${
      2 + fontSize + i * lh
    }" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" ` +
    `fill="#fff">${escapeXml(l)}</text>`
  ).join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="${width}" height="${height}" fill="#000"/>${text}</svg>`;
  const { data, info } = await sharp(new TextEncoder().encode(svg))
    .flatten({ background: "#000" })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== 3) {
    throw new Error(
      `label rendered as ${info.width}x${info.height}x${info.channels}, not ${width}x${height}x3`,
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Composes one grid frame from one frame per run (labels drawn once, tiles resized per frame). */
export class GridComposer {
  private constructor(
    readonly layout: GridLayout,
    private readonly frameWidth: number,
    private readonly frameHeight: number,
    private readonly base: Uint8Array,
    readonly tiles: number,
  ) {}

  /** Lays out `labels.length` tiles (one label, as lines, per run) of frames `frameWidth` x `frameHeight`. */
  static async create(
    labels: readonly (readonly string[])[],
    frameWidth: number,
    frameHeight: number,
    o: { maxWidth?: number } = {},
  ): Promise<GridComposer> {
    const layout = gridLayout(labels.length, frameWidth, frameHeight, {
      maxWidth: o.maxWidth,
      lines: Math.max(1, ...labels.map((l) => l.length)),
      maxChars: Math.max(1, ...labels.flat().map((l) => l.length)),
    });
    const base = new Uint8Array(layout.width * layout.height * 3);
    for (let i = 0; i < labels.length; i++) {
      const band = await renderLabel(labels[i], layout.tileWidth, layout.bandHeight, layout.fontSize);
      const [x, y] = GridComposer.origin(layout, i);
      blit(base, layout.width, band, layout.tileWidth, layout.bandHeight, x, y + layout.tileHeight);
    }
    return new GridComposer(layout, frameWidth, frameHeight, base, labels.length);
  }

  private static origin(l: GridLayout, i: number): [number, number] {
    return [(i % l.cols) * l.tileWidth, Math.floor(i / l.cols) * (l.tileHeight + l.bandHeight)];
  }

  /** One packed-RGB grid frame from one packed-RGB frame per tile, in label order. */
  async compose(frames: readonly Uint8Array[]): Promise<Uint8Array> {
    const l = this.layout;
    if (frames.length !== this.tiles) {
      throw new RangeError(`grid has ${this.tiles} tiles, got ${frames.length}`);
    }
    const out = this.base.slice();
    const same = l.tileWidth === this.frameWidth && l.tileHeight === this.frameHeight;
    const tiles = await Promise.all(frames.map(async (f) => {
      if (f.length !== this.frameWidth * this.frameHeight * 3) {
        throw new RangeError(
          `frame has ${f.length} bytes, expected ${this.frameWidth}x${this.frameHeight}x3`,
        );
      }
      if (same) return f;
      const b = await sharp(f, { raw: { width: this.frameWidth, height: this.frameHeight, channels: 3 } })
        .resize(l.tileWidth, l.tileHeight, { fit: "fill" })
        .raw()
        .toBuffer();
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }));
    tiles.forEach((t, i) => {
      const [x, y] = GridComposer.origin(l, i);
      blit(out, l.width, t, l.tileWidth, l.tileHeight, x, y);
    });
    return out;
  }
}

/** Copies a packed-RGB `w` x `h` image into `dst` (row stride `dstWidth` pixels) at (x, y). */
function blit(
  dst: Uint8Array,
  dstWidth: number,
  src: Uint8Array,
  w: number,
  h: number,
  x: number,
  y: number,
) {
  for (let r = 0; r < h; r++) dst.set(src.subarray(r * w * 3, (r + 1) * w * 3), ((y + r) * dstWidth + x) * 3);
}

export interface GridVideoOptions {
  /** Size of every source's frames. */
  width: number;
  height: number;
  /** Frames to write (every source must have at least this many). */
  frames: number;
  fps?: number;
  /** Audio to mux, trimmed to the video (the original driving audio). */
  audio?: string;
  maxWidth?: number;
  /** Sees every frame index with the sources' frames, before composition (measures). */
  onFrames?: (index: number, frames: readonly Uint8Array[]) => void;
}

/** What `writeGridVideo` wrote. */
export interface GridVideo {
  out: string;
  frames: number;
  layout: GridLayout;
}

/** Writes the grid of `sources` (one packed-RGB frame stream per run, labelled by `labels`) to `out`. */
export async function writeGridVideo(
  sources: readonly AsyncIterable<Uint8Array>[],
  labels: readonly (readonly string[])[],
  out: string,
  o: GridVideoOptions,
): Promise<GridVideo> {
  if (sources.length !== labels.length) {
    throw new RangeError(`${sources.length} sources but ${labels.length} labels`);
  }
  const composer = await GridComposer.create(labels, o.width, o.height, { maxWidth: o.maxWidth });
  const its = sources.map((s) => s[Symbol.asyncIterator]());
  async function* grid(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < o.frames; i++) {
      const next = await Promise.all(its.map((it) => it.next()));
      const ended = next.findIndex((r) => r.done);
      if (ended >= 0) {
        throw new Error(`grid source ${ended} (${labels[ended].join(" ")}) ended at frame ${i}`);
      }
      const frames = next.map((r) => r.value as Uint8Array);
      o.onFrames?.(i, frames);
      yield await composer.compose(frames);
    }
  }
  const l = composer.layout;
  const frames = await writeMp4(grid(), out, {
    width: l.width,
    height: l.height,
    fps: o.fps,
    audio: o.audio,
    frameCount: o.frames,
  });
  await Promise.all(its.map((it) => it.return?.()));
  return { out, frames, layout: l };
}
