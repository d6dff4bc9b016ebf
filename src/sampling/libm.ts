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
