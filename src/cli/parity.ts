/**
 * `deno task parity [DIR] [--case NAME]... [--strict] [--json] [--device D] [--dtype T] [--strict-device]`:
 * runs every known case of a reference directory (default: tests/reference inside the project) on a device
 * and prints one row per compared tensor.
 */
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { type ParityRow, runParity } from "../parity/runner.ts";
import { PARITY_CASES } from "../parity/registry.ts";
import type { CaseNetworkOptions } from "../parity/types.ts";
import { parseDevice } from "../runtime/device.ts";
import { parseDType } from "../runtime/dtype.ts";

const DEFAULT_DIR = fileURLToPath(new URL("../../tests/reference", import.meta.url));

function fmt(v: number | null, digits = 2): string {
  return v === null ? "-" : v.toExponential(digits);
}

function line(r: ParityRow): string {
  const status = r.pass ? (r.note ? "skip" : "pass") : "FAIL";
  const t = (v: number | null) => v === null ? "-" : v.toFixed(2);
  return [
    r.case.padEnd(28),
    r.tensor.padEnd(34),
    fmt(r.rel_l2).padStart(9),
    fmt(r.max_abs).padStart(9),
    status.padEnd(5),
    `${t(r.build_s)}/${t(r.session_s)}/${t(r.run_s)}`.padEnd(16),
    r.note ?? "",
  ].join(" ");
}

export async function run(args: string[]): Promise<number> {
  const only: string[] = [];
  let dir: string | undefined;
  let json = false, strict = false;
  const network: CaseNetworkOptions = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--case") only.push(args[++i] ?? "");
    else if (a === "--device" || a === "--dtype") {
      try {
        if (a === "--device") network.device = parseDevice(args[++i] ?? "");
        else network.dtype = parseDType(args[++i] ?? "");
      } catch (e) {
        console.error(`parity: ${a}: ${(e as Error).message}`);
        return 2;
      }
    } else if (a === "--strict-device") network.strictDevice = true;
    else if (a === "--json") json = true;
    else if (a === "--strict") strict = true;
    else if (a === "--help" || a === "-h") {
      console.log(
        "usage: deno task parity [DIR] [--case NAME]... [--strict] [--json] [--device cpu|cuda|webgpu] " +
          "[--dtype fp32|fp16] [--strict-device]",
      );
      return 0;
    } else if (a.startsWith("-")) {
      console.error(`parity: unknown option ${a}`);
      return 2;
    } else dir = a;
  }
  dir ??= DEFAULT_DIR;
  if (!existsSync(dir)) {
    console.error(`parity: reference directory ${dir} does not exist`);
    return 2;
  }
  if (!json) {
    console.log(`reference: ${dir}`);
    console.log(`device: ${network.device ?? "cpu"}, dtype: ${network.dtype ?? "float32"}`);
    console.log(
      `${"case".padEnd(28)} ${"tensor".padEnd(34)} ${"rel_l2".padStart(9)} ${
        "max_abs".padStart(9)
      } state build/sess/run s`,
    );
  }
  let rows: ParityRow[];
  try {
    rows = await runParity(dir, PARITY_CASES, {
      only,
      strict,
      network,
      onRow: (r) => console.log(json ? JSON.stringify(r) : line(r)),
    });
  } catch (e) {
    console.error(`parity: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
  const failed = rows.filter((r) => !r.pass).length;
  if (!json) console.log(`\n${rows.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await run(Deno.args));
