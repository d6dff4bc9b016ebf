/**
 * A headless OpenGL ES 3.2 context through EGL (Mesa llvmpipe when there is no GPU).
 *
 * The display is shared by every context of the process and terminated with the last one: EGL does not
 * reference-count eglInitialize, so terminating it per context would kill the others.
 */
import { GL_DEBIAN_PACKAGES, glLibraries, GlUnavailableError } from "./gl_ffi.ts";

const EGL_NONE = 0x3038;
const EGL_RED_SIZE = 0x3024;
const EGL_GREEN_SIZE = 0x3023;
const EGL_BLUE_SIZE = 0x3022;
const EGL_ALPHA_SIZE = 0x3021;
const EGL_SURFACE_TYPE = 0x3033;
const EGL_PBUFFER_BIT = 0x0001;
const EGL_RENDERABLE_TYPE = 0x3040;
const EGL_OPENGL_ES3_BIT = 0x0040;
const EGL_WIDTH = 0x3057;
const EGL_HEIGHT = 0x3056;
const EGL_OPENGL_ES_API = 0x30a0;
const EGL_CONTEXT_MAJOR_VERSION = 0x3098;
const EGL_CONTEXT_MINOR_VERSION = 0x30fb;
const EGL_EXTENSIONS = 0x3055;
const EGL_PLATFORM_SURFACELESS_MESA = 0x31dd;

interface Display {
  handle: Deno.PointerObject;
  /** True when EGL_KHR_surfaceless_context lets a context be current without a surface. */
  surfaceless: boolean;
  users: number;
}

let display: Display | undefined;
/** The context made current by this module (contexts are only ever switched through `makeCurrent`). */
let current: EglContext | null = null;

function eglFail(what: string): never {
  const code = glLibraries().egl.eglGetError();
  throw new GlUnavailableError(
    `${what} failed (EGL error 0x${code.toString(16)}); a Mesa EGL driver is needed: ` +
      `apt-get install -y ${GL_DEBIAN_PACKAGES}`,
  );
}

function acquireDisplay(): Display {
  if (display) {
    display.users++;
    return display;
  }
  const { egl } = glLibraries();
  // The surfaceless platform needs neither X11 nor a DRM device; the default display is the fallback.
  let handle = egl.eglGetPlatformDisplay(EGL_PLATFORM_SURFACELESS_MESA, null, null);
  const major = new Int32Array(1), minor = new Int32Array(1);
  if (!handle || !egl.eglInitialize(handle, major, minor)) {
    handle = egl.eglGetDisplay(null);
    if (!handle || !egl.eglInitialize(handle, major, minor)) eglFail("eglInitialize");
  }
  const extPtr = egl.eglQueryString(handle, EGL_EXTENSIONS);
  const extensions = extPtr ? new Deno.UnsafePointerView(extPtr).getCString() : "";
  display = { handle, surfaceless: extensions.includes("EGL_KHR_surfaceless_context"), users: 1 };
  return display;
}

function releaseDisplay(d: Display): void {
  if (--d.users > 0) return;
  glLibraries().egl.eglTerminate(d.handle);
  if (display === d) display = undefined;
}

/** An EGL context with OpenGL ES 3.2 (and a 1x1 pbuffer where the driver cannot go surfaceless). */
export class EglContext {
  #display: Display;
  #context: Deno.PointerObject | null;
  #surface: Deno.PointerObject | null;

  private constructor(d: Display, context: Deno.PointerObject, surface: Deno.PointerObject | null) {
    this.#display = d;
    this.#context = context;
    this.#surface = surface;
  }

  /** Creates a context and makes it current. Throws GlUnavailableError naming the packages to install. */
  static create(): EglContext {
    const { egl } = glLibraries();
    const d = acquireDisplay();
    try {
      if (!egl.eglBindAPI(EGL_OPENGL_ES_API)) eglFail("eglBindAPI(OpenGL ES)");
      const attribs = new Int32Array([
        EGL_RENDERABLE_TYPE,
        EGL_OPENGL_ES3_BIT,
        // The default EGL_WINDOW_BIT matches no config on the surfaceless platform.
        EGL_SURFACE_TYPE,
        EGL_PBUFFER_BIT,
        EGL_RED_SIZE,
        8,
        EGL_GREEN_SIZE,
        8,
        EGL_BLUE_SIZE,
        8,
        EGL_ALPHA_SIZE,
        8,
        EGL_NONE,
      ]);
      const configs = new BigUint64Array(1), count = new Int32Array(1);
      if (!egl.eglChooseConfig(d.handle, attribs, configs, 1, count) || count[0] < 1) {
        eglFail("eglChooseConfig(GLES 3, RGBA8)");
      }
      const config = Deno.UnsafePointer.create(configs[0]);
      const ctxAttribs = new Int32Array([
        EGL_CONTEXT_MAJOR_VERSION,
        3,
        EGL_CONTEXT_MINOR_VERSION,
        2,
        EGL_NONE,
      ]);
      const context = egl.eglCreateContext(d.handle, config, null, ctxAttribs);
      if (!context) eglFail("eglCreateContext(OpenGL ES 3.2)");
      let surface: Deno.PointerObject | null = null;
      if (!d.surfaceless) {
        surface = egl.eglCreatePbufferSurface(
          d.handle,
          config,
          new Int32Array([EGL_WIDTH, 1, EGL_HEIGHT, 1, EGL_NONE]),
        );
        if (!surface) {
          egl.eglDestroyContext(d.handle, context);
          eglFail("eglCreatePbufferSurface");
        }
      }
      const ctx = new EglContext(d, context, surface);
      ctx.makeCurrent();
      return ctx;
    } catch (e) {
      releaseDisplay(d);
      throw e;
    }
  }

  /**
   * Makes this context current on the calling thread; GL calls go to the current context. Cheap when it
   * already is (a JS comparison), so it can guard every GL call.
   */
  makeCurrent(): void {
    if (current === this) return;
    if (!this.#context) throw new GlUnavailableError("the EGL context was destroyed");
    if (
      !glLibraries().egl.eglMakeCurrent(this.#display.handle, this.#surface, this.#surface, this.#context)
    ) {
      eglFail("eglMakeCurrent");
    }
    current = this;
  }

  /** Destroys the context (and surface); idempotent. */
  destroy(): void {
    if (!this.#context) return;
    const { egl } = glLibraries();
    const h = this.#display.handle;
    if (current === this) {
      egl.eglMakeCurrent(h, null, null, null);
      current = null;
    }
    egl.eglDestroyContext(h, this.#context);
    if (this.#surface) egl.eglDestroySurface(h, this.#surface);
    this.#context = this.#surface = null;
    releaseDisplay(this.#display);
  }
}
