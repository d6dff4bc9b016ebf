/**
 * The reference image as the networks see it: the (size x size) pixel tensor with MediaPipe's 478 landmarks,
 * the face and lip mask regions (after expand_region), insightface's face box, and the three mask pyramids
 * (full = sep_background, face = sep_face, lip = sep_lip) with their 64x64 sources, each level overlaid.
 */
import type { PreparedImage } from "../stages/image/prepare.ts";
import type { Region } from "../stages/image/regions.ts";
import type { U8Image } from "../stages/image/types.ts";
import { VIRIDIS } from "./colormap.ts";
import { drawFigure } from "./draw.ts";
import { VizError, type VizFigure } from "./figure.ts";
import { type BoxLayer, type FigureSpec, PALETTE, type PanelRow } from "./panels.ts";
import { round4 } from "./plotly.ts";
import { chwToRgb, type RgbImage } from "./raster.ts";

/** The pyramids in the order the denoising UNet's audio branches use them. */
export const PYRAMIDS = [
  { key: "fullMask", source: "sepBackground", label: "full (sep_background)" },
  { key: "faceMask", source: "sepFace", label: "face (sep_face)" },
  { key: "lipMask", source: "sepLip", label: "lip (sep_lip)" },
] as const;

const BOX_COLORS = { face: PALETTE[2], lip: PALETTE[1], bbox: PALETTE[3] };

export interface PortraitOptions {
  /** Side of the portrait in pixels, both renderings (default 384). */
  displaySize?: number;
  /** Side of each mask overlay (default 96). */
  maskSize?: number;
}

/** A box in image pixels as [x1, y1, x2, y2] in the pixel tensor's coordinates (the image is resized to S x S). */
function scaleBox(b: readonly number[], sx: number, sy: number): [number, number, number, number] {
  return [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy];
}

function regionBox(r: Region, w: number, h: number): [number, number, number, number] {
  // expand_region's bounds are slice bounds (may be negative or past the edge); drawn clamped.
  const c = (v: number, m: number) => Math.max(0, Math.min(m, v));
  return [c(r.minX, w), c(r.minY, h), c(r.maxX, w), c(r.maxY, h)];
}

function levelSide(t: { shape: readonly number[] }, name: string): number {
  const n = t.shape[t.shape.length - 1];
  const s = Math.round(Math.sqrt(n));
  if (s * s !== n) throw new VizError(`${name}: a square mask level was expected, got shape [${t.shape}]`);
  return s;
}

function maskValues(m: U8Image): Float32Array {
  return Float32Array.from(m.data, (v) => v / 255);
}

/** The portrait figure of a prepared image, described. */
export function describePortrait(image: PreparedImage, o: PortraitOptions = {}): FigureSpec {
  const [c, S, S2] = image.pixels.shape;
  if (c !== 3 || S !== S2) throw new VizError(`pixels must be (3, S, S), got [${image.pixels.shape}]`);
  if (image.landmarks.length === 0) throw new VizError(`${image.source}: no landmarks to draw`);
  const rgb = chwToRgb(image.pixels.data, S, S, [-1, 1]);
  const sx = S / image.width, sy = S / image.height;
  const pts = image.landmarks.map(([x, y]) => [x * sx, y * sy]);
  const boxes = [
    {
      name: `face mask region (x${image.faceExpandRatio})`,
      box: scaleBox(regionBox(image.masks.faceBox.expanded, image.width, image.height), sx, sy),
      color: BOX_COLORS.face,
    },
    {
      name: "lip mask region (x2.0)",
      box: scaleBox(regionBox(image.masks.lipBox.expanded, image.width, image.height), sx, sy),
      color: BOX_COLORS.lip,
    },
    {
      name: image.detection ? "insightface box" : "insightface box (no face: whole image)",
      box: scaleBox(image.bbox, sx, sy),
      color: BOX_COLORS.bbox,
      dashed: true,
    },
  ];
  const levels = PYRAMIDS.map((p) =>
    image[p.key].map((t, l) => {
      const side = levelSide(t, `${p.key}[${l}]`);
      return { side, values: t.data };
    })
  );

  const D = o.displaySize ?? 384, M = o.maskSize ?? 96;
  const unit = { cmap: VIRIDIS, range: [0, 1] as const };
  const maskRows = PYRAMIDS.map((p, r): PanelRow => {
    const src = image.masks[p.source];
    const maps = [
      {
        side: src.width,
        values: maskValues(src),
        name: p.source,
        title: `${p.source} ${src.width}x${src.height}`,
      },
      ...levels[r].map((lv, l) => ({
        ...lv,
        name: `${p.key}[${l}]`,
        title: `level ${l}: ${lv.side}x${lv.side}`,
      })),
    ];
    return {
      label: p.label,
      heading: r === 0 ? "Mask pyramids" : undefined,
      panels: maps.map((m) => ({
        kind: "image",
        title: m.title,
        size: M,
        layers: [
          { kind: "image", name: "reference", image: rgb, photo: true },
          { kind: "heatmap", name: m.name, values: m.values, width: m.side, height: m.side, scale: unit },
        ],
      })),
    };
  });
  const spec: FigureSpec = {
    name: "portrait",
    caption: "Portrait, landmarks and masks",
    title: `Portrait: ${image.source.split("/").pop()} (${image.width}x${image.height} -> ${S}x${S})`,
    subtitle: `478 landmarks, mask regions, insightface box${image.detection ? "" : " (none found)"}; ` +
      "pyramids overlaid (viridis, 0..1)",
    rows: [
      {
        panels: [{
          kind: "image",
          title: `reference ${S}x${S}`,
          size: D,
          span: 5,
          layers: [
            { kind: "image", name: "reference", image: rgb, photo: true },
            {
              kind: "points",
              name: `landmarks (${pts.length})`,
              x: pts.map((p) => p[0]),
              y: pts.map((p) => p[1]),
              color: PALETTE[0],
            },
            ...boxes.map((b): BoxLayer => ({ kind: "box", ...b })),
          ],
        }],
      },
      ...maskRows,
    ],
  };
  const rgbOut: RgbImage = rgb;
  spec.summary = {
    size: S,
    image: [image.width, image.height],
    landmarks: pts.length,
    boxes: Object.fromEntries(boxes.map((b) => [b.name, b.box.map((v) => round4(v))])),
    levels: levels.map((lv) => lv.map((x) => x.side)),
    maskMeans: Object.fromEntries(
      PYRAMIDS.map((
        p,
        r,
      ) => [p.key, levels[r].map((x) => round4(x.values.reduce((a, b) => a + b, 0) / x.values.length))]),
    ),
    pixelRange: [
      rgbOut.data.reduce((a, b) => Math.min(a, b), 255),
      rgbOut.data.reduce((a, b) => Math.max(a, b), 0),
    ],
  };
  return spec;
}

/** The portrait figure of a prepared image. */
export async function portraitFigure(image: PreparedImage, o: PortraitOptions = {}): Promise<VizFigure> {
  return await drawFigure(describePortrait(image, o));
}
