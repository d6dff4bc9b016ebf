/**
 * FFI symbol tables for EGL and OpenGL ES 3.2 (Mesa through libglvnd), opened once per process.
 *
 * Only the entry points that the WebGL2 shim (webgl2.ts) and the EGL context (egl.ts) call are listed.
 * Parameters that WebGL lets be either a typed array or a byte offset into a bound buffer are declared
 * as "pointer" so both can be passed (see `ptr` in webgl2.ts).
 */

/** Debian packages that provide the libraries opened here. */
export const GL_DEBIAN_PACKAGES = "libegl1 libgles2 libgl1-mesa-dri";

/** Raised when the EGL/GLES libraries cannot be opened or no EGL display/context can be made. */
export class GlUnavailableError extends Error {
  override name = "GlUnavailableError";
}

const EGL_SYMBOLS = {
  eglGetError: { parameters: [], result: "i32" },
  eglGetDisplay: { parameters: ["pointer"], result: "pointer" },
  eglGetPlatformDisplay: { parameters: ["u32", "pointer", "pointer"], result: "pointer" },
  eglInitialize: { parameters: ["pointer", "buffer", "buffer"], result: "u32" },
  eglTerminate: { parameters: ["pointer"], result: "u32" },
  eglQueryString: { parameters: ["pointer", "i32"], result: "pointer" },
  eglBindAPI: { parameters: ["u32"], result: "u32" },
  eglChooseConfig: { parameters: ["pointer", "buffer", "buffer", "i32", "buffer"], result: "u32" },
  eglCreateContext: { parameters: ["pointer", "pointer", "pointer", "buffer"], result: "pointer" },
  eglDestroyContext: { parameters: ["pointer", "pointer"], result: "u32" },
  eglCreatePbufferSurface: { parameters: ["pointer", "pointer", "buffer"], result: "pointer" },
  eglDestroySurface: { parameters: ["pointer", "pointer"], result: "u32" },
  eglMakeCurrent: { parameters: ["pointer", "pointer", "pointer", "pointer"], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

const GLES_SYMBOLS = {
  // state
  glGetError: { parameters: [], result: "u32" },
  glGetIntegerv: { parameters: ["u32", "buffer"], result: "void" },
  glGetInteger64v: { parameters: ["u32", "buffer"], result: "void" },
  glGetFloatv: { parameters: ["u32", "buffer"], result: "void" },
  glGetBooleanv: { parameters: ["u32", "buffer"], result: "void" },
  glGetString: { parameters: ["u32"], result: "pointer" },
  glGetStringi: { parameters: ["u32", "u32"], result: "pointer" },
  glEnable: { parameters: ["u32"], result: "void" },
  glDisable: { parameters: ["u32"], result: "void" },
  glPixelStorei: { parameters: ["u32", "i32"], result: "void" },
  glViewport: { parameters: ["i32", "i32", "i32", "i32"], result: "void" },
  glClearColor: { parameters: ["f32", "f32", "f32", "f32"], result: "void" },
  glClear: { parameters: ["u32"], result: "void" },
  glColorMask: { parameters: ["u8", "u8", "u8", "u8"], result: "void" },
  glBlendEquation: { parameters: ["u32"], result: "void" },
  glBlendFunc: { parameters: ["u32", "u32"], result: "void" },
  glLineWidth: { parameters: ["f32"], result: "void" },
  glFinish: { parameters: [], result: "void" },
  glFlush: { parameters: [], result: "void" },
  // sync
  glFenceSync: { parameters: ["u32", "u32"], result: "pointer" },
  glClientWaitSync: { parameters: ["pointer", "u32", "u64"], result: "u32" },
  glDeleteSync: { parameters: ["pointer"], result: "void" },
  // buffers and vertex arrays
  glGenBuffers: { parameters: ["i32", "buffer"], result: "void" },
  glDeleteBuffers: { parameters: ["i32", "buffer"], result: "void" },
  glBindBuffer: { parameters: ["u32", "u32"], result: "void" },
  glBindBufferBase: { parameters: ["u32", "u32", "u32"], result: "void" },
  glBufferData: { parameters: ["u32", "isize", "pointer", "u32"], result: "void" },
  glBufferSubData: { parameters: ["u32", "isize", "isize", "pointer"], result: "void" },
  glGenVertexArrays: { parameters: ["i32", "buffer"], result: "void" },
  glDeleteVertexArrays: { parameters: ["i32", "buffer"], result: "void" },
  glBindVertexArray: { parameters: ["u32"], result: "void" },
  glVertexAttribPointer: { parameters: ["u32", "i32", "u32", "u8", "i32", "pointer"], result: "void" },
  glEnableVertexAttribArray: { parameters: ["u32"], result: "void" },
  glDisableVertexAttribArray: { parameters: ["u32"], result: "void" },
  glDrawArrays: { parameters: ["u32", "i32", "i32"], result: "void" },
  glDrawElements: { parameters: ["u32", "i32", "u32", "pointer"], result: "void" },
  // textures
  glGenTextures: { parameters: ["i32", "buffer"], result: "void" },
  glDeleteTextures: { parameters: ["i32", "buffer"], result: "void" },
  glActiveTexture: { parameters: ["u32"], result: "void" },
  glBindTexture: { parameters: ["u32", "u32"], result: "void" },
  glTexParameteri: { parameters: ["u32", "u32", "i32"], result: "void" },
  glTexParameterf: { parameters: ["u32", "u32", "f32"], result: "void" },
  glTexImage2D: {
    parameters: ["u32", "i32", "i32", "i32", "i32", "i32", "u32", "u32", "pointer"],
    result: "void",
  },
  glTexSubImage2D: {
    parameters: ["u32", "i32", "i32", "i32", "i32", "i32", "u32", "u32", "pointer"],
    result: "void",
  },
  glTexSubImage3D: {
    parameters: ["u32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "u32", "u32", "pointer"],
    result: "void",
  },
  glTexStorage2D: { parameters: ["u32", "i32", "u32", "i32", "i32"], result: "void" },
  glTexStorage3D: { parameters: ["u32", "i32", "u32", "i32", "i32", "i32"], result: "void" },
  // framebuffers
  glGenFramebuffers: { parameters: ["i32", "buffer"], result: "void" },
  glDeleteFramebuffers: { parameters: ["i32", "buffer"], result: "void" },
  glBindFramebuffer: { parameters: ["u32", "u32"], result: "void" },
  glFramebufferTexture2D: { parameters: ["u32", "u32", "u32", "u32", "i32"], result: "void" },
  glFramebufferTextureLayer: { parameters: ["u32", "u32", "u32", "i32", "i32"], result: "void" },
  glCheckFramebufferStatus: { parameters: ["u32"], result: "u32" },
  glDrawBuffers: { parameters: ["i32", "buffer"], result: "void" },
  glReadPixels: { parameters: ["i32", "i32", "i32", "i32", "u32", "u32", "pointer"], result: "void" },
  // shaders and programs
  glCreateShader: { parameters: ["u32"], result: "u32" },
  glDeleteShader: { parameters: ["u32"], result: "void" },
  glShaderSource: { parameters: ["u32", "i32", "buffer", "buffer"], result: "void" },
  glCompileShader: { parameters: ["u32"], result: "void" },
  glGetShaderiv: { parameters: ["u32", "u32", "buffer"], result: "void" },
  glGetShaderInfoLog: { parameters: ["u32", "i32", "buffer", "buffer"], result: "void" },
  glGetShaderSource: { parameters: ["u32", "i32", "buffer", "buffer"], result: "void" },
  glCreateProgram: { parameters: [], result: "u32" },
  glDeleteProgram: { parameters: ["u32"], result: "void" },
  glAttachShader: { parameters: ["u32", "u32"], result: "void" },
  glDetachShader: { parameters: ["u32", "u32"], result: "void" },
  glBindAttribLocation: { parameters: ["u32", "u32", "buffer"], result: "void" },
  glLinkProgram: { parameters: ["u32"], result: "void" },
  glUseProgram: { parameters: ["u32"], result: "void" },
  glGetProgramiv: { parameters: ["u32", "u32", "buffer"], result: "void" },
  glGetProgramInfoLog: { parameters: ["u32", "i32", "buffer", "buffer"], result: "void" },
  glGetAttribLocation: { parameters: ["u32", "buffer"], result: "i32" },
  glGetActiveAttrib: {
    parameters: ["u32", "u32", "i32", "buffer", "buffer", "buffer", "buffer"],
    result: "void",
  },
  glGetActiveUniform: {
    parameters: ["u32", "u32", "i32", "buffer", "buffer", "buffer", "buffer"],
    result: "void",
  },
  glGetUniformLocation: { parameters: ["u32", "buffer"], result: "i32" },
  glGetUniformBlockIndex: { parameters: ["u32", "buffer"], result: "u32" },
  glGetActiveUniformBlockName: { parameters: ["u32", "u32", "i32", "buffer", "buffer"], result: "void" },
  glUniformBlockBinding: { parameters: ["u32", "u32", "u32"], result: "void" },
  // uniforms
  glUniform1i: { parameters: ["i32", "i32"], result: "void" },
  glUniform1f: { parameters: ["i32", "f32"], result: "void" },
  glUniform2f: { parameters: ["i32", "f32", "f32"], result: "void" },
  glUniform3f: { parameters: ["i32", "f32", "f32", "f32"], result: "void" },
  glUniform4f: { parameters: ["i32", "f32", "f32", "f32", "f32"], result: "void" },
  glUniform1fv: { parameters: ["i32", "i32", "pointer"], result: "void" },
  glUniform2fv: { parameters: ["i32", "i32", "pointer"], result: "void" },
  glUniform3fv: { parameters: ["i32", "i32", "pointer"], result: "void" },
  glUniform4fv: { parameters: ["i32", "i32", "pointer"], result: "void" },
  glUniform1iv: { parameters: ["i32", "i32", "pointer"], result: "void" },
  glUniform4iv: { parameters: ["i32", "i32", "pointer"], result: "void" },
  glUniformMatrix2fv: { parameters: ["i32", "i32", "u8", "pointer"], result: "void" },
  glUniformMatrix3fv: { parameters: ["i32", "i32", "u8", "pointer"], result: "void" },
  glUniformMatrix4fv: { parameters: ["i32", "i32", "u8", "pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened EGL library. */
export type Egl = Deno.DynamicLibrary<typeof EGL_SYMBOLS>["symbols"];
/** The opened GLES 3 library. */
export type Gles = Deno.DynamicLibrary<typeof GLES_SYMBOLS>["symbols"];

let opened: { egl: Egl; gl: Gles } | undefined;

/** Opens the first of `names` that loads; else a GlUnavailableError naming the Debian packages. */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  names: string[],
  symbols: S,
): Deno.DynamicLibrary<S> {
  const errors: string[] = [];
  for (const name of names) {
    try {
      return Deno.dlopen(name, symbols);
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new GlUnavailableError(`opening ${name} needs FFI permission: run deno with --allow-ffi`);
      }
      errors.push(`${name}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new GlUnavailableError(
    `cannot open ${names[0]} (${errors.join("; ")}); install the Debian packages: ` +
      `apt-get install -y ${GL_DEBIAN_PACKAGES}`,
  );
}

/**
 * The EGL and GLES symbol tables, opened on first use and kept for the life of the process
 * (unloading Mesa while its worker threads live is not safe).
 */
export function glLibraries(): { egl: Egl; gl: Gles } {
  if (!opened) {
    const egl = openLibrary(["libEGL.so.1", "libEGL.so"], EGL_SYMBOLS).symbols;
    const gl = openLibrary(["libGLESv2.so.2", "libGLESv2.so"], GLES_SYMBOLS).symbols;
    opened = { egl, gl };
  }
  return opened;
}
