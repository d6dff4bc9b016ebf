/**
 * Capturing what native code writes to the process's stderr (file descriptor 2) while an async call runs:
 * ORT's node-placement report is a log line of the session's logger, which onnxruntime-node sends to stderr
 * and nowhere else. fd 2 is pointed at a temporary file (a file, not a pipe: a pipe nobody reads while the
 * call runs would block the writer once full) and restored after; captures never overlap.
 */

const LIBC = {
  creat: { parameters: ["buffer", "u32"], result: "i32" },
  dup: { parameters: ["i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

let libc: Deno.DynamicLibrary<typeof LIBC> | undefined;
let queue: Promise<unknown> = Promise.resolve();

/** Thrown when stderr cannot be redirected (no libc, or FFI not permitted). */
export class CaptureError extends Error {
  override name = "CaptureError";
}

function open(): Deno.DynamicLibrary<typeof LIBC> {
  if (libc) return libc;
  try {
    libc = Deno.dlopen("libc.so.6", LIBC);
  } catch (e) {
    throw new CaptureError(
      `cannot read ORT's node placement: libc.so.6 not loadable through FFI (${(e as Error).message})`,
    );
  }
  return libc;
}

/**
 * Runs `fn` with fd 2 redirected into a temporary file; returns its value and everything written to fd 2
 * meanwhile (by native code and by this process alike).
 */
export function captureStderr<T>(fn: () => Promise<T>): Promise<{ value: T; text: string }> {
  const run = queue.then(() => captureNow(fn));
  queue = run.catch(() => undefined);
  return run;
}

async function captureNow<T>(fn: () => Promise<T>): Promise<{ value: T; text: string }> {
  const c = open().symbols;
  const path = Deno.makeTempFileSync({ prefix: "hallo-ort-log-" });
  try {
    const fd = c.creat(new TextEncoder().encode(`${path}\0`), 0o600);
    if (fd < 0) throw new CaptureError(`cannot open ${path} to capture ORT's log`);
    const saved = c.dup(2);
    if (saved < 0 || c.dup2(fd, 2) < 0) {
      c.close(fd);
      if (saved >= 0) c.close(saved);
      throw new CaptureError("cannot redirect stderr to capture ORT's log");
    }
    c.close(fd);
    let value: T;
    try {
      value = await fn();
    } finally {
      c.dup2(saved, 2);
      c.close(saved);
    }
    return { value, text: Deno.readTextFileSync(path) };
  } finally {
    Deno.removeSync(path);
  }
}
