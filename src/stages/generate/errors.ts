/**
 * The error classes of the generation stages, each a one-line message a CLI prints as is (the run directory's
 * own `RunDirError` lives with the run directory).
 */

/** Inputs of a generation stage that do not fit together or with the loaded networks. */
export class GenerationError extends Error {
  override name = "GenerationError";
}

/** An input file of a run (image, audio) that cannot be read, named with the reason. */
export class InputFileError extends Error {
  override name = "InputFileError";
}

/** A sweep axis with no value, or with a value twice. */
export class SweepAxisError extends RangeError {
  override name = "SweepAxisError";
}
