/**
 * Whether a process of this machine is still running, for files named after (or holding) the pid of their
 * writer: run-directory locks and partial mp4 files are stale once their writer is gone.
 */

/** True when process `pid` exists on this machine (a zombie counts as gone). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === Deno.pid) return true;
  if (Deno.build.os === "linux") {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      // Field 3 (after the parenthesised command name) is the state; Z = zombie, X = dead.
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      return state !== "Z" && state !== "X";
    } catch {
      return false;
    }
  }
  // Elsewhere `kill -0` asks the kernel without sending anything.
  try {
    return new Deno.Command("kill", { args: ["-0", String(pid)], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return true; // cannot tell: treat as alive, never steal from a live process
  }
}
