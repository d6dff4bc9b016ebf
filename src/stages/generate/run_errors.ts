/** The errors of run directories (see run_dir.ts), in a module of their own so every part can throw them. */

/** A run directory that cannot be used as asked: other inputs or options, damaged files, a bad path. */
export class RunDirError extends Error {
  override name = "RunDirError";
}

/** Another live process holds the run directory's lock. */
export class RunDirLockedError extends RunDirError {
  override name = "RunDirLockedError";
}

/** An output path that would overwrite an input or a file of the run directory. */
export class RunPathError extends RunDirError {
  override name = "RunPathError";
}
