/**
 * The pixel rules of PIL's `Image.open(path).convert("RGB")` (Pillow 10.3) for the decoded layouts that
 * differ from "take the colour channels": 16-bit greyscale is clipped (not scaled) to 8 bits, 16-bit colour
 * keeps the high byte, and CMYK uses PIL's naive formula instead of a colour profile. Upstream reads the
 * reference image this way, so the port does too.
 */

/**
 * PIL's I;16 -> RGB (Convert.c I16_RGB): a 16-bit grey value below 256 is kept, anything else becomes 255.
 * Most 16-bit grey photos therefore turn almost white under upstream; that is what upstream sees.
 */
export function grey16ToRgb(grey: Uint16Array, alphaStride = 1): Uint8Array {
  const n = grey.length / alphaStride;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const v = grey[i * alphaStride];
    const b = v < 256 ? v : 255;
    out[i * 3] = b;
    out[i * 3 + 1] = b;
    out[i * 3 + 2] = b;
  }
  return out;
}

/** PIL's 16-bit PNG colour and grey+alpha unpackers (RGB;16B, RGBA;16B, LA;16B) keep the most significant byte. */
export function highByteToRgb(src: Uint16Array, channels: number, grey: boolean): Uint8Array {
  const n = src.length / channels;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const p = i * channels;
    if (grey) {
      const v = src[p] >> 8;
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    } else {
      out[i * 3] = src[p] >> 8;
      out[i * 3 + 1] = src[p + 1] >> 8;
      out[i * 3 + 2] = src[p + 2] >> 8;
    }
  }
  return out;
}

/** PIL's MULDIV255: a*b/255 rounded with its shift trick. */
function mulDiv255(a: number, b: number): number {
  const tmp = a * b + 128;
  return ((tmp >> 8) + tmp) >> 8;
}

/**
 * PIL's cmyk2rgb (Convert.c): R = 255-K - C*(255-K)/255, clipped; no colour management. `cmyk` holds
 * `channels` values per pixel in ink convention (0 = no ink), the convention PIL's "CMYK;I" JPEG raw mode yields.
 */
export function cmykToRgb(cmyk: Uint8Array, channels: number): Uint8Array {
  const n = cmyk.length / channels;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const p = i * channels;
    const nk = 255 - cmyk[p + 3];
    for (let c = 0; c < 3; c++) {
      const v = nk - mulDiv255(cmyk[p + c], nk);
      out[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

/** Keeps the first channel of each pixel (grey, or grey of grey+alpha) and replicates it to RGB. */
export function greyToRgb(src: Uint8Array, channels: number): Uint8Array {
  const n = src.length / channels;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const v = src[i * channels];
    out[i * 3] = v;
    out[i * 3 + 1] = v;
    out[i * 3 + 2] = v;
  }
  return out;
}

/** Drops channels past the third (alpha), as PIL's RGBA -> RGB does: colour values are kept, not flattened. */
export function dropAlpha(src: Uint8Array, channels: number): Uint8Array {
  if (channels === 3) return src;
  const n = src.length / channels;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[i * 3] = src[i * channels];
    out[i * 3 + 1] = src[i * channels + 1];
    out[i * 3 + 2] = src[i * channels + 2];
  }
  return out;
}

/**
 * True when a JPEG carries an Adobe APP14 segment before its first scan. libjpeg-based decoders (libvips)
 * invert CMYK only then, while PIL always assumes Adobe polarity; the loader flips the difference back.
 */
export function jpegHasAdobeMarker(bytes: Uint8Array): boolean {
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return false;
    const marker = bytes[p + 1];
    if (marker === 0xff) {
      p++;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return false;
    const len = (bytes[p + 2] << 8) | bytes[p + 3];
    if (
      marker === 0xee && len >= 7 && p + 9 <= bytes.length &&
      String.fromCharCode(...bytes.subarray(p + 4, p + 9)) === "Adobe"
    ) return true;
    p += 2 + len;
  }
  return false;
}
