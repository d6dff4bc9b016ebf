/**
 * The C math library functions that PyTorch's CPU random kernels call, reached through Deno FFI.
 *
 * Bit-parity with `torch.randn` needs glibc's own `logf`/`cosf`/`sinf` (float32) and `log`/`cos`/`sin`
 * (float64): JavaScript's `Math.*` works in float64 with a different implementation, so rounding its result
 * to float32 is off by one ulp now and then. When FFI is not allowed (no `--allow-ffi`) or no glibc is
 * found, {@link openLibm} falls back to `Math.*` (rounded with `Math.fround` for the float32 functions) and
 * says so in `source`, so callers can report that the stream is approximate.
 */

/** The math functions the noise generator needs, float32 (`*f`) and float64 variants. */
export interface Libm {
  /** Where the functions come from: `"libm"` = glibc through FFI (bit-exact), `"js"` = Math.* fallback. */
  readonly source: "libm" | "js";
  /** Why the fallback was taken (absent when `source` is `"libm"`). */
  readonly fallbackReason?: string;
  logf(x: number): number;
  cosf(x: number): number;
  sinf(x: number): number;
  log(x: number): number;
  cos(x: number): number;
  sin(x: number): number;
}

/** Thrown when `openLibm("libm")` is asked for and glibc's libm cannot be opened. */
export class LibmUnavailableError extends Error {
  override name = "LibmUnavailableError";
}

const SYMBOLS = {
  logf: { parameters: ["f32"], result: "f32" },
  cosf: { parameters: ["f32"], result: "f32" },
  sinf: { parameters: ["f32"], result: "f32" },
  log: { parameters: ["f64"], result: "f64" },
  cos: { parameters: ["f64"], result: "f64" },
  sin: { parameters: ["f64"], result: "f64" },
} as const;

/** Sonames tried in order: glibc on x86-64/aarch64 Linux. */
const LIBM_NAMES = ["libm.so.6", "/lib/x86_64-linux-gnu/libm.so.6", "/lib/aarch64-linux-gnu/libm.so.6"];

let cachedLibm: Libm | undefined;
let cachedFailure: string | undefined;

function tryDlopen(): Libm | string {
  if (typeof Deno === "undefined" || typeof Deno.dlopen !== "function") return "Deno.dlopen is not available";
  let lastError = "no libm candidate";
  for (const name of LIBM_NAMES) {
    try {
      const lib = Deno.dlopen(name, SYMBOLS);
      // The library stays open for the life of the process: the generator may be used at any time.
      const s = lib.symbols;
      return {
        source: "libm",
        logf: s.logf,
        cosf: s.cosf,
        sinf: s.sinf,
        log: s.log,
        cos: s.cos,
        sin: s.sin,
      };
    } catch (e) {
      lastError = `${name}: ${e instanceof Error ? e.message : String(e)}`;
      // A permission error will not change with another name.
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) break;
    }
  }
  return lastError;
}

function jsLibm(reason: string): Libm {
  return {
    source: "js",
    fallbackReason: reason,
    logf: (x) => Math.fround(Math.log(x)),
    cosf: (x) => Math.fround(Math.cos(x)),
    sinf: (x) => Math.fround(Math.sin(x)),
    log: Math.log,
    cos: Math.cos,
    sin: Math.sin,
  };
}

/**
 * Opens the math functions.
 * `"auto"` (default): glibc through FFI if possible, else the `Math.*` fallback (see `source`).
 * `"libm"`: glibc or a {@link LibmUnavailableError}. `"js"`: always the fallback.
 */
export function openLibm(mode: "auto" | "libm" | "js" = "auto"): Libm {
  if (mode === "js") return jsLibm("requested");
  if (cachedLibm === undefined && cachedFailure === undefined) {
    const got = tryDlopen();
    if (typeof got === "string") cachedFailure = got;
    else cachedLibm = got;
  }
  if (cachedLibm !== undefined) return cachedLibm;
  const reason = `cannot open glibc libm through FFI (${cachedFailure}); run with --allow-ffi on glibc Linux`;
  if (mode === "libm") throw new LibmUnavailableError(reason);
  return jsLibm(reason);
}

const FMA_VIEW = new DataView(new ArrayBuffer(8));

/**
 * `fmaf(a, b, c)` for float32 a, b, c: a*b is exact in float64; the float64 sum is made round-to-odd (its
 * TwoSum error decides the last bit) so that the final rounding to float32 is correct.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const err = (p - (s - bb)) + (c - bb);
  if (err === 0 || !Number.isFinite(s)) return Math.fround(s);
  FMA_VIEW.setFloat64(0, s);
  const bits = FMA_VIEW.getBigUint64(0);
  if ((bits & 1n) === 0n) FMA_VIEW.setBigUint64(0, (err > 0) === (s > 0) ? bits + 1n : bits - 1n);
  return Math.fround(FMA_VIEW.getFloat64(0));
}

// ---- torch's AVX2 float32 randn kernel math (aten/src/ATen/native/cpu/avx_mathfun.h, cephes-based) ----
// Written from the algorithm, lane by lane, with float32 rounding after every op. The AVX2 build is compiled
// with FMA contraction: each multiply whose only use is an add becomes one fused op (found by matching
// torch 1.13's AVX2 draws bit for bit).

const f32 = Math.fround;
const LOG_P = [
  7.0376836292e-2,
  -1.1514610310e-1,
  1.1676998740e-1,
  -1.2420140846e-1,
  1.4249322787e-1,
  -1.6668057665e-1,
  2.0000714765e-1,
  -2.4999993993e-1,
  3.3333331174e-1,
].map(f32);
const LOG_Q1 = f32(-2.12194440e-4);
const LOG_Q2 = f32(0.693359375);
const SQRTHF = f32(0.707106781186547524);
const FOPI = f32(1.27323954473516);
const DP = [-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8].map(f32);
const SINCOF = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f32);
const COSCOF = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f32);
const LANE = new Float32Array(1);
const LANE_BITS = new Uint32Array(LANE.buffer);

/** One lane of `log256_ps` (x > 0). */
export function log256Lane(xIn: number): number {
  LANE[0] = Math.max(xIn, 2 ** -126);
  const bits = LANE_BITS[0];
  const exponent = (bits >>> 23) - 127;
  LANE_BITS[0] = (bits & ~0x7f800000) | 0x3f000000; // mantissa in [0.5, 1)
  let x = LANE[0];
  let e = f32(exponent + 1);
  if (x < SQRTHF) {
    e = f32(e - 1);
    x = f32(f32(x - 1) + x);
  } else {
    x = f32(x - 1);
  }
  const z = f32(x * x);
  let y = LOG_P[0];
  for (let k = 1; k < LOG_P.length; k++) y = fmaF32(y, x, LOG_P[k]);
  y = f32(y * x);
  y = fmaF32(y, z, f32(e * LOG_Q1));
  y = f32(y - f32(z * 0.5));
  return fmaF32(e, LOG_Q2, f32(x + y));
}

/** One lane of `sincos256_ps`: `[sin, cos]`. */
export function sincos256Lane(xIn: number): [number, number] {
  let x = Math.abs(xIn);
  let j = Math.trunc(f32(x * FOPI));
  j = (j + 1) & ~1;
  const swapSin = (j & 4) !== 0;
  const polyMask = (j & 2) === 0;
  const cosNegative = (~(j - 2) & 4) !== 0;
  for (const dp of DP) x = fmaF32(j, dp, x); // extended-precision reduction
  const z = f32(x * x);
  let y = fmaF32(COSCOF[0], z, COSCOF[1]);
  y = fmaF32(y, z, COSCOF[2]);
  y = f32(y * z);
  y = fmaF32(y, z, -f32(z * 0.5));
  y = f32(y + 1);
  let y2 = fmaF32(SINCOF[0], z, SINCOF[1]);
  y2 = fmaF32(y2, z, SINCOF[2]);
  y2 = f32(y2 * z);
  y2 = fmaF32(y2, x, x);
  // The kernel selects by masking and adding the other (zeroed) lane: + 0 turns -0 into +0 as it does.
  let s = (polyMask ? y2 : y) + 0;
  let c = (polyMask ? y : y2) + 0;
  if ((xIn < 0) !== swapSin) s = -s;
  if (cosNegative) c = -c;
  return [s, c];
}
