/**
 * The PNG rendering of a figure: panels (raster images and/or SVG drawings) laid out in labelled grids,
 * stacked in sections under a title, composited by sharp onto a white canvas with one SVG overlay for all
 * text and vector marks (librsvg rasterises it).
 */
import { Buffer } from "node:buffer";
import sharp, { type OverlayOptions } from "sharp";
import type { RgbImage } from "./raster.ts";

/** One cell of a grid. */
export interface Panel {
  /** Raster content, drawn at its own size. */
  image?: RgbImage;
  /** Where the image goes inside the panel (default the top left corner). */
  imageAt?: { x: number; y: number };
  /** Size of a panel without an image (a chart); an image's own size otherwise. */
  width?: number;
  height?: number;
  /** SVG elements drawn over the panel, in panel pixels. */
  svg?: string;
  /** Caption above the panel. */
  label?: string;
}

/** A grid of panels with optional row and column labels. */
export interface Section {
  title?: string;
  rows: (Panel | null)[][];
  rowLabels?: string[];
  colLabels?: string[];
}

export interface CanvasSpec {
  title: string;
  /** A line under the title (sizes, settings, notices). */
  subtitle?: string;
  sections: Section[];
}

const FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif";
const GAP = 6;
const MARGIN = 10;
const LABEL_H = 15;
const CHAR_W = 6.6; // average advance of the 11 px font, for label widths

/** Escapes text for SVG. */
export function svgText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function clip(s: string, maxChars: number): string {
  return s.length <= maxChars ? s : `${s.slice(0, Math.max(1, maxChars - 1))}…`;
}

function text(x: number, y: number, s: string, o: { size?: number; bold?: boolean; anchor?: string } = {}) {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${FONT}" font-size="${o.size ?? 11}"` +
    `${o.bold ? ' font-weight="bold"' : ""} text-anchor="${o.anchor ?? "start"}" fill="#222">${
      svgText(s)
    }</text>`;
}

function panelSize(p: Panel | null): [number, number] {
  if (!p) return [0, 0];
  const iw = p.image ? p.image.width + (p.imageAt?.x ?? 0) : 0;
  const ih = p.image ? p.image.height + (p.imageAt?.y ?? 0) : 0;
  return [Math.max(iw, p.width ?? 0), Math.max(ih, p.height ?? 0)];
}

/** Lays out one section from `top`; returns its height, the placed panels and its SVG text. */
function layoutSection(
  s: Section,
  top: number,
  width: { value: number },
  placed: PanelPlace[],
): [number, string] {
  const nCols = Math.max(0, ...s.rows.map((r) => r.length), s.colLabels?.length ?? 0);
  const colW = Array.from(
    { length: nCols },
    (_, c) => Math.max(0, ...s.rows.map((r) => panelSize(r[c] ?? null)[0])),
  );
  const rowLabelW = s.rowLabels?.length
    ? Math.min(330, Math.ceil(Math.max(...s.rowLabels.map((l) => l.length)) * CHAR_W) + 8)
    : 0;
  let svg = "";
  let y = top;
  if (s.title) {
    svg += text(MARGIN, y + 13, s.title, { size: 13, bold: true });
    y += 20;
  }
  const x0 = MARGIN + rowLabelW;
  const colX: number[] = [];
  for (let c = 0, x = x0; c < nCols; c++) {
    colX.push(x);
    x += colW[c] + GAP;
  }
  if (s.colLabels?.length) {
    s.colLabels.forEach((l, c) => {
      if (c < nCols) {
        svg += text(colX[c] + colW[c] / 2, y + 11, clip(l, Math.floor(colW[c] / CHAR_W) + 2), {
          anchor: "middle",
          bold: true,
        });
      }
    });
    y += LABEL_H;
  }
  s.rows.forEach((row, r) => {
    const hasLabels = row.some((p) => p?.label);
    const h = Math.max(0, ...row.map((p) => panelSize(p)[1]));
    const py = y + (hasLabels ? LABEL_H : 0);
    if (s.rowLabels?.[r]) {
      svg += text(MARGIN, py + h / 2 + 4, clip(s.rowLabels[r], Math.floor((rowLabelW - 8) / CHAR_W)), {
        bold: true,
      });
    }
    row.forEach((p, c) => {
      if (!p) return;
      if (p.label) svg += text(colX[c], y + 11, clip(p.label, Math.floor(panelSize(p)[0] / CHAR_W) + 1));
      placed.push({ panel: p, x: colX[c], y: py });
    });
    y = py + h + GAP;
  });
  width.value = Math.max(width.value, x0 + colW.reduce((a, b) => a + b + GAP, 0) + MARGIN);
  return [y - top + 4, svg];
}

/** Where a panel landed on the canvas (its top left corner, in pixels). */
export interface PanelPlace {
  panel: Panel;
  x: number;
  y: number;
}

/** Renders the figure's PNG and says where each panel went (in reading order). */
export async function renderCanvas(
  spec: CanvasSpec,
): Promise<{ png: Uint8Array; placed: PanelPlace[] }> {
  const placed: PanelPlace[] = [];
  const width = { value: 200 };
  let svg = text(MARGIN, 20, spec.title, { size: 15, bold: true });
  let y = 30;
  if (spec.subtitle) {
    svg += text(MARGIN, y + 10, spec.subtitle, { size: 11 });
    y += 18;
  }
  for (const s of spec.sections) {
    const [h, t] = layoutSection(s, y, width, placed);
    svg += t;
    y += h;
  }
  const W = Math.ceil(Math.max(width.value, spec.title.length * 9 + 2 * MARGIN));
  const H = Math.ceil(y + MARGIN);
  for (const p of placed) {
    if (p.panel.svg) svg += `<g transform="translate(${p.x},${p.y})">${p.panel.svg}</g>`;
  }
  const overlay = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${svg}</svg>`;
  const layers: OverlayOptions[] = placed.filter((p) => p.panel.image).map((p) => ({
    input: Buffer.from(
      p.panel.image!.data.buffer,
      p.panel.image!.data.byteOffset,
      p.panel.image!.data.length,
    ),
    raw: { width: p.panel.image!.width, height: p.panel.image!.height, channels: 3 as const },
    left: p.x + (p.panel.imageAt?.x ?? 0),
    top: p.y + (p.panel.imageAt?.y ?? 0),
  }));
  layers.push({ input: Buffer.from(overlay), left: 0, top: 0 });
  const buf = await sharp({ create: { width: W, height: H, channels: 3, background: "#ffffff" } })
    .composite(layers)
    .png({ compressionLevel: 6 })
    .toBuffer();
  return { png: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), placed };
}
