/**
 * Plain 8-bit images as the image stage passes them around: row-major, channels interleaved (HxWxC), the
 * layout of a numpy `uint8` array from PIL or OpenCV.
 */
export interface U8Image {
  readonly width: number;
  readonly height: number;
  /** 1 (grey, a PIL "L" image) or 3 (RGB); OpenCV-style helpers also take 4. */
  readonly channels: number;
  /** `width * height * channels` bytes. */
  readonly data: Uint8Array;
}

/** Builds a U8Image, checking that data and size agree. */
export function u8Image(width: number, height: number, channels: number, data?: Uint8Array): U8Image {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`image size must be positive integers, got ${width}x${height}`);
  }
  if (!Number.isInteger(channels) || channels < 1 || channels > 4) {
    throw new RangeError(`image channels must be 1..4, got ${channels}`);
  }
  const n = width * height * channels;
  const d = data ?? new Uint8Array(n);
  if (d.length !== n) {
    throw new RangeError(`image data has ${d.length} bytes, ${width}x${height}x${channels} needs ${n}`);
  }
  return { width, height, channels, data: d };
}
