/**
 * What a GPU run needs and where it was found: ORT's execution providers (started on a one-node graph), the
 * shared libraries behind them (CUDA runtime, cuBLAS, cuDNN, the NVIDIA driver, the Vulkan loader and ICDs),
 * the Vulkan adapter as WebGPU reports it, and for each missing piece the step that brings it.
 */
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { type Device, DEVICES } from "./device.ts";
import { probeProvider, type ProbeResult } from "./providers.ts";

/** One library looked for: the sonames tried, where it was found (or not), and the fix. */
export interface LibraryCheck {
  /** What the library is for, e.g. "CUDA runtime 12". */
  what: string;
  sonames: readonly string[];
  /** Absolute path found, with how it was found (`ldconfig`, `LD_LIBRARY_PATH`, a named folder). */
  found?: { path: string; via: string };
  fix: string;
}

/** The WebGPU adapter as Deno's WebGPU (over the same Vulkan loader and drivers) reports it. */
export interface AdapterInfo {
  description: string;
  vendor: string;
  architecture: string;
  device: string;
  isFallbackAdapter: boolean;
}

/** A Vulkan ICD manifest: the driver library it names. */
export interface IcdInfo {
  manifest: string;
  library: string;
}

export interface DoctorReport {
  providers: (ProbeResult & { fix?: string })[];
  onnxruntime: { dir: string; cudaProvider?: string };
  cuda: LibraryCheck[];
  vulkan: {
    loader: LibraryCheck;
    icds: IcdInfo[];
    mesa?: string;
    adapter?: AdapterInfo;
    adapterError?: string;
  };
}

const WEBGPU_FIX =
  "install a Vulkan driver: on Debian bookworm `mesa-vulkan-drivers` from bookworm-backports " +
  "(Mesa 25; lavapipe runs Vulkan on the CPU, see .ci/run), on a GPU machine the vendor's driver with its " +
  "Vulkan ICD; headless shells need XDG_RUNTIME_DIR (hallo sets a private one when unset)";

const CUDA_EP_FIX =
  "the CUDA execution provider is not in the onnxruntime-node npm tarball: on a machine with " +
  "internet and CUDA 12 run `deno install --allow-scripts=npm:onnxruntime-node` in the project (its install " +
  "script fetches libonnxruntime_providers_cuda.so from the Microsoft.ML.OnnxRuntime.Gpu.Linux 1.30.0 NuGet " +
  "package into node_modules/onnxruntime-node/bin/napi-v6/linux/x64/)";

/** Folders named by the usual CUDA variables and install places, and the pip `nvidia-*` wheels. */
function namedCudaDirs(): string[] {
  const dirs: string[] = [];
  for (const v of ["CUDA_HOME", "CUDA_PATH", "CUDNN_HOME"]) {
    const d = Deno.env.get(v);
    if (d) dirs.push(join(d, "lib64"), join(d, "lib"));
  }
  dirs.push("/usr/local/cuda/lib64", "/usr/local/cuda/lib");
  for (const root of ["/usr/local", "/opt"]) {
    for (const e of readDir(root)) {
      if (e.startsWith("cuda-")) dirs.push(join(root, e, "lib64"), join(root, e, "lib"));
    }
  }
  // pip wheels: <site-packages>/nvidia/<component>/lib
  const sites = [Deno.env.get("VIRTUAL_ENV"), Deno.env.get("CONDA_PREFIX"), "/usr/local", "/usr"]
    .filter((d): d is string => !!d)
    .flatMap((p) =>
      readDir(join(p, "lib")).filter((e) => e.startsWith("python3")).map((e) => join(p, "lib", e))
    )
    .flatMap((d) => [join(d, "site-packages"), join(d, "dist-packages")]);
  for (const s of sites) for (const c of readDir(join(s, "nvidia"))) dirs.push(join(s, "nvidia", c, "lib"));
  return dirs;
}

function readDir(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

let ldconfigCache: Map<string, string> | undefined;

/** soname -> path from the dynamic linker's cache (`ldconfig -p`); empty where ldconfig is missing. */
function ldconfig(): Map<string, string> {
  if (ldconfigCache) return ldconfigCache;
  ldconfigCache = new Map();
  for (const bin of ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"]) {
    try {
      const out = new Deno.Command(bin, { args: ["-p"], stdout: "piped", stderr: "null" }).outputSync();
      if (!out.success) continue;
      for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
        const m = /^\s*(\S+) \(([^)]*)\) => (\S+)/.exec(line);
        if (m && m[2].includes("x86-64") && !ldconfigCache.has(m[1])) ldconfigCache.set(m[1], m[3]);
      }
      break;
    } catch { /* try the next place */ }
  }
  return ldconfigCache;
}

/** Looks for the first of `sonames` on LD_LIBRARY_PATH, in the linker cache, then in `named` folders. */
export function findLibrary(
  what: string,
  sonames: readonly string[],
  fix: string,
  named: readonly string[] = [],
): LibraryCheck {
  const ldPath = (Deno.env.get("LD_LIBRARY_PATH") ?? "").split(":").filter((d) => d);
  for (const so of sonames) {
    for (const d of ldPath) {
      if (exists(join(d, so))) {
        return { what, sonames, found: { path: join(d, so), via: "LD_LIBRARY_PATH" }, fix };
      }
    }
    const cached = ldconfig().get(so);
    if (cached) return { what, sonames, found: { path: cached, via: "ldconfig" }, fix };
    for (const d of named) {
      if (exists(join(d, so))) {
        return {
          what,
          sonames,
          found: { path: join(d, so), via: `${d} (not on the linker path: add it to LD_LIBRARY_PATH)` },
          fix,
        };
      }
    }
  }
  return { what, sonames, fix };
}

/** The CUDA libraries ORT 1.30's CUDA provider links (CUDA 12, cuDNN 9) and the driver. */
export function cudaLibraries(): LibraryCheck[] {
  const named = namedCudaDirs();
  const pip = (pkg: string) =>
    `\`pip install ${pkg}\` (or the CUDA 12 toolkit) and add its lib folder to LD_LIBRARY_PATH`;
  return [
    findLibrary(
      "NVIDIA driver (libcuda)",
      ["libcuda.so.1"],
      "install the NVIDIA driver (it brings libcuda.so.1)",
      named,
    ),
    findLibrary("CUDA runtime 12", ["libcudart.so.12"], pip("nvidia-cuda-runtime-cu12"), named),
    findLibrary("cuBLAS 12", ["libcublas.so.12"], pip("nvidia-cublas-cu12"), named),
    findLibrary("cuBLASLt 12", ["libcublasLt.so.12"], pip("nvidia-cublas-cu12"), named),
    findLibrary("cuDNN 9", ["libcudnn.so.9"], pip("nvidia-cudnn-cu12"), named),
    findLibrary("cuRAND 10", ["libcurand.so.10"], pip("nvidia-curand-cu12"), named),
    findLibrary("cuFFT 11", ["libcufft.so.11"], pip("nvidia-cufft-cu12"), named),
  ];
}

/** The folder of onnxruntime-node's native binaries, and the CUDA provider library when present there. */
export function onnxruntimeBinaries(): { dir: string; cudaProvider?: string } {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve("onnxruntime-node/package.json");
  const dir = join(dirname(pkg), "bin", "napi-v6", "linux", "x64");
  const cuda = join(dir, "libonnxruntime_providers_cuda.so");
  return { dir, cudaProvider: exists(cuda) ? cuda : undefined };
}

/** Vulkan ICD manifests of the standard folders (or VK_ICD_FILENAMES / VK_DRIVER_FILES), with their drivers. */
export function vulkanIcds(): IcdInfo[] {
  const env = Deno.env.get("VK_DRIVER_FILES") ?? Deno.env.get("VK_ICD_FILENAMES");
  const files = env
    ? env.split(":").filter((f) => f)
    : ["/etc/vulkan/icd.d", "/usr/share/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"]
      .flatMap((d) => readDir(d).filter((f) => f.endsWith(".json")).map((f) => join(d, f)));
  const out: IcdInfo[] = [];
  for (const manifest of files) {
    try {
      const j = JSON.parse(Deno.readTextFileSync(manifest)) as { ICD?: { library_path?: string } };
      out.push({ manifest, library: j.ICD?.library_path ?? "?" });
    } catch { /* unreadable manifest: the loader skips it too */ }
  }
  return out;
}

/** The installed Mesa Vulkan driver package version (Debian), when dpkg knows it. */
function mesaVersion(): string | undefined {
  try {
    const out = new Deno.Command("dpkg-query", {
      args: ["-W", "-f=${Version}", "mesa-vulkan-drivers"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const v = new TextDecoder().decode(out.stdout).trim();
    return out.success && v ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The WebGPU adapter Deno's WebGPU gets from the same Vulkan loader. */
async function webgpuAdapter(): Promise<{ adapter?: AdapterInfo; error?: string }> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return { error: "this Deno has no navigator.gpu" };
  try {
    const a = await gpu.requestAdapter() as { info: Record<string, unknown> } | null;
    if (!a) return { error: "no WebGPU adapter (no Vulkan driver found by the loader)" };
    const i = a.info;
    return {
      adapter: {
        description: String(i.description ?? ""),
        vendor: String(i.vendor ?? ""),
        architecture: String(i.architecture ?? ""),
        device: String(i.device ?? ""),
        isFallbackAdapter: Boolean(i.isFallbackAdapter),
      },
    };
  } catch (e) {
    return { error: (e as Error).message.split("\n")[0] };
  }
}

/** Runs every check. Never throws: what is missing is in the report, with its fix. */
export async function diagnose(): Promise<DoctorReport> {
  const ortBins = onnxruntimeBinaries();
  const cuda = cudaLibraries();
  const providers: DoctorReport["providers"] = [];
  for (const d of DEVICES as readonly Device[]) {
    const r = await probeProvider(d);
    let fix: string | undefined;
    if (!r.ok && d === "webgpu") fix = WEBGPU_FIX;
    if (!r.ok && d === "cuda") {
      const missing = cuda.filter((l) => !l.found).map((l) => `${l.what}: ${l.fix}`);
      fix = ortBins.cudaProvider
        ? `the CUDA provider library is installed but did not start; missing: ${
          missing.join("; ") || "none found missing"
        }`
        : CUDA_EP_FIX;
    }
    providers.push({ ...r, fix });
  }
  const { adapter, error } = await webgpuAdapter();
  return {
    providers,
    onnxruntime: ortBins,
    cuda,
    vulkan: {
      loader: findLibrary(
        "Vulkan loader",
        ["libvulkan.so.1"],
        "install `libvulkan1` (Debian) or the vendor's loader",
      ),
      icds: vulkanIcds(),
      mesa: mesaVersion(),
      adapter,
      adapterError: error,
    },
  };
}
