/**
 * Loading the reference image as upstream does: `PIL.Image.open(path).convert("RGB")`, decoded here by sharp
 * (libvips) and then converted with PIL's own rules (pil_convert.ts). The result is RGB uint8 HxWx3 at the
 * file's own resolution.
 *
 * Upstream-faithful choices (each one is what PIL does, not what an image viewer does):
 * - EXIF orientation is NOT applied (PIL's open/convert ignore it); `applyExifOrientation: true` opts in, and a
 *   warning says when a file carries a rotation that was ignored.
 * - Embedded ICC profiles are ignored (stored values are used as they are).
 * - Alpha is dropped, colour channels kept (RGBA -> RGB does not flatten onto a background).
 * - 16-bit grey is clipped to 255, 16-bit colour keeps the high byte, CMYK uses PIL's naive formula.
 * - Only the first frame/page of animated or multi-page files is read.
 * Limits: images over 178,956,970 pixels are refused, the point where PIL raises DecompressionBombError
 * (10000x10000 = 1e8 pixels loads: 300 MB of RGB). Vector formats (SVG, PDF) are refused: PIL cannot read
 * them and rasterising them is not upstream behaviour.
 */
import sharp, { type Metadata } from "sharp";
import { ImageError } from "./errors.ts";
import {
  cmykToRgb,
  dropAlpha,
  grey16ToRgb,
  greyToRgb,
  highByteToRgb,
  jpegHasAdobeMarker,
} from "./pil_convert.ts";
import type { U8Image } from "./types.ts";

/** PIL's DecompressionBombError threshold: 2 * Image.MAX_IMAGE_PIXELS (89,478,485). */
export const MAX_IMAGE_PIXELS = 2 * 89_478_485;

const VECTOR_FORMATS = new Set(["svg", "pdf"]);

/** A decoded reference image: RGB uint8, HxWx3, plus what the loader noticed. */
export interface LoadedImage extends U8Image {
  readonly channels: 3;
  /** The file it came from. */
  readonly path: string;
  /** Container format as sharp names it ("jpeg", "png", ...). */
  readonly format: string;
  /** Things a user may want to know (ignored EXIF rotation, 1x1 image, ...); empty when nothing. */
  readonly warnings: string[];
}

/** Options of {@link loadImage}. */
export interface LoadImageOptions {
  /** Rotate/flip by the EXIF orientation tag. Upstream does not (default false). */
  readonly applyExifOrientation?: boolean;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Reads an image file as upstream's `Image.open(path).convert("RGB")` would see it. */
export async function loadImage(path: string, options: LoadImageOptions = {}): Promise<LoadedImage> {
  let bytes: Uint8Array;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new ImageError(path, "not a regular file");
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    if (e instanceof Deno.errors.NotFound) throw new ImageError(path, "no such file");
    throw new ImageError(path, `cannot read file: ${describe(e)}`);
  }
  if (bytes.length === 0) throw new ImageError(path, "empty file, not an image");

  // The header is read without sharp's pixel limit so that an oversized image gets our clearer message.
  const open = (limit: number | false = MAX_IMAGE_PIXELS) =>
    sharp(bytes, { failOn: "truncated", ignoreIcc: true, limitInputPixels: limit, pages: 1 });
  let meta: Metadata;
  try {
    meta = await open(false).metadata();
  } catch (e) {
    throw new ImageError(path, `not an image or an unsupported format (${describe(e)})`);
  }
  const format = String(meta.format ?? "unknown");
  if (VECTOR_FORMATS.has(format)) {
    throw new ImageError(path, `${format} is a vector format; upstream (PIL) cannot read it`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width < 1 || height < 1) throw new ImageError(path, "image has no pixels");
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new ImageError(
      path,
      `image is ${width}x${height} = ${
        width * height
      } pixels, over the limit of ${MAX_IMAGE_PIXELS} (PIL's decompression-bomb limit)`,
    );
  }

  const warnings: string[] = [];
  const orientation = meta.orientation ?? 1;
  const rotate = options.applyExifOrientation === true && orientation !== 1;
  if (orientation !== 1 && !rotate) {
    warnings.push(`EXIF orientation ${orientation} ignored, as upstream (PIL) ignores it`);
  }
  if (width === 1 && height === 1) warnings.push("1x1 image: every derived tensor is constant");

  const pipeline = () => (rotate ? open().rotate() : open());
  let rgb: Uint8Array;
  let outW = width;
  let outH = height;
  try {
    const space = meta.space ?? "srgb";
    if (space === "grey16" || space === "rgb16") {
      const { data, info } = await pipeline().toColourspace(space).raw({ depth: "ushort" }).toBuffer({
        resolveWithObject: true,
      });
      const u16 = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
      if (space === "grey16") {
        rgb = info.channels === 1 ? grey16ToRgb(u16) : highByteToRgb(u16, info.channels, true);
      } else rgb = highByteToRgb(u16, info.channels, false);
      outW = info.width;
      outH = info.height;
    } else if (space === "cmyk") {
      const { data, info } = await pipeline().pipelineColourspace("cmyk").toColourspace("cmyk").raw()
        .toBuffer({ resolveWithObject: true });
      if (format === "jpeg" && !jpegHasAdobeMarker(bytes)) {
        // PIL assumes Adobe (inverted) polarity for every CMYK JPEG; libjpeg readers only for Adobe ones.
        for (let i = 0; i < data.length; i++) data[i] = 255 - data[i];
      }
      rgb = cmykToRgb(data, info.channels);
      outW = info.width;
      outH = info.height;
    } else if (space === "b-w" && meta.depth === "uchar") {
      const { data, info } = await pipeline().toColourspace("b-w").raw().toBuffer({
        resolveWithObject: true,
      });
      rgb = greyToRgb(data, info.channels);
      outW = info.width;
      outH = info.height;
    } else {
      // 8-bit sRGB (incl. palette) keeps its values; other spaces/depths are converted to 8-bit sRGB by libvips.
      const { data, info } = await pipeline().toColourspace("srgb").raw().toBuffer({
        resolveWithObject: true,
      });
      rgb = info.channels === 1 || info.channels === 2
        ? greyToRgb(data, info.channels)
        : dropAlpha(data, info.channels);
      outW = info.width;
      outH = info.height;
      if (meta.depth !== "uchar" && meta.depth !== undefined) {
        warnings.push(`${meta.depth} samples in ${space} space converted by libvips, not by PIL's rules`);
      }
    }
  } catch (e) {
    throw new ImageError(path, `cannot decode ${format} image (truncated or corrupt?): ${describe(e)}`);
  }
  if (rgb.length !== outW * outH * 3) {
    throw new ImageError(path, `decoder returned ${rgb.length} bytes for ${outW}x${outH} RGB`);
  }
  return { width: outW, height: outH, channels: 3, data: rgb, path, format, warnings };
}
