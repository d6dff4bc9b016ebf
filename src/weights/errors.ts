/**
 * The one error class of the checkpoint readers. Every problem with a checkpoint (bad header, hostile pickle,
 * truncated zip, missing key) surfaces as a `CheckpointError` whose message is a single line naming the file,
 * so a CLI can print it as is and a caller can tell "bad file" apart from a bug.
 */

/** Longest message kept: a hostile file must not be able to flood a terminal through an error. */
const MAX_PROBLEM_CHARS = 400;

/** Makes any text safe for a one-line message: control characters escaped, length capped. */
export function oneLine(text: string, max = MAX_PROBLEM_CHARS): string {
  // deno-lint-ignore no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    return code === 10
      ? "\\n"
      : code === 13
      ? "\\r"
      : code === 9
      ? "\\t"
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** A bad, truncated, unsupported or hostile checkpoint, or a lookup of a key it does not hold. */
export class CheckpointError extends Error {
  /** The file the problem was found in (absolute path when known). */
  readonly file: string;
  /** The problem alone, without the file name. */
  readonly problem: string;

  constructor(file: string, problem: string, options?: ErrorOptions) {
    const p = oneLine(problem);
    super(`${oneLine(file, 1000)}: ${p}`, options);
    this.name = "CheckpointError";
    this.file = file;
    this.problem = p;
  }
}
