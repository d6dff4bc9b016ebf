/**
 * The error class of the reference-image stage. Bad input files, unsupported images and impossible arguments
 * surface as an `ImageError` with a one-line message that names the file (when there is one), so a CLI can
 * print it as is.
 */

/** Longest problem text kept: a hostile file name or decoder message must not flood a terminal. */
const MAX_CHARS = 300;

/** Escapes control characters and caps the length, so a message stays one line. */
function oneLine(text: string): string {
  // deno-lint-ignore no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ").trim();
  return clean.length > MAX_CHARS ? `${clean.slice(0, MAX_CHARS)}...` : clean;
}

/** A bad or unsupported image, or bad arguments to an image-stage function. */
export class ImageError extends Error {
  /** The file the problem was found in, or "" when the input was not a file. */
  readonly file: string;

  constructor(file: string, problem: string) {
    super(file ? `${oneLine(file)}: ${oneLine(problem)}` : oneLine(problem));
    this.name = "ImageError";
    this.file = file;
  }
}
