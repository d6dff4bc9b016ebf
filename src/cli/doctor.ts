/**
 * `deno task hallo doctor [--json]`: which execution providers start here, which libraries were found where,
 * and the step that brings each missing piece. Exits 0 whatever is missing (it is a report, not a check).
 */
import { diagnose, type DoctorReport, type LibraryCheck } from "../runtime/doctor.ts";

const USAGE = `usage: deno task hallo doctor [--json]

Starts each ORT execution provider (cpu, webgpu, cuda) on a one-node graph and looks for the libraries
behind them: the CUDA runtime, cuBLAS, cuDNN and the NVIDIA driver (LD_LIBRARY_PATH, the linker cache,
CUDA_HOME / /usr/local/cuda* / pip nvidia-* wheels), the Vulkan loader, ICDs and the adapter WebGPU sees.
Each missing piece is printed with the step that brings it.`;

function lib(l: LibraryCheck): string {
  return l.found
    ? `  found    ${l.what.padEnd(24)} ${l.found.path} (${l.found.via})`
    : `  missing  ${l.what.padEnd(24)} ${l.sonames.join(", ")}\n           fix: ${l.fix}`;
}

/** The report as text, one section per concern. */
export function formatReport(r: DoctorReport): string {
  const out: string[] = ["execution providers (onnxruntime-node 1.30):"];
  for (const p of r.providers) {
    out.push(
      p.ok
        ? `  available ${p.device.padEnd(7)} (started in ${p.seconds.toFixed(2)} s)`
        : `  missing   ${p.device.padEnd(7)} ${p.error}\n           fix: ${p.fix ?? "-"}`,
    );
  }
  out.push("", `onnxruntime-node binaries: ${r.onnxruntime.dir}`);
  out.push(`  CUDA provider library: ${r.onnxruntime.cudaProvider ?? "absent (see the cuda fix above)"}`);
  out.push("", "CUDA libraries (ORT 1.30's CUDA provider links CUDA 12 and cuDNN 9):");
  for (const l of r.cuda) out.push(lib(l));
  out.push("", "Vulkan (WebGPU runs on Dawn over Vulkan):", lib(r.vulkan.loader));
  if (r.vulkan.icds.length === 0) out.push("  no ICD manifests: no Vulkan driver is installed");
  for (const i of r.vulkan.icds) out.push(`  ICD      ${i.manifest} -> ${i.library}`);
  if (r.vulkan.mesa) out.push(`  Mesa Vulkan drivers: ${r.vulkan.mesa}`);
  const a = r.vulkan.adapter;
  out.push(
    a
      ? `  adapter  ${a.description} (vendor ${a.vendor}, device ${a.device}${
        a.isFallbackAdapter ? ", a CPU/fallback adapter: correct but slow" : ""
      })`
      : `  adapter  none (${r.vulkan.adapterError})`,
  );
  return out.join("\n");
}

export async function run(args: string[]): Promise<number> {
  let json = false;
  for (const a of args) {
    if (a === "--json") json = true;
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      return 0;
    } else {
      console.error(`doctor: unknown argument '${a}' (see --help)`);
      return 2;
    }
  }
  const report = await diagnose();
  console.log(json ? JSON.stringify(report, null, 2) : formatReport(report));
  return 0;
}

if (import.meta.main) Deno.exit(await run(Deno.args));
