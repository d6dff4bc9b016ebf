/**
 * Loads @mediapipe/tasks-vision tasks headless in Deno: local WASM assets, an EGL-backed WebGL2 canvas.
 *
 * tasks-vision loads its WASM loader script the browser way. In Deno: `importScripts` must exist and throw
 * a TypeError so the package falls back to `self.import(url)`; that hook re-sets `ModuleFactory` on every
 * call, because the ES module is evaluated once and the package clears the global after each task.
 * The globals are set only while a task is created (creations are serialised) and restored afterwards.
 */
import { FaceLandmarker, type FaceLandmarkerOptions } from "@mediapipe/tasks-vision";
import { EglContext } from "./egl.ts";
import { HeadlessCanvas, WebGl2OverEgl } from "./webgl2.ts";

/** Where the WASM loader and binary are, as tasks-vision's WasmFileset. */
export interface VisionWasmFileset {
  wasmLoaderPath: string;
  wasmBinaryPath: string;
}

/** Raised when the tasks-vision WASM assets cannot be found in the npm package. */
export class MediaPipeAssetError extends Error {
  override name = "MediaPipeAssetError";
}

/**
 * The ES-module build of the WASM graph runner shipped in the npm package (`wasm/`), as local paths.
 * The ES-module build is used because the classic one declares `ModuleFactory` with `var`, which an
 * ES import cannot see.
 */
export function visionWasmFileset(): VisionWasmFileset {
  const resolve = (name: string): string => {
    let url: string;
    try {
      url = import.meta.resolve(`@mediapipe/tasks-vision/${name}`);
    } catch (e) {
      throw new MediaPipeAssetError(
        `cannot resolve @mediapipe/tasks-vision/${name}: ${(e as Error).message}`,
      );
    }
    const path = url.startsWith("file:") ? decodeURIComponent(new URL(url).pathname) : url;
    try {
      Deno.statSync(path);
    } catch {
      throw new MediaPipeAssetError(`${path}: missing from the @mediapipe/tasks-vision package`);
    }
    return path;
  };
  return {
    wasmLoaderPath: resolve("vision_wasm_module_internal.js"),
    wasmBinaryPath: resolve("vision_wasm_module_internal.wasm"),
  };
}

type Globals = Record<string, unknown>;
let queue: Promise<unknown> = Promise.resolve();

/** Receives MediaPipe's log lines (glog-style `I1125 09:44:47.64 ... gl_context.cc:408] ...`). */
export type MediaPipeLog = (line: string) => void;

/** Keeps only glog errors and fatals: MediaPipe prints several info lines per task otherwise. */
const errorsOnly: MediaPipeLog = (line) => {
  if (/^[EF]\d{4} /.test(line)) console.error(line);
};

/**
 * MediaPipe's C++ logging calls the global `custom_dbg` at any time (not only through Emscripten's print
 * hooks), so that global is pointed at a dispatcher whose sink is swapped around each call into a task.
 */
let sink: MediaPipeLog = errorsOnly;
function dispatch(...args: unknown[]): void {
  sink(args.map(String).join(" "));
}

/** Runs `fn` with MediaPipe's log lines going to `log`. */
function withLog<T>(log: MediaPipeLog, fn: () => T): T {
  const previous = sink;
  sink = log;
  try {
    return fn();
  } finally {
    sink = previous;
  }
}

/** Runs `create` with the loader hooks installed, one creation at a time. */
function withLoaderHooks<T>(create: () => Promise<T>, log: MediaPipeLog): Promise<T> {
  const run = async (): Promise<T> => {
    const g = globalThis as unknown as Globals;
    const saved = {
      importScripts: g.importScripts,
      import: g.import,
      Module: g.Module,
      ModuleFactory: g.ModuleFactory,
    };
    // Emscripten reads its print hooks from `Module`; tasks-vision passes this object to the factory.
    g.Module = { print: log, printErr: log };
    g.importScripts = () => {
      throw new TypeError("importScripts is not available in Deno");
    };
    g.import = async (url: string) => {
      const specifier = url.startsWith("/") ? `file://${url}` : url;
      const mod = await import(specifier) as { default: unknown };
      g.ModuleFactory = mod.default;
      // The loader script sets `custom_dbg` to console.warn when first evaluated.
      g.custom_dbg = dispatch;
    };
    const previousSink = sink;
    sink = log;
    try {
      return await create();
    } finally {
      sink = previousSink;
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete g[k];
        else g[k] = v;
      }
    }
  };
  const result = queue.then(run, run);
  queue = result.catch(() => {});
  return result;
}

/** A vision task bound to its own EGL context. */
export interface HeadlessTask<T> {
  task: T;
  egl: EglContext;
  /** Calls into the task with its EGL context current and its log sink in place. */
  run<R>(fn: (task: T) => R): R;
  /** Closes the task, then destroys its EGL context; idempotent. */
  close(): void;
}

/**
 * Creates a FaceLandmarker on a fresh EGL context. `options.canvas` is supplied here; `log` gets MediaPipe's
 * console lines (default: errors only).
 * Throws GlUnavailableError (naming the Debian packages) when EGL/GLES cannot be opened.
 */
export async function createHeadlessFaceLandmarker(
  options: Omit<FaceLandmarkerOptions, "canvas">,
  log: MediaPipeLog = errorsOnly,
): Promise<HeadlessTask<FaceLandmarker>> {
  const fileset = visionWasmFileset();
  const egl = EglContext.create();
  try {
    const canvas = new HeadlessCanvas(new WebGl2OverEgl(egl));
    const task = await withLoaderHooks(() => {
      return FaceLandmarker.createFromOptions(fileset, {
        ...options,
        canvas: canvas as unknown as FaceLandmarkerOptions["canvas"],
      });
    }, log);
    let closed = false;
    return {
      task,
      egl,
      run: (fn) => {
        if (closed) throw new MediaPipeAssetError("the MediaPipe task was closed");
        return withLog(log, () => fn(task));
      },
      close: () => {
        if (closed) return;
        closed = true;
        try {
          withLog(log, () => task.close());
        } finally {
          egl.destroy();
        }
      },
    };
  } catch (e) {
    egl.destroy();
    throw e;
  }
}
