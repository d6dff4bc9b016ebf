/**
 * The portrait figure of the bundled portrait prepared at 128 px (MediaPipe's bundled landmarker; no
 * insightface files, so upstream's whole-image box): landmarks, boxes and the three pyramids in the Plotly
 * data, mask values in range and where the masks say, and a PNG that is a picture.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { prepareImage } from "../src/stages/image/prepare.ts";
import { displayBundle, VizError } from "../src/viz/figure.ts";
import { describePortrait, portraitFigure } from "../src/viz/portrait.ts";
import { assertRenderersAgree } from "./helpers/figure_agreement.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SIZE = 128;

Deno.test("portraitFigure: landmarks, boxes and mask pyramids of a prepared image", async () => {
  const weights = await Deno.makeTempDir({ prefix: "viz-portrait-" });
  try {
    const image = await prepareImage(join(ROOT, "fixtures", "astronaut.png"), {
      weightsDir: weights,
      size: SIZE,
      allowMissingFaceModels: true,
    });
    const fig = await portraitFigure(image);
    const { data, layout } = fig.plotly;

    // The portrait and its 478 landmarks, in the pixel tensor's coordinates.
    assert.equal(data[0].type, "image");
    assert.match(String(data[0].source), /^data:image\/jpeg;base64,/);
    const lm = data[1] as unknown as { x: number[]; y: number[]; name: string };
    assert.equal(lm.x.length, 478);
    assert.equal(lm.y.length, 478);
    for (let i = 0; i < 478; i++) {
      assert.ok(
        lm.x[i] >= 0 && lm.x[i] <= SIZE && lm.y[i] >= 0 && lm.y[i] <= SIZE,
        `landmark ${i} off the image`,
      );
      assert.ok(Math.abs(lm.x[i] - image.landmarks[i][0] * SIZE / image.width) < 0.01);
    }

    // Boxes: face region, lip region (inside the face region), insightface's whole-image fallback.
    const shapes = layout.shapes as {
      x0: number;
      y0: number;
      x1: number;
      y1: number;
      label: { text: string };
    }[];
    assert.deepEqual(shapes.map((s) => s.label.text), [
      "face mask region (x1.2)",
      "lip mask region (x2.0)",
      "insightface box (no face: whole image)",
    ]);
    const [face, lip, box] = shapes;
    assert.ok(
      lip.x0 >= face.x0 && lip.x1 <= face.x1 && lip.y0 >= face.y0 && lip.y1 <= face.y1,
      "lips inside face",
    );
    assert.deepEqual([box.x0, box.y0, box.x1, box.y1], [0, 0, SIZE, SIZE]);
    // The landmarks' mouth corners (61, 291) lie in the lip box.
    for (const i of [61, 291]) {
      assert.ok(lm.x[i] >= lip.x0 && lm.x[i] <= lip.x1 && lm.y[i] >= lip.y0 && lm.y[i] <= lip.y1);
    }

    // 3 pyramids x (64x64 source + 4 levels), values in [0, 1].
    const heat = data.filter((t) => t.type === "heatmap") as unknown as {
      z: number[][];
      name: string;
      zmin: number;
      zmax: number;
    }[];
    assert.equal(heat.length, 15);
    const sides = heat.map((h) => h.z.length);
    assert.deepEqual(sides, [64, 16, 8, 4, 2, 64, 16, 8, 4, 2, 64, 16, 8, 4, 2]);
    for (const h of heat) {
      assert.ok(h.z.every((r) => r.length === h.z.length && r.every((v) => v >= 0 && v <= 1)), h.name);
      assert.deepEqual([h.zmin, h.zmax], [0, 1]);
    }
    assert.deepEqual(heat.slice(0, 5).map((h) => h.name), [
      "sepBackground",
      "fullMask[0]",
      "fullMask[1]",
      "fullMask[2]",
      "fullMask[3]",
    ]);
    // The lip pyramid's level 0 peaks inside the lip box; the background mask is low there.
    const lip0 = heat[11].z;
    let best = [0, 0, -1];
    lip0.forEach((row, y) => row.forEach((v, x) => (v > best[2] ? (best = [x, y, v]) : 0)));
    const cell = SIZE / 16;
    const [cx, cy] = [(best[0] + 0.5) * cell, (best[1] + 0.5) * cell];
    assert.ok(
      cx >= lip.x0 - cell && cx <= lip.x1 + cell && cy >= lip.y0 - cell && cy <= lip.y1 + cell,
      `peak ${cx},${cy}`,
    );
    assert.ok(heat[1].z[best[1]][best[0]] < 0.5, "background mask is low on the lips");
    assert.deepEqual(fig.summary.levels, [[16, 8, 4, 2], [16, 8, 4, 2], [16, 8, 4, 2]]);
    assert.equal(fig.summary.landmarks, 478);

    // Row labels name the pyramids.
    const texts = (layout.annotations as { text: string }[]).map((a) => a.text);
    for (const t of ["full (sep_background)", "face (sep_face)", "lip (sep_lip)", "level 0: 16x16"]) {
      assert.ok(texts.includes(t), t);
    }

    // PNG: a real picture of the expected size, not a blank canvas.
    const png = sharp(fig.png);
    const meta = await png.metadata();
    assert.ok(meta.width! >= 384 + 260 && meta.height! >= 384 + 3 * 96, `${meta.width}x${meta.height}`);
    const { data: px } = await png.raw().toBuffer({ resolveWithObject: true });
    const colours = new Set<number>();
    for (let i = 0; i + 2 < px.length; i += meta.channels!) {
      colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    }
    assert.ok(colours.size > 5000, `PNG has only ${colours.size} colours`);
    assert.equal(displayBundle(fig)["image/png"].slice(0, 8), "iVBORw0K");

    // Both renderings have the portrait and the 15 mask overlays, in the same places.
    assert.equal((await assertRenderersAgree(describePortrait(image))).panels, 16);

    // Bad input: a non-square pixel tensor.
    await assert.rejects(
      () => portraitFigure({ ...image, pixels: { ...image.pixels, shape: [3, SIZE, SIZE / 2] } }),
      VizError,
    );
  } finally {
    await Deno.remove(weights, { recursive: true });
  }
});
