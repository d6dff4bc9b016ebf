/**
 * MediaPipe FaceLandmarker headless (WASM + WebGL2 over EGL): landmarks on the astronaut fixture, their
 * agreement with upstream's landmarks for the same photo, no-face and bad-input errors, several faces.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import sharp, { type Sharp } from "sharp";
import { ImageError } from "../src/stages/image/errors.ts";
import {
  BUNDLED_FACE_LANDMARKER,
  createFaceLandmarker,
  defaultFaceLandmarkerModel,
  type Face,
  FACE_LANDMARKER_MODEL,
  largestFace,
  NoFaceError,
  NUM_FACE_LANDMARKS,
} from "../src/stages/image/landmarker.ts";
import { EglContext } from "../src/stages/image/mediapipe/egl.ts";
import { GlUnavailableError, openLibrary } from "../src/stages/image/mediapipe/gl_ffi.ts";
import { WebGl2OverEgl } from "../src/stages/image/mediapipe/webgl2.ts";
import { shared } from "./helpers/shared.ts";

const ASTRONAUT = fileURLToPath(new URL("../fixtures/astronaut.png", import.meta.url));

interface Rgb {
  data: Uint8Array;
  width: number;
  height: number;
}

async function decodeRgb(image: Sharp): Promise<Rgb> {
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    width: info.width,
    height: info.height,
  };
}

/** Two copies of the astronaut's face side by side, the right one 70% as large. */
async function twoFaces(): Promise<Rgb> {
  const face = await sharp(ASTRONAUT).extract({ left: 110, top: 10, width: 240, height: 260 }).removeAlpha()
    .toBuffer();
  const small = await sharp(face).resize(168, 182).toBuffer();
  const canvas = sharp({ create: { width: 420, height: 260, channels: 3, background: "#808080" } })
    .composite([{ input: face, left: 0, top: 0 }, { input: small, left: 250, top: 40 }]);
  return decodeRgb(sharp(await canvas.png().toBuffer()));
}

Deno.test("FaceLandmarker: astronaut landmarks, upstream agreement, no face, several faces, bad input", async (t) => {
  const img = await decodeRgb(sharp(ASTRONAUT));
  // The bundled model explicitly: upstream's reference landmarks were made with it (they match exactly).
  const landmarker = await createFaceLandmarker(BUNDLED_FACE_LANDMARKER);
  try {
    const faces = landmarker.detect(img.data, img.width, img.height, ASTRONAUT);
    const face = faces[0];

    await t.step("one face, 478 landmarks inside the image, in anatomical order", () => {
      assert.equal(faces.length, 1);
      assert.equal(face.landmarks.length, NUM_FACE_LANDMARKS);
      assert.equal(face.pixels.length, NUM_FACE_LANDMARKS);
      for (const [i, { x, y }] of face.landmarks.entries()) {
        assert.ok(x > 0 && x < 1 && y > 0 && y < 1, `landmark ${i} at (${x}, ${y}) outside the image`);
        assert.deepEqual(face.pixels[i], [x * img.width, y * img.height]);
      }
      const y = (i: number) => face.pixels[i][1];
      assert.ok(y(33) < y(1) && y(263) < y(1), "eyes (33, 263) above the nose tip (1)");
      assert.ok(y(1) < y(13) && y(13) < y(14), "nose tip (1) above the upper (13) and lower (14) lip");
      // Outer eye corners on either side of the nose: the image is not mirrored.
      assert.ok(face.pixels[33][0] < face.pixels[1][0] && face.pixels[1][0] < face.pixels[263][0]);
    });

    await t.step("stable across calls", () => {
      const again = landmarker.detect(img.data, img.width, img.height, ASTRONAUT);
      assert.deepEqual(again, faces);
    });

    await t.step({
      name: "agrees with upstream's landmarks for the same photo",
      fn: () => {
        // Upstream's (Python MediaPipe) landmarks for the same photo, normalised.
        const file = shared("reference", "preprocess", "masks", "astronaut_landmarks.json");
        const upstream = JSON.parse(Deno.readTextFileSync(file)) as { x: number; y: number }[];
        assert.equal(upstream.length, NUM_FACE_LANDMARKS);
        const d = upstream.map((u, i) =>
          Math.hypot(u.x * img.width - face.pixels[i][0], u.y * img.height - face.pixels[i][1])
        );
        const mean = d.reduce((a, b) => a + b, 0) / d.length, max = Math.max(...d);
        console.log(`  vs upstream: mean ${mean.toFixed(4)} px, max ${max.toFixed(4)} px`);
        // Bit-identical here; the margin only allows for float-contraction differences between builds.
        assert.ok(mean < 0.01 && max < 0.1, `mean ${mean} px, max ${max} px`);
      },
    });

    await t.step("per-image time", () => {
      const n = 5, t0 = performance.now();
      for (let i = 0; i < n; i++) landmarker.detect(img.data, img.width, img.height);
      console.log(
        `  detect ${img.width}x${img.height}: ${((performance.now() - t0) / n).toFixed(1)} ms/image`,
      );
    });

    await t.step("a uniform grey image has no face", () => {
      const grey = new Uint8Array(128 * 96 * 3).fill(128);
      assert.throws(
        () => landmarker.detect(grey, 128, 96, "grey.png"),
        (e: Error) =>
          e instanceof NoFaceError && e instanceof ImageError && e.message.startsWith("grey.png: "),
      );
    });

    await t.step("upstream's num_faces 1 keeps one face of two", async () => {
      const two = await twoFaces();
      assert.equal(landmarker.detect(two.data, two.width, two.height).length, 1);
    });

    await t.step(
      "a second landmarker (numFaces 3), created while the first detects, finds both",
      async () => {
        // Creation is async: the first landmarker runs between its steps, each on its own EGL context.
        let created = false, interleaved = 0;
        const creating = createFaceLandmarker(BUNDLED_FACE_LANDMARKER, { numFaces: 3 }).finally(() =>
          created = true
        );
        while (!created) {
          assert.deepEqual(landmarker.detect(img.data, img.width, img.height), faces);
          interleaved++;
          await new Promise((r) => setTimeout(r, 0));
        }
        const several = await creating;
        try {
          console.log(`  ${interleaved} detections during creation`);
          const two = await twoFaces();
          const found = several.detect(two.data, two.width, two.height, "two faces");
          assert.equal(found.length, 2);
          const big = largestFace(found);
          // The big copy fills x < 240, the small one x > 250.
          assert.ok(big.pixels.every(([x]) => x < 240), "largest face is the left, full-size copy");
          assert.ok(
            found.some((f: Face) => f.pixels.every(([x]) => x > 250)),
            "small face found on the right",
          );
          assert.deepEqual(several.detect(img.data, img.width, img.height), faces);
          assert.deepEqual(landmarker.detect(img.data, img.width, img.height), faces);
        } finally {
          several.close();
        }
      },
    );

    await t.step("bad input is an ImageError naming the image", () => {
      assert.throws(
        () => landmarker.detect(new Uint8Array(10), 4, 4, "tiny.rgb"),
        /^ImageError: tiny\.rgb: expected/,
      );
      assert.throws(
        () => landmarker.detect(new Uint8Array(0), 0, 0, "empty.rgb"),
        /empty\.rgb: bad image size/,
      );
    });
  } finally {
    landmarker.close();
  }
  assert.throws(() => landmarker.detect(img.data, img.width, img.height), /closed/);
});

Deno.test("FaceLandmarker: unusable model files are ImageErrors naming the file", async () => {
  await assert.rejects(
    createFaceLandmarker("/nonexistent/face.task"),
    /^ImageError: \/nonexistent\/face\.task: cannot read/,
  );
  await assert.rejects(createFaceLandmarker(ASTRONAUT), /astronaut\.png: not a MediaPipe \.task bundle/);
  await assert.rejects(
    createFaceLandmarker(undefined, { numFaces: 0 }),
    /numFaces must be a positive integer/,
  );
});

Deno.test("the model: upstream's file in the weights folder when present, else the bundled one", () => {
  const dir = Deno.makeTempDirSync();
  try {
    assert.equal(defaultFaceLandmarkerModel(dir), BUNDLED_FACE_LANDMARKER);
    const upstream = `${dir}/${FACE_LANDMARKER_MODEL}`;
    Deno.mkdirSync(upstream.slice(0, upstream.lastIndexOf("/")), { recursive: true });
    Deno.writeFileSync(upstream, new Uint8Array([0x50, 0x4b]));
    assert.equal(defaultFaceLandmarkerModel(dir), upstream);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("missing EGL/GLES libraries name the Debian packages", () => {
  assert.throws(
    () => openLibrary(["libEGL.so.missing-for-test"], { eglGetError: { parameters: [], result: "i32" } }),
    (e: Error) =>
      e instanceof GlUnavailableError &&
      e.message.includes("apt-get install -y libegl1 libgles2 libgl1-mesa-dri"),
  );
});

Deno.test("WebGL2 shim: each object drives its own EGL context; image upload honours UNPACK_FLIP_Y_WEBGL", () => {
  const TEXTURE_2D = 0x0de1, TEXTURE_BINDING_2D = 0x8069, FRAMEBUFFER = 0x8d40, COLOR_ATTACHMENT0 = 0x8ce0;
  const RGBA = 0x1908, UNSIGNED_BYTE = 0x1401, UNPACK_FLIP_Y_WEBGL = 0x9240;
  const ea = EglContext.create(), eb = EglContext.create(); // eb is current now
  try {
    const a = new WebGl2OverEgl(ea), b = new WebGl2OverEgl(eb);
    const ta = a.createTexture();
    a.bindTexture(TEXTURE_2D, ta);
    b.createTexture();
    const tb = b.createTexture();
    b.bindTexture(TEXTURE_2D, tb);
    assert.equal(a.getParameter(TEXTURE_BINDING_2D), ta);
    assert.equal(b.getParameter(TEXTURE_BINDING_2D), tb);

    // A 1x2 image: top row red, bottom row blue; flipped on upload, read back bottom-up by readPixels.
    const image = { data: new Uint8Array([255, 0, 0, 255, 0, 0, 255, 255]), width: 1, height: 2 };
    const readBack = (flip: boolean): number[] => {
      a.pixelStorei(UNPACK_FLIP_Y_WEBGL, flip);
      a.texImage2D(TEXTURE_2D, 0, RGBA, RGBA, UNSIGNED_BYTE, image);
      const fb = a.createFramebuffer();
      a.bindFramebuffer(FRAMEBUFFER, fb);
      a.framebufferTexture2D(FRAMEBUFFER, COLOR_ATTACHMENT0, TEXTURE_2D, ta, 0);
      const out = new Uint8Array(8);
      a.readPixels(0, 0, 1, 2, RGBA, UNSIGNED_BYTE, out);
      a.deleteFramebuffer(fb);
      return [...out];
    };
    assert.deepEqual(readBack(false), [...image.data]);
    assert.deepEqual(readBack(true), [0, 0, 255, 255, 255, 0, 0, 255]);
    assert.equal(a.getError(), 0);
    assert.throws(
      () => a.texImage2D(TEXTURE_2D, 0, RGBA, RGBA, UNSIGNED_BYTE, { width: 1 }),
      /ImageData-like/,
    );
  } finally {
    ea.destroy();
    eb.destroy();
  }
});
