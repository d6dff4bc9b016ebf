/**
 * The reference image as the networks see it: the (size x size) pixel tensor with MediaPipe's 478 landmarks,
 * the face and lip mask regions (after expand_region), insightface's face box, and the three mask pyramids
 * (full = sep_background, face = sep_face, lip = sep_lip) with their 64x64 sources, each level overlaid.
 */
import type { PreparedImage } from "../stages/image/prepare.ts";
import type { Region } from "../stages/image/regions.ts";
import type { U8Image } from "../stages/image/types.ts";
import { type Panel, renderCanvas, svgText } from "./canvas.ts";
import { PALETTE } from "./charts.ts";
import { type PlotlyTrace, VizError, type VizFigure, vizFigure } from "./figure.ts";
import { heatTrace, imageTrace, plotlyGrid, round4 } from "./plotly.ts";
import { chwToRgb, fitTo, imageDataUri, overlayMap, resizeRgb, type RgbImage } from "./raster.ts";
import type { CellSpec } from "./plotly.ts";

/** The pyramids in the order the denoising UNet's audio branches use them. */
export const PYRAMIDS = [
  { key: "fullMask", source: "sepBackground", label: "full (sep_background)" },
  { key: "faceMask", source: "sepFace", label: "face (sep_face)" },
  { key: "lipMask", source: "sepLip", label: "lip (sep_lip)" },
] as const;

const BOX_COLORS = { face: PALETTE[2], lip: PALETTE[1], bbox: PALETTE[3] };

export interface PortraitOptions {
  /** Side of the portrait in the PNG (default 384). */
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

/** The portrait figure of a prepared image. */
export async function portraitFigure(image: PreparedImage, o: PortraitOptions = {}): Promise<VizFigure> {
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
      dash: "solid",
    },
    {
      name: "lip mask region (x2.0)",
      box: scaleBox(regionBox(image.masks.lipBox.expanded, image.width, image.height), sx, sy),
      color: BOX_COLORS.lip,
      dash: "solid",
    },
    {
      name: image.detection ? "insightface box" : "insightface box (no face: whole image)",
      box: scaleBox(image.bbox, sx, sy),
      color: BOX_COLORS.bbox,
      dash: "dot",
    },
  ];
  const levels = PYRAMIDS.map((p) =>
    image[p.key].map((t, l) => {
      const side = levelSide(t, `${p.key}[${l}]`);
      return { side, values: t.data };
    })
  );

  // Plotly: the portrait on top, then one row per pyramid (64x64 source, levels 0..3).
  const thumbSide = Math.min(S, 128);
  const thumb = resizeRgb(rgb, thumbSide, thumbSide, "bilinear");
  const [portraitUri, thumbUri] = await Promise.all([imageDataUri(rgb, "jpeg"), imageDataUri(thumb, "jpeg")]);
  const cells: CellSpec[] = [{ row: 0, col: 0, kind: "image", colSpan: 5, title: `reference ${S}x${S}` }];
  for (let r = 0; r < 3; r++) {
    const src = image.masks[PYRAMIDS[r].source];
    cells.push({
      row: r + 1,
      col: 0,
      kind: "image",
      title: `${PYRAMIDS[r].source} ${src.width}x${src.height}`,
    });
    levels[r].forEach((lv, l) =>
      cells.push({ row: r + 1, col: l + 1, kind: "image", title: `level ${l}: ${lv.side}x${lv.side}` })
    );
  }
  const grid = plotlyGrid(4, 5, cells, {
    title: `Portrait: ${image.source.split("/").pop()}`,
    width: 900,
    height: 1250,
    rowHeights: [2.6, 1, 1, 1],
    rowLabels: ["", ...PYRAMIDS.map((p) => p.label)],
  });
  const ax0 = grid.axes[0];
  const data: PlotlyTrace[] = [
    imageTrace(portraitUri, ax0, "reference"),
    {
      type: "scatter",
      mode: "markers",
      name: "landmarks (478)",
      x: pts.map((p) => round4(p[0])),
      y: pts.map((p) => round4(p[1])),
      marker: { size: 3, color: PALETTE[0] },
      hovertemplate: "landmark %{pointNumber}: (%{x}, %{y})<extra></extra>",
      ...ax0,
    },
  ];
  const shapes = boxes.map((b) => ({
    type: "rect",
    xref: ax0.xaxis,
    yref: ax0.yaxis,
    x0: round4(b.box[0]),
    y0: round4(b.box[1]),
    x1: round4(b.box[2]),
    y1: round4(b.box[3]),
    line: { color: b.color, width: 2, dash: b.dash },
    label: { text: b.name, font: { size: 10, color: b.color }, textposition: "top left" },
  }));
  let k = 1;
  for (let r = 0; r < 3; r++) {
    const src = image.masks[PYRAMIDS[r].source];
    const maps = [{ side: src.width, values: maskValues(src) }, ...levels[r]];
    maps.forEach((m, col) => {
      const ax = grid.axes[k++];
      const cell = thumbSide / m.side;
      data.push(imageTrace(thumbUri, ax, "reference"));
      data.push(heatTrace(m.values, m.side, m.side, ax, {
        name: col === 0 ? PYRAMIDS[r].source : `${PYRAMIDS[r].key}[${col - 1}]`,
        x0: cell / 2,
        dx: cell,
        y0: cell / 2,
        dy: cell,
        zmin: 0,
        zmax: 1,
        opacity: 0.6,
      }));
    });
  }
  const plotly = { data, layout: { ...grid.layout, shapes } };

  // PNG: the same content.
  const D = o.displaySize ?? 384, M = o.maskSize ?? 96;
  const big = fitTo(rgb, D);
  const f = D / S;
  let svg = pts.map(([x, y]) =>
    `<circle cx="${(x * f).toFixed(1)}" cy="${(y * f).toFixed(1)}" r="1.3" fill="${PALETTE[0]}"/>`
  )
    .join("");
  let legend = "";
  boxes.forEach((b, i) => {
    const [x1, y1, x2, y2] = b.box.map((v) => v * f);
    svg += `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${
      (y2 - y1).toFixed(1)
    }" fill="none" stroke="${b.color}" stroke-width="2"${
      b.dash === "dot" ? ' stroke-dasharray="4,3"' : ""
    }/>`;
    legend +=
      `<rect x="0" y="${
        8 + 18 * i
      }" width="14" height="10" fill="none" stroke="${b.color}" stroke-width="2"/>` +
      `<text x="20" y="${17 + 18 * i}" font-family="sans-serif" font-size="11" fill="#222">${
        svgText(b.name)
      }</text>`;
  });
  legend += `<circle cx="7" cy="${13 + 18 * boxes.length}" r="2" fill="${PALETTE[0]}"/>` +
    `<text x="20" y="${17 + 18 * boxes.length}" font-family="sans-serif" font-size="11" fill="#222">` +
    `${pts.length} landmarks</text>`;
  const small = fitTo(rgb, M);
  const rows: Panel[][] = levels.map((lv, r) => {
    const src = image.masks[PYRAMIDS[r].source];
    const maps = [{ side: src.width, values: maskValues(src) }, ...lv];
    return maps.map((m, col): Panel => ({
      image: overlayMap(small, m.values, m.side, m.side, { range: [0, 1] }),
      label: col === 0 ? `${m.side}x${m.side} src` : `L${col - 1} ${m.side}x${m.side}`,
    }));
  });
  const png = await renderCanvas({
    title: `Portrait: ${image.source.split("/").pop()} (${image.width}x${image.height} -> ${S}x${S})`,
    subtitle: `478 landmarks, mask regions, insightface box${image.detection ? "" : " (none found)"}; ` +
      "pyramids overlaid (viridis, 0..1)",
    sections: [
      { rows: [[{ image: big, svg }, { width: 260, height: 20 + 18 * (boxes.length + 1), svg: legend }]] },
      { title: "Mask pyramids", rows, rowLabels: PYRAMIDS.map((p) => p.label) },
    ],
  });
  const rgbOut: RgbImage = rgb;
  return vizFigure("portrait", "Portrait, landmarks and masks", plotly, png, {
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
  });
}
