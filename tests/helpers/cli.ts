/**
 * The `hallo` CLI (src/cli/main.ts, what `deno task hallo` runs) in a child process, for the tests that check
 * it end to end: exit code, stdout, stderr and how long it took.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = join(ROOT, "src", "cli", "main.ts");

/** What a finished CLI run gave back. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
  /** Wall time from spawn to exit, for the "fails before any heavy work" checks. */
  seconds: number;
}

/** Extra variables for the child (added to this process's environment). */
export interface CliOptions {
  env?: Record<string, string>;
}

/**
 * `hallo <command> ...args` as a Deno.Command with piped output, run from the project root; for tests that
 * spawn it to kill it midway. Everything else wants `runCli`.
 */
export function cliCommand(command: string, args: string[], o: CliOptions = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, command, ...args],
    cwd: ROOT,
    env: o.env,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `hallo <command> ...args` to its end. */
export async function runCli(command: string, args: string[], o: CliOptions = {}): Promise<CliResult> {
  const t0 = performance.now();
  const r = await cliCommand(command, args, o).output();
  const dec = new TextDecoder();
  return {
    code: r.code,
    out: dec.decode(r.stdout),
    err: dec.decode(r.stderr),
    seconds: (performance.now() - t0) / 1000,
  };
}
