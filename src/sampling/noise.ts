/**
 * Upstream-exact initial noise: PyTorch's CPU generator (`torch.manual_seed` + `torch.randn`) re-done in
 * TypeScript, so a port starts from the very latents upstream Hallo starts from (spec section 6.3).
 *
 * What torch's CPU `normal_` does (aten/src/ATen/native/cpu/DistributionKernels.cpp, verified bit for bit
 * against Debian's torch 1.13.1):
 * - MT19937 seeded with the low 32 bits of the seed (standard init_genrand), one 32-bit draw per uniform.
 * - numel >= 16 (contiguous): every slot gets a uniform `(draw & (2^digits - 1)) * 2^-digits` (digits = 11
 *   for float16, 24 for float32), then each 16-block is Box-Muller'ed in place (slot j pairs with j + 8).
 *   If numel % 16 != 0 the last 16 slots are drawn again and transformed again.
 * - numel < 16: per element `normal_distribution<double>` (two 64-bit draws per pair, the second value is
 *   cached in the generator and survives across calls until the next manual_seed).
 * - float32 with numel >= 16 on an AVX2 CPU runs `normal_fill_AVX2` instead (cephes log/sincos in float32
 *   lanes, see libm.ts); float16 always takes the scalar path, whose log/cos/sin are glibc's logf/cosf/sinf.
 */

import { numel } from "../tensor.ts";
import { fmaF32, type Libm, log256Lane, openLibm, sincos256Lane } from "./libm.ts";

/** torch's default CPU seed (`default_rng_seed_val`), used when no seed is given. */
export const TORCH_DEFAULT_SEED = 67280421310721n;

/** Thrown for shapes, dtypes or seeds the generator cannot handle. */
export class NoiseError extends Error {
  override name = "NoiseError";
}

/** Element types `randn` can produce. */
export type RandnDType = "float16" | "float32";

/** One draw: float16 draws carry their IEEE half bits too. */
export interface RandnResult {
  readonly dtype: RandnDType;
  readonly shape: readonly number[];
  /** The values (float16 draws are exactly representable here). */
  readonly values: Float32Array;
  /** Raw IEEE half bits, only for float16 draws. */
  readonly bits?: Uint16Array;
}

/** Options of {@link TorchCpuGenerator.randn}. */
export interface RandnOptions {
  /**
   * For float32 numel >= 16 torch picks its kernel by CPU capability: `"avx2"` (default; what an AVX2 x86
   * machine runs, and what the references were made with) or `"default"` (the scalar kernel,
   * `ATEN_CPU_CAPABILITY=default`). Both are reproduced bit for bit; float16 has one kernel for all CPUs.
   */
  readonly cpuCapability?: "avx2" | "default";
  /** Mean and std of `normal_` (randn: 0 and 1). */
  readonly mean?: number;
  readonly std?: number;
}

const N = 624;
const M = 397;
const TWO_PI = 2 * Math.PI; // `2.0f * c10::pi<double>`: computed in double

/** Rounds a float32-representable value to the nearest float16 (ties to even). */
const toHalf: (x: number) => number = Math.f16round;

/**
 * Torch's CPU generator: MT19937 plus the cached Box-Muller sample of `normal_distribution<double>`.
 * Stateful: consecutive `randn` calls consume the stream like consecutive `torch.randn` calls.
 */
export class TorchCpuGenerator {
  private readonly mt = new Uint32Array(N);
  private mti = N;
  private nextDoubleNormal: number | undefined;
  private seed: bigint = TORCH_DEFAULT_SEED;
  /** The math functions in use; `libm.source === "js"` means the stream may differ from torch in rare values. */
  readonly libm: Libm;

  /** `seed` as `torch.manual_seed` takes it; `math` chooses glibc-through-FFI or the Math.* fallback. */
  constructor(seed: number | bigint = TORCH_DEFAULT_SEED, math: "auto" | "libm" | "js" = "auto") {
    this.libm = openLibm(math);
    this.manualSeed(seed);
  }

  /** Like `torch.manual_seed(seed)`: re-seeds MT19937 and drops the cached normal sample. */
  manualSeed(seed: number | bigint): this {
    if (typeof seed === "number" && !Number.isSafeInteger(seed)) {
      throw new NoiseError(`seed must be an integer, got ${seed}`);
    }
    this.seed = BigInt.asUintN(64, BigInt(seed));
    const mt = this.mt;
    mt[0] = Number(this.seed & 0xffffffffn);
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.mti = N;
    this.nextDoubleNormal = undefined;
    return this;
  }

  /** Like `torch.initial_seed()`. */
  initialSeed(): bigint {
    return this.seed;
  }

  /** An independent copy of the generator state (to replay a stream). */
  clone(): TorchCpuGenerator {
    const c = new TorchCpuGenerator(0n, this.libm.source === "libm" ? "libm" : "js");
    c.mt.set(this.mt);
    c.mti = this.mti;
    c.nextDoubleNormal = this.nextDoubleNormal;
    c.seed = this.seed;
    return c;
  }

  /** Next 32-bit draw (`CPUGeneratorImpl::random()`). */
  random(): number {
    if (this.mti >= N) this.twist();
    let y = this.mt[this.mti++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const mt = this.mt;
    for (let k = 0; k < N; k++) {
      const y = (mt[k] & 0x80000000) | (mt[(k + 1) % N] & 0x7fffffff);
      mt[k] = mt[(k + M) % N] ^ (y >>> 1) ^ ((y & 1) ? 0x9908b0df : 0);
    }
    this.mti = 0;
  }

  /** `uniform_real_distribution<double>`: 53 bits of `random64()` (first draw is the high word). */
  private uniformDouble(): number {
    const hi = this.random();
    const lo = this.random();
    return ((hi & 0x1fffff) * 4294967296 + lo) * 2 ** -53;
  }

  /** `at::normal_distribution<double>(mean, std)`, torch 1.13 form (`log(1 - u2)`). */
  private normalDouble(mean: number, std: number): number {
    if (this.nextDoubleNormal !== undefined) {
      const cached = this.nextDoubleNormal;
      this.nextDoubleNormal = undefined;
      return cached * std + mean;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    // Newer torch (2.x) writes log1p(-u2); 1.13, which made the references, writes log(1 - u2).
    const r = Math.sqrt(-2 * this.libm.log(1 - u2));
    const theta = TWO_PI * u1;
    this.nextDoubleNormal = r * this.libm.sin(theta);
    return r * this.libm.cos(theta) * std + mean;
  }

  /**
   * Like `torch.randn(shape, dtype=dtype)` on the CPU generator (also `normal_(mean, std)` via options).
   * Consumes the stream: the next call continues where this one stopped.
   */
  randn(shape: readonly number[], dtype: RandnDType = "float32", options: RandnOptions = {}): RandnResult {
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new NoiseError(`randn: bad shape [${shape.join(", ")}]`);
    }
    if (dtype !== "float16" && dtype !== "float32") throw new NoiseError(`randn: unsupported dtype ${dtype}`);
    const capability = options.cpuCapability ?? "avx2";
    if (capability !== "avx2" && capability !== "default") {
      throw new NoiseError(`randn: cpuCapability ${capability} is not reproduced ("avx2" or "default")`);
    }
    const n = numel(shape);
    const values = new Float32Array(n);
    const round = dtype === "float16" ? toHalf : Math.fround;
    const mean = round(options.mean ?? 0);
    const std = round(options.std ?? 1);
    if (n >= 16) {
      const avx2 = dtype === "float32" && capability === "avx2";
      this.normalFill(values, dtype, mean, std, avx2);
    } else {
      // static_cast<scalar_t>(double): double -> float (-> half) rounding.
      // normal_distribution<double> keeps mean/std in double.
      const [m, sd] = [options.mean ?? 0, options.std ?? 1];
      for (let i = 0; i < n; i++) values[i] = round(Math.fround(this.normalDouble(m, sd)));
    }
    const out: RandnResult = { dtype, shape: [...shape], values };
    return dtype === "float16" ? { ...out, bits: halfBitsOf(values) } : out;
  }

  /** `normal_fill` (or `normal_fill_AVX2`, same structure): uniforms everywhere, then 16-blocks. */
  private normalFill(data: Float32Array, dtype: RandnDType, mean: number, std: number, avx2: boolean): void {
    const n = data.length;
    const block = avx2
      ? boxMuller16Avx2
      : (d: Float32Array, o: number) => this.boxMuller16(d, o, dtype, mean, std);
    this.fillUniform(data, 0, n, dtype);
    for (let i = 0; i + 16 <= n; i += 16) block(data, i, mean, std);
    if (n % 16 !== 0) {
      this.fillUniform(data, n - 16, n, dtype);
      block(data, n - 16, mean, std);
    }
  }

  private fillUniform(data: Float32Array, from: number, to: number, dtype: RandnDType): void {
    if (dtype === "float16") {
      for (let i = from; i < to; i++) data[i] = (this.random() & 0x7ff) * 2 ** -11;
    } else {
      for (let i = from; i < to; i++) data[i] = (this.random() & 0xffffff) * 2 ** -24;
    }
  }

  /**
   * `normal_fill_16<scalar_t>`. For Half every named intermediate (u1, radius, theta) is a Half while the
   * products with a Half operand are float32 (c10's Half operators), and theta goes double -> float -> half.
   */
  private boxMuller16(d: Float32Array, o: number, dtype: RandnDType, mean: number, std: number): void {
    const { logf, cosf, sinf } = this.libm;
    const f = Math.fround;
    const r = dtype === "float16" ? toHalf : f;
    for (let j = 0; j < 8; j++) {
      const u1 = r(1 - d[o + j]);
      const u2 = d[o + j + 8];
      const radius = r(f(Math.sqrt(f(-2 * logf(u1)))));
      const theta = r(f(TWO_PI * u2));
      d[o + j] = r(f(f(f(radius * cosf(theta)) * std) + mean));
      d[o + j + 8] = r(f(f(f(radius * sinf(theta)) * std) + mean));
    }
  }
}

/** float32 `2.0f * c10::pi<double>` as the AVX2 kernel broadcasts it. */
const TWO_PI_F32 = Math.fround(TWO_PI);

/** `normal_fill_16_AVX2`: cephes log/sincos in float32 lanes, output `fma(r*cos, std, mean)`. */
function boxMuller16Avx2(d: Float32Array, o: number, mean: number, std: number): void {
  const f = Math.fround;
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - d[o + j]);
    const u2 = d[o + j + 8];
    const radius = f(Math.sqrt(f(-2 * log256Lane(u1))));
    const [sin, cos] = sincos256Lane(f(TWO_PI_F32 * u2));
    d[o + j] = fmaF32(f(radius * cos), std, mean);
    d[o + j + 8] = fmaF32(f(radius * sin), std, mean);
  }
}

/** `torch.manual_seed(seed)` on a fresh generator. */
export function manualSeed(seed: number | bigint, math: "auto" | "libm" | "js" = "auto"): TorchCpuGenerator {
  return new TorchCpuGenerator(seed, math);
}

/**
 * IEEE binary16 bits of a float32 value, round-to-nearest-even (overflow -> inf, NaN kept quiet).
 * Written by hand because the global Float16Array may be hidden by onnxruntime glue.
 */
export function halfBits(x: number): number {
  F32[0] = x;
  const b = U32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let m = full >>> shift;
    if (rem > halfway || (rem === halfway && (m & 1) !== 0)) m++;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to inf).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
  return h;
}

/** Value of IEEE binary16 bits. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** IEEE half bits of every value (values rounded to half, ties to even). */
export function halfBitsOf(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = halfBits(values[i]);
  return out;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
