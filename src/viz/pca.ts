/**
 * PCA of feature tokens to RGB: the three leading principal directions of (N, C) rows by subspace iteration
 * (no C x C covariance: C is 320..1280 in Hallo and N up to 6 x 4096), each component stretched over its
 * 1st..99th percentile to a colour channel.
 */

export interface PcaRgb {
  /** (N, 3) projections on the components. */
  projections: Float32Array;
  /** Share of the total variance each component explains, largest first. */
  explained: number[];
  /** (N, 3) colours. */
  rgb: Uint8Array;
}

/** Deterministic start vectors (a fixed LCG), so the same features give the same colours. */
function startVectors(c: number, k: number): Float64Array {
  const v = new Float64Array(c * k);
  let s = 12345;
  for (let i = 0; i < v.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    v[i] = s / 2 ** 32 - 0.5;
  }
  return v;
}

/** Gram-Schmidt on the k columns of a (c, k) matrix, in place. */
function orthonormalize(v: Float64Array, c: number, k: number): void {
  for (let j = 0; j < k; j++) {
    for (let p = 0; p < j; p++) {
      let d = 0;
      for (let i = 0; i < c; i++) d += v[i * k + j] * v[i * k + p];
      for (let i = 0; i < c; i++) v[i * k + j] -= d * v[i * k + p];
    }
    let n = 0;
    for (let i = 0; i < c; i++) n += v[i * k + j] ** 2;
    n = Math.sqrt(n) || 1;
    for (let i = 0; i < c; i++) v[i * k + j] /= n;
  }
}

function percentile(sorted: Float32Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

/**
 * PCA of `n` rows of `c` features (row-major) to RGB; fewer than 3 features leave the extra channels grey.
 * The directions are fitted on at most `maxFitRows` evenly strided rows (full-size banks have 24,576 tokens
 * of 320 channels), then every row is projected.
 */
export function pcaRgb(x: Float32Array, n: number, c: number, iterations = 30, maxFitRows = 4096): PcaRgb {
  if (x.length !== n * c) throw new RangeError(`pca: ${x.length} values are not ${n} rows of ${c}`);
  const k = Math.min(3, c);
  const mean = new Float64Array(c);
  for (let r = 0; r < n; r++) for (let i = 0; i < c; i++) mean[i] += x[r * c + i];
  for (let i = 0; i < c; i++) mean[i] /= n;
  let total = 0;
  for (let r = 0; r < n; r++) for (let i = 0; i < c; i++) total += (x[r * c + i] - mean[i]) ** 2;
  const v = startVectors(c, k);
  orthonormalize(v, c, k);
  const stride = Math.max(1, Math.ceil(n / maxFitRows));
  const y = new Float64Array(n * k);
  const project = (step: number) => {
    y.fill(0);
    for (let r = 0; r < n; r += step) {
      for (let i = 0; i < c; i++) {
        const d = x[r * c + i] - mean[i];
        for (let j = 0; j < k; j++) y[r * k + j] += d * v[i * k + j];
      }
    }
  };
  for (let it = 0; it < iterations; it++) {
    project(stride);
    v.fill(0);
    for (let r = 0; r < n; r += stride) {
      for (let i = 0; i < c; i++) {
        const d = x[r * c + i] - mean[i];
        for (let j = 0; j < k; j++) v[i * k + j] += d * y[r * k + j];
      }
    }
    orthonormalize(v, c, k);
  }
  // Signs are arbitrary: make each direction's largest coefficient positive, so colours are reproducible.
  for (let j = 0; j < k; j++) {
    let best = 0;
    for (let i = 0; i < c; i++) if (Math.abs(v[i * k + j]) > Math.abs(best)) best = v[i * k + j];
    if (best < 0) { for (let i = 0; i < c; i++) v[i * k + j] = -v[i * k + j]; }
  }
  project(1);
  const projections = new Float32Array(n * 3);
  const explained: number[] = [];
  const rgb = new Uint8Array(n * 3).fill(128);
  for (let j = 0; j < k; j++) {
    const col = new Float32Array(n);
    let s2 = 0;
    for (let r = 0; r < n; r++) {
      col[r] = y[r * k + j];
      projections[r * 3 + j] = col[r];
      s2 += col[r] ** 2;
    }
    explained.push(total > 0 ? s2 / total : 0);
    const sorted = col.slice().sort();
    const lo = percentile(sorted, 0.01), hi = percentile(sorted, 0.99);
    const s = hi > lo ? 255 / (hi - lo) : 0;
    for (let r = 0; r < n; r++) rgb[r * 3 + j] = Math.max(0, Math.min(255, Math.round((col[r] - lo) * s)));
  }
  return { projections, explained, rgb };
}
