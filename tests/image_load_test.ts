/**
 * Image loading as upstream's `PIL.Image.open(path).convert("RGB")`: layouts PIL treats specially, EXIF
 * orientation left alone, and clear one-line errors for files that are not (whole) images.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { ImageError } from "../src/stages/image/errors.ts";
import { loadImage, MAX_IMAGE_PIXELS } from "../src/stages/image/load.ts";
import { cmykToRgb, jpegHasAdobeMarker } from "../src/stages/image/pil_convert.ts";

const dir = await Deno.makeTempDir({ prefix: "hallo_image_load_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const raw = (w: number, h: number, channels: 1 | 2 | 3 | 4) => ({ raw: { width: w, height: h, channels } });

async function rejects(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(loadImage(path), (e: unknown) => {
    assert.ok(e instanceof ImageError, `expected ImageError, got ${e}`);
    assert.ok(e.message.startsWith(path), `message should name the file: ${e.message}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
}

Deno.test("RGBA: alpha dropped, colour kept even where fully transparent (PIL RGBA->RGB)", async () => {
  const px = Uint8Array.of(10, 20, 30, 0, 200, 100, 50, 128, 1, 2, 3, 255, 9, 9, 9, 7);
  await sharp(px, raw(2, 2, 4)).png().toFile(`${dir}/rgba.png`);
  const img = await loadImage(`${dir}/rgba.png`);
  assert.deepEqual([img.width, img.height, img.channels], [2, 2, 3]);
  assert.deepEqual([...img.data], [10, 20, 30, 200, 100, 50, 1, 2, 3, 9, 9, 9]);
});

Deno.test("8-bit grey (and grey+alpha) is replicated to RGB", async () => {
  await sharp(Uint8Array.of(0, 77, 255), raw(3, 1, 1)).toColourspace("b-w").png().toFile(`${dir}/grey.png`);
  assert.deepEqual([...(await loadImage(`${dir}/grey.png`)).data], [0, 0, 0, 77, 77, 77, 255, 255, 255]);
  await sharp(Uint8Array.of(5, 0, 66, 255), raw(2, 1, 2)).toColourspace("b-w").png().toFile(
    `${dir}/grey_a.png`,
  );
  assert.deepEqual([...(await loadImage(`${dir}/grey_a.png`)).data], [5, 5, 5, 66, 66, 66]);
});

Deno.test("16-bit PNGs follow PIL: grey clipped at 255, colour keeps the high byte", async () => {
  await sharp(Uint16Array.of(7, 255, 256, 40000), raw(4, 1, 1)).toColourspace("grey16").png().toFile(
    `${dir}/g16.png`,
  );
  const g = await loadImage(`${dir}/g16.png`);
  assert.deepEqual([...g.data], [7, 7, 7, 255, 255, 255, 255, 255, 255, 255, 255, 255]);
  await sharp(Uint16Array.of(0x1234, 0xabcd, 0x00ff, 0xff00, 0x8080, 0x0101), raw(2, 1, 3)).toColourspace(
    "rgb16",
  ).png()
    .toFile(`${dir}/c16.png`);
  assert.deepEqual([...(await loadImage(`${dir}/c16.png`)).data], [0x12, 0xab, 0x00, 0xff, 0x80, 0x01]);
});

Deno.test("CMYK: PIL's naive cmyk2rgb; Adobe marker detected", async () => {
  // R = 255-K - C*(255-K)/255 with PIL's MULDIV255 rounding.
  assert.deepEqual([...cmykToRgb(Uint8Array.of(0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 100, 50, 0, 55), 4)], [
    255,
    255,
    255,
    0,
    255,
    255,
    0,
    0,
    0,
    122,
    161,
    200,
  ]);
  const rgb = Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37) % 256);
  await sharp(rgb, raw(8, 8, 3)).toColourspace("cmyk").jpeg({ quality: 95 }).toFile(`${dir}/cmyk.jpg`);
  assert.ok(jpegHasAdobeMarker(await Deno.readFile(`${dir}/cmyk.jpg`)));
  const img = await loadImage(`${dir}/cmyk.jpg`);
  assert.deepEqual([img.width, img.height, img.channels, img.data.length], [8, 8, 3, 192]);
  assert.equal(jpegHasAdobeMarker(await Deno.readFile(`${dir}/rgba.png`)), false);
});

Deno.test("EXIF orientation is ignored like PIL (with a warning) unless asked for", async () => {
  const rgb = Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => i * 10);
  await sharp(rgb, raw(4, 2, 3)).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toFile(
    `${dir}/rot.jpg`,
  );
  const asUpstream = await loadImage(`${dir}/rot.jpg`);
  assert.deepEqual([asUpstream.width, asUpstream.height], [4, 2]);
  assert.match(asUpstream.warnings.join(" "), /orientation 6 ignored/);
  const rotated = await loadImage(`${dir}/rot.jpg`, { applyExifOrientation: true });
  assert.deepEqual([rotated.width, rotated.height, rotated.warnings.length], [2, 4, 0]);
});

Deno.test("1x1 image loads, with a warning", async () => {
  await sharp(Uint8Array.of(1, 2, 3), raw(1, 1, 3)).png().toFile(`${dir}/one.png`);
  const img = await loadImage(`${dir}/one.png`);
  assert.deepEqual([img.width, img.height, ...img.data], [1, 1, 1, 2, 3]);
  assert.match(img.warnings.join(" "), /1x1/);
});

Deno.test("bad files give one-line ImageErrors naming the file", async () => {
  await rejects(`${dir}/missing.png`, /no such file/);
  await Deno.writeFile(`${dir}/empty.png`, new Uint8Array());
  await rejects(`${dir}/empty.png`, /empty file/);
  await Deno.writeTextFile(`${dir}/text.jpg`, "hello, not an image\n");
  await rejects(`${dir}/text.jpg`, /not an image/);
  await rejects(dir, /not a regular file/);
  await Deno.writeTextFile(`${dir}/v.svg`, '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
  await rejects(`${dir}/v.svg`, /vector format/);

  const noise = Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 7919) % 251);
  const png = await sharp(noise, raw(64, 64, 3)).png().toBuffer();
  await Deno.writeFile(`${dir}/trunc.png`, png.subarray(0, Math.floor(png.length / 2)));
  await rejects(`${dir}/trunc.png`, /cannot decode png/);
  const jpg = await sharp(noise, raw(64, 64, 3)).jpeg().toBuffer();
  await Deno.writeFile(`${dir}/trunc.jpg`, jpg.subarray(0, Math.floor(jpg.length / 2)));
  await rejects(`${dir}/trunc.jpg`, /cannot decode jpeg/);
});

Deno.test("images over PIL's decompression-bomb limit are refused before decoding", async () => {
  // A PNG whose header says 20000x10000 (2e8 pixels) with an empty image stream: only the header is read.
  const crc32 = (b: Uint8Array) => {
    let c = ~0;
    for (const x of b) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
  };
  const chunk = (type: string, data: Uint8Array) => {
    const body = Uint8Array.of(...[...type].map((c) => c.charCodeAt(0)), ...data);
    const out = new Uint8Array(8 + body.length);
    const v = new DataView(out.buffer);
    v.setUint32(0, data.length);
    out.set(body, 4);
    v.setUint32(4 + body.length, crc32(body));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 20000);
  new DataView(ihdr.buffer).setUint32(4, 10000);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const png = Uint8Array.of(
    ...[137, 80, 78, 71, 13, 10, 26, 10],
    ...chunk("IHDR", ihdr),
    ...chunk("IDAT", Uint8Array.of(0x78, 0x9c, 0x03, 0x00)),
    ...chunk("IEND", new Uint8Array()),
  );
  await Deno.writeFile(`${dir}/bomb.png`, png);
  assert.ok(20000 * 10000 > MAX_IMAGE_PIXELS);
  await rejects(`${dir}/bomb.png`, /20000x10000 = 200000000 pixels, over the limit of 178956970/);
});
