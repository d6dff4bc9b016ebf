/**
 * Colormaps shared by the PNG and the Plotly renderings: the same anchor colours go to sharp (interpolated
 * here) and to Plotly (as its `colorscale`), so both renderings of a figure agree.
 */

/** Anchors `[position in [0, 1], [r, g, b]]`, positions increasing from 0 to 1. */
export type Colormap = readonly (readonly [number, readonly [number, number, number]])[];

/** matplotlib's viridis at 11 evenly spaced points: sequential data (masks, attention, magnitudes). */
export const VIRIDIS: Colormap = [
  [0.0, [68, 1, 84]],
  [0.1, [72, 36, 117]],
  [0.2, [65, 68, 135]],
  [0.3, [53, 95, 141]],
  [0.4, [42, 120, 142]],
  [0.5, [33, 145, 140]],
  [0.6, [34, 168, 132]],
  [0.7, [68, 191, 112]],
  [0.8, [122, 209, 81]],
  [0.9, [189, 223, 38]],
  [1.0, [253, 231, 37]],
];

/** ColorBrewer RdBu, blue for negative and red for positive: signed data centred on 0. */
export const BLUE_RED: Colormap = [
  [0.0, [33, 102, 172]],
  [0.25, [103, 169, 207]],
  [0.5, [247, 247, 247]],
  [0.75, [239, 138, 98]],
  [1.0, [178, 24, 43]],
];

/** A 256-entry RGB lookup table of a colormap. */
export function colormapTable(cmap: Colormap): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  let k = 0;
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    while (k < cmap.length - 2 && t > cmap[k + 1][0]) k++;
    const [t0, c0] = cmap[k];
    const [t1, c1] = cmap[k + 1];
    const u = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 0;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(c0[c] + u * (c1[c] - c0[c]));
  }
  return lut;
}

/** The colormap as a Plotly `colorscale`. */
export function plotlyColorscale(cmap: Colormap): [number, string][] {
  return cmap.map(([t, [r, g, b]]) => [t, `rgb(${r},${g},${b})`]);
}
