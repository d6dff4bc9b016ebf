/**
 * Token grids of the UNet levels: a level's T tokens are its (ceil(h/s), ceil(w/s)) grid of the latent (h, w),
 * s = 1, 2, 4, 8 (as `bankInputs` sizes them). Maps on a level grid are brought to the latent grid by nearest
 * upsampling, which keeps every value (DAAM upsamples bicubically; nearest keeps sums and means exact).
 */
import { InspectError } from "./errors.ts";

/** The level grid holding `tokens` tokens of a (height, width) latent. */
export function levelGrid(
  name: string,
  tokens: number,
  height: number,
  width: number,
): { h: number; w: number } {
  for (let s = 1; s <= Math.max(height, width); s *= 2) {
    const h = Math.ceil(height / s), w = Math.ceil(width / s);
    if (h * w === tokens) return { h, w };
  }
  throw new InspectError(`${name}: ${tokens} tokens are no level of a ${height}x${width} latent`);
}

/** For each latent pixel (y, x), row-major, the level token it reads: `floor(y*h/H) * w + floor(x*w/W)`. */
export function upsampleIndex(level: { h: number; w: number }, height: number, width: number): Int32Array {
  const out = new Int32Array(height * width);
  for (let y = 0; y < height; y++) {
    const ly = Math.floor((y * level.h) / height);
    for (let x = 0; x < width; x++) out[y * width + x] = ly * level.w + Math.floor((x * level.w) / width);
  }
  return out;
}
