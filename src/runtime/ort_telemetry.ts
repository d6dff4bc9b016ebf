/**
 * Turns off ORT's telemetry for this process unless the user chose otherwise. onnxruntime-node 1.30's Linux and
 * macOS builds start Microsoft's 1DS telemetry with their environment (at the first session) unless
 * `ORT_DISABLE_TELEMETRY` is set, and it writes `mat-debug-<pid>.log` and `.ses` into the temp folder of every
 * process that opens a session, and never removes them: one file per CLI run, test process and notebook
 * kernel. ORT reads the variable when it creates its environment, so setting it before the first session
 * (this module is imported by every module that creates one) is enough.
 */
const NAME = "ORT_DISABLE_TELEMETRY";

// Queried first so that a process run without env permission is neither prompted nor refused: it keeps ORT's
// default.
if (Deno.permissions.querySync({ name: "env", variable: NAME }).state === "granted") {
  if (Deno.env.get(NAME) === undefined) Deno.env.set(NAME, "1");
}
