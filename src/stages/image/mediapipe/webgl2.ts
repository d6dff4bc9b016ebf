/**
 * A WebGL2RenderingContext look-alike over OpenGL ES 3.2 (gl_ffi.ts), enough for MediaPipe's WASM graph
 * (Emscripten's GL glue) and tasks-vision's texture upload.
 *
 * WebGL differs from GLES in ways the glue relies on: objects are JS objects (the glue stores its own
 * `name` on them), typed arrays come with element offsets, getParameter returns typed values and bound
 * objects, and the UNPACK_*_WEBGL pixel-store flags never reach GL. Images come in as ImageData-like
 * `{data, width, height}` RGBA8 objects: the only TexImageSource a headless runtime has.
 */
import type { EglContext } from "./egl.ts";
import { type Gles, glLibraries } from "./gl_ffi.ts";

/** Raised when MediaPipe asks the shim for something it does not implement. */
export class WebGlShimError extends Error {
  override name = "WebGlShimError";
}

/** An RGBA8 image in the shape of DOM ImageData, accepted wherever WebGL takes a TexImageSource. */
export interface RgbaImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

/** A GL object name wrapped as WebGL does (WebGLBuffer, WebGLTexture, ...). */
export class GlObject {
  constructor(readonly kind: string, readonly id: number) {}
}
/** WebGLUniformLocation. */
export class GlUniformLocation {
  constructor(readonly location: number) {}
}
/** WebGLSync. */
export class GlSync {
  constructor(readonly handle: Deno.PointerObject) {}
}

const UNPACK_FLIP_Y_WEBGL = 0x9240;
const UNPACK_PREMULTIPLY_ALPHA_WEBGL = 0x9241;
const UNPACK_COLORSPACE_CONVERSION_WEBGL = 0x9243;
const TIMEOUT_IGNORED = 0xffff_ffff_ffff_ffffn;

/** WebGL constants read as properties by tasks-vision and the Emscripten glue. */
const CONSTANTS = {
  NO_ERROR: 0,
  TEXTURE_2D: 0x0de1,
  TEXTURE0: 0x84c0,
  TEXTURE1: 0x84c1,
  TEXTURE2: 0x84c2,
  TEXTURE3: 0x84c3,
  RGBA: 0x1908,
  RGB: 0x1907,
  RED: 0x1903,
  R32F: 0x822e,
  R16F: 0x822d,
  RGBA8: 0x8058,
  RGBA32F: 0x8814,
  RGBA16F: 0x881a,
  UNSIGNED_BYTE: 0x1401,
  FLOAT: 0x1406,
  HALF_FLOAT: 0x140b,
  FRAMEBUFFER: 0x8d40,
  READ_FRAMEBUFFER: 0x8ca8,
  DRAW_FRAMEBUFFER: 0x8ca9,
  COLOR_ATTACHMENT0: 0x8ce0,
  COLOR_BUFFER_BIT: 0x4000,
  TRIANGLES: 0x0004,
  TRIANGLE_STRIP: 0x0005,
  TRIANGLE_FAN: 0x0006,
  ARRAY_BUFFER: 0x8892,
  ELEMENT_ARRAY_BUFFER: 0x8893,
  STATIC_DRAW: 0x88e4,
  VERTEX_SHADER: 0x8b31,
  FRAGMENT_SHADER: 0x8b30,
  COMPILE_STATUS: 0x8b81,
  LINK_STATUS: 0x8b82,
  TEXTURE_MIN_FILTER: 0x2801,
  TEXTURE_MAG_FILTER: 0x2800,
  TEXTURE_WRAP_S: 0x2802,
  TEXTURE_WRAP_T: 0x2803,
  CLAMP_TO_EDGE: 0x812f,
  NEAREST: 0x2600,
  LINEAR: 0x2601,
  UNPACK_ALIGNMENT: 0x0cf5,
  PACK_ALIGNMENT: 0x0d05,
  UNPACK_FLIP_Y_WEBGL,
  UNPACK_PREMULTIPLY_ALPHA_WEBGL,
  UNPACK_COLORSPACE_CONVERSION_WEBGL,
  VERSION: 0x1f02,
  VENDOR: 0x1f00,
  RENDERER: 0x1f01,
  SHADING_LANGUAGE_VERSION: 0x8b8c,
} as const;

/** getParameter pnames whose WebGL result is a bound object, with the object kind and GL binding pname. */
const BINDINGS: Record<number, string> = {
  0x8894: "buffer", // ARRAY_BUFFER_BINDING
  0x8895: "buffer", // ELEMENT_ARRAY_BUFFER_BINDING
  0x8a28: "buffer", // UNIFORM_BUFFER_BINDING
  0x88ed: "buffer", // PIXEL_PACK_BUFFER_BINDING
  0x88ef: "buffer", // PIXEL_UNPACK_BUFFER_BINDING
  0x8f36: "buffer", // COPY_READ_BUFFER
  0x8f37: "buffer", // COPY_WRITE_BUFFER
  0x8ca6: "framebuffer", // (DRAW_)FRAMEBUFFER_BINDING
  0x8caa: "framebuffer", // READ_FRAMEBUFFER_BINDING
  0x8069: "texture", // TEXTURE_BINDING_2D
  0x8c1d: "texture", // TEXTURE_BINDING_2D_ARRAY
  0x806a: "texture", // TEXTURE_BINDING_3D
  0x8514: "texture", // TEXTURE_BINDING_CUBE_MAP
  0x8b8d: "program", // CURRENT_PROGRAM
  0x85b5: "vertexArray", // VERTEX_ARRAY_BINDING
};
const STRINGS = new Set([0x1f00, 0x1f01, 0x1f02, 0x8b8c]);
/** pname -> number of float values (arrays when > 1). */
const FLOATS: Record<number, number> = {
  0x0b21: 1, // LINE_WIDTH
  0x0b73: 1, // DEPTH_CLEAR_VALUE
  0x8038: 1, // POLYGON_OFFSET_FACTOR
  0x2a00: 1, // POLYGON_OFFSET_UNITS
  0x80aa: 1, // SAMPLE_COVERAGE_VALUE
  0x84fd: 1, // MAX_TEXTURE_LOD_BIAS
  0x0c22: 4, // COLOR_CLEAR_VALUE
  0x8005: 4, // BLEND_COLOR
  0x0b70: 2, // DEPTH_RANGE
  0x846e: 2, // ALIASED_LINE_WIDTH_RANGE
  0x846d: 2, // ALIASED_POINT_SIZE_RANGE
};
/** pname -> number of int values, for the array-valued ones. */
const INT_ARRAYS: Record<number, number> = { 0x0ba2: 4, 0x0c10: 4, 0x0d3a: 2 }; // VIEWPORT, SCISSOR_BOX, MAX_VIEWPORT_DIMS
const BOOLEANS = new Set([
  0x0be2, // BLEND
  0x0b44, // CULL_FACE
  0x0b71, // DEPTH_TEST
  0x0bd0, // DITHER
  0x8037, // POLYGON_OFFSET_FILL
  0x809e, // SAMPLE_ALPHA_TO_COVERAGE
  0x80a0, // SAMPLE_COVERAGE
  0x0c11, // SCISSOR_TEST
  0x0b90, // STENCIL_TEST
  0x8c89, // RASTERIZER_DISCARD
  0x0b72, // DEPTH_WRITEMASK
  0x80ab, // SAMPLE_COVERAGE_INVERT
  0x8e24, // TRANSFORM_FEEDBACK_ACTIVE
  0x8e23, // TRANSFORM_FEEDBACK_PAUSED
]);
const INT64S = new Set([0x8d6b, 0x8a30, 0x9111]); // MAX_ELEMENT_INDEX, MAX_UNIFORM_BLOCK_SIZE, MAX_SERVER_WAIT_TIMEOUT
const COMPRESSED_TEXTURE_FORMATS = 0x86a3;
/** WebGL extensions that need no JS entry points, offered when the GLES driver has the same extension. */
const PLAIN_EXTENSIONS = [
  "EXT_color_buffer_float",
  "EXT_color_buffer_half_float",
  "EXT_float_blend",
  "EXT_texture_norm16",
  "OES_texture_float_linear",
  "OES_texture_half_float_linear",
];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function cstr(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(s + "\0");
}

/** A GL pointer argument from a WebGL typed array (+ element offset) or a byte offset into a bound buffer. */
function ptr(data: ArrayBufferView | number | null | undefined, elemOffset = 0): Deno.PointerValue {
  if (data === null || data === undefined) return null;
  if (typeof data === "number") return Deno.UnsafePointer.create(BigInt(data));
  const bpe = (data as TypedArray).BYTES_PER_ELEMENT ?? 1;
  return Deno.UnsafePointer.of(new Uint8Array(data.buffer, data.byteOffset + elemOffset * bpe));
}

/** `data[srcOffset .. srcOffset+length)` in elements, as WebGL2's uniform and buffer overloads read it. */
function slice(data: TypedArray | number[], srcOffset = 0, length = 0): TypedArray {
  const ta = Array.isArray(data) ? new Float32Array(data) : data;
  return ta.subarray(srcOffset, length ? srcOffset + length : undefined);
}

function isImage(x: unknown): x is RgbaImage {
  return typeof x === "object" && x !== null && !ArrayBuffer.isView(x) && "data" in x && "width" in x;
}

/** The canvas handed to MediaPipe: it only needs getContext("webgl2") and a size. */
export class HeadlessCanvas {
  width = 1;
  height = 1;
  /** Pre-set so Emscripten skips its Safari getContext patch, which tests `instanceof WebGLRenderingContext`. */
  getContextSafariWebGL2Fixed = true;
  #context: WebGl2OverEgl;

  constructor(context: WebGl2OverEgl) {
    this.#context = context;
    context.canvas = this;
  }

  /** Only "webgl2" exists here (MediaPipe falls back to "webgl" and fails clearly if null). */
  getContext(type: string): WebGl2OverEgl | null {
    return type === "webgl2" ? this.#context : null;
  }

  /** MediaPipe may listen for context loss, which cannot happen here. */
  addEventListener(): void {}
  /** See addEventListener. */
  removeEventListener(): void {}
}

/**
 * The WebGL2 object of one EGL context. Method names and overloads follow the WebGL2 IDL. Every call
 * first makes its context current: task creation is async, so another task may have switched contexts
 * in between.
 */
export class WebGl2OverEgl {
  /** Set by HeadlessCanvas. */
  canvas: HeadlessCanvas | undefined;
  #egl: EglContext;
  #symbols: Gles;
  #objects = new Map<string, Map<number, GlObject>>();
  #flipY = false;
  #int = new Int32Array(16);
  #float = new Float32Array(16);
  #bool = new Uint8Array(16);
  #int64 = new BigInt64Array(1);
  #extensions: string[] | undefined;

  constructor(egl: EglContext) {
    this.#egl = egl;
    this.#symbols = glLibraries().gl;
    Object.assign(this, CONSTANTS);
  }

  /** The GLES entry points, with this object's context current. */
  get #gl(): Gles {
    this.#egl.makeCurrent();
    return this.#symbols;
  }

  get drawingBufferWidth(): number {
    return this.canvas?.width ?? 1;
  }
  get drawingBufferHeight(): number {
    return this.canvas?.height ?? 1;
  }

  // ---- objects --------------------------------------------------------------------------------

  #track(kind: string, id: number): GlObject | null {
    if (!id) return null;
    let table = this.#objects.get(kind);
    if (!table) this.#objects.set(kind, table = new Map());
    const obj = new GlObject(kind, id);
    table.set(id, obj);
    return obj;
  }
  #lookup(kind: string, id: number): GlObject | null {
    return id ? this.#objects.get(kind)?.get(id) ?? null : null;
  }
  #gen(kind: string, gen: (n: number, out: Int32Array) => void): GlObject | null {
    gen(1, this.#int);
    return this.#track(kind, this.#int[0]);
  }
  #delete(obj: GlObject | null, del: (n: number, ids: Int32Array) => void): void {
    if (!obj) return;
    this.#objects.get(obj.kind)?.delete(obj.id);
    del(1, new Int32Array([obj.id]));
  }

  createBuffer(): GlObject | null {
    return this.#gen("buffer", (n, o) => this.#gl.glGenBuffers(n, o));
  }
  deleteBuffer(b: GlObject | null): void {
    this.#delete(b, (n, ids) => this.#gl.glDeleteBuffers(n, ids));
  }
  createTexture(): GlObject | null {
    return this.#gen("texture", (n, o) => this.#gl.glGenTextures(n, o));
  }
  deleteTexture(t: GlObject | null): void {
    this.#delete(t, (n, ids) => this.#gl.glDeleteTextures(n, ids));
  }
  createFramebuffer(): GlObject | null {
    return this.#gen("framebuffer", (n, o) => this.#gl.glGenFramebuffers(n, o));
  }
  deleteFramebuffer(f: GlObject | null): void {
    this.#delete(f, (n, ids) => this.#gl.glDeleteFramebuffers(n, ids));
  }
  createVertexArray(): GlObject | null {
    return this.#gen("vertexArray", (n, o) => this.#gl.glGenVertexArrays(n, o));
  }
  deleteVertexArray(v: GlObject | null): void {
    this.#delete(v, (n, ids) => this.#gl.glDeleteVertexArrays(n, ids));
  }
  createShader(type: number): GlObject | null {
    return this.#track("shader", this.#gl.glCreateShader(type));
  }
  deleteShader(s: GlObject | null): void {
    if (!s) return;
    this.#objects.get("shader")?.delete(s.id);
    this.#gl.glDeleteShader(s.id);
  }
  createProgram(): GlObject | null {
    return this.#track("program", this.#gl.glCreateProgram());
  }
  deleteProgram(p: GlObject | null): void {
    if (!p) return;
    this.#objects.get("program")?.delete(p.id);
    this.#gl.glDeleteProgram(p.id);
  }
  fenceSync(condition: number, flags: number): GlSync | null {
    const h = this.#gl.glFenceSync(condition, flags);
    return h ? new GlSync(h) : null;
  }
  clientWaitSync(sync: GlSync, flags: number, timeout: number): number {
    // Emscripten passes -1 for GLES's GL_TIMEOUT_IGNORED (all ones).
    return this.#gl.glClientWaitSync(sync.handle, flags, timeout < 0 ? TIMEOUT_IGNORED : BigInt(timeout));
  }
  deleteSync(sync: GlSync | null): void {
    if (sync) this.#gl.glDeleteSync(sync.handle);
  }

  // ---- context state --------------------------------------------------------------------------

  getContextAttributes(): Record<string, unknown> {
    return {
      alpha: true,
      depth: false,
      stencil: false,
      antialias: false,
      premultipliedAlpha: true,
      preserveDrawingBuffer: false,
      powerPreference: "default",
      failIfMajorPerformanceCaveat: false,
      desynchronized: false,
    };
  }
  isContextLost(): boolean {
    return false;
  }
  getError(): number {
    return this.#gl.glGetError();
  }
  getSupportedExtensions(): string[] {
    if (!this.#extensions) {
      const gl = this.#gl;
      gl.glGetIntegerv(0x821d, this.#int); // NUM_EXTENSIONS
      const have = new Set<string>();
      for (let i = 0; i < this.#int[0]; i++) {
        const p = gl.glGetStringi(0x1f03, i);
        if (p) have.add(new Deno.UnsafePointerView(p).getCString().replace(/^GL_/, ""));
      }
      this.#extensions = PLAIN_EXTENSIONS.filter((e) => have.has(e));
    }
    return [...this.#extensions];
  }
  getExtension(name: string): Record<string, never> | null {
    return this.getSupportedExtensions().includes(name) ? {} : null;
  }
  getParameter(pname: number): unknown {
    const gl = this.#gl;
    const kind = BINDINGS[pname];
    if (kind) {
      gl.glGetIntegerv(pname, this.#int);
      return this.#lookup(kind, this.#int[0]);
    }
    if (STRINGS.has(pname)) {
      const p = gl.glGetString(pname);
      return p ? new Deno.UnsafePointerView(p).getCString() : null;
    }
    if (pname === COMPRESSED_TEXTURE_FORMATS) return new Uint32Array(0);
    if (FLOATS[pname]) {
      gl.glGetFloatv(pname, this.#float);
      return FLOATS[pname] === 1 ? this.#float[0] : this.#float.slice(0, FLOATS[pname]);
    }
    if (INT_ARRAYS[pname]) {
      gl.glGetIntegerv(pname, this.#int);
      return this.#int.slice(0, INT_ARRAYS[pname]);
    }
    if (BOOLEANS.has(pname)) {
      gl.glGetBooleanv(pname, this.#bool);
      return this.#bool[0] !== 0;
    }
    if (pname === 0x0c23) { // COLOR_WRITEMASK
      gl.glGetBooleanv(pname, this.#bool);
      return [...this.#bool.slice(0, 4)].map((b) => b !== 0);
    }
    if (pname === UNPACK_FLIP_Y_WEBGL) return this.#flipY;
    if (INT64S.has(pname)) {
      gl.glGetInteger64v(pname, this.#int64);
      return Number(this.#int64[0]);
    }
    gl.glGetIntegerv(pname, this.#int);
    return this.#int[0];
  }
  enable(cap: number): void {
    this.#gl.glEnable(cap);
  }
  disable(cap: number): void {
    this.#gl.glDisable(cap);
  }
  pixelStorei(pname: number, param: number | boolean): void {
    if (pname === UNPACK_FLIP_Y_WEBGL) this.#flipY = !!param;
    else if (pname === UNPACK_PREMULTIPLY_ALPHA_WEBGL || pname === UNPACK_COLORSPACE_CONVERSION_WEBGL) {
      // RGBA images arrive unpremultiplied with no colour space: nothing to convert.
    } else this.#gl.glPixelStorei(pname, Number(param));
  }
  viewport(x: number, y: number, w: number, h: number): void {
    this.#gl.glViewport(x, y, w, h);
  }
  clearColor(r: number, g: number, b: number, a: number): void {
    this.#gl.glClearColor(r, g, b, a);
  }
  clear(mask: number): void {
    this.#gl.glClear(mask);
  }
  colorMask(r: boolean, g: boolean, b: boolean, a: boolean): void {
    this.#gl.glColorMask(+r, +g, +b, +a);
  }
  blendEquation(mode: number): void {
    this.#gl.glBlendEquation(mode);
  }
  blendFunc(s: number, d: number): void {
    this.#gl.glBlendFunc(s, d);
  }
  lineWidth(w: number): void {
    this.#gl.glLineWidth(w);
  }
  finish(): void {
    this.#gl.glFinish();
  }
  flush(): void {
    this.#gl.glFlush();
  }

  // ---- buffers and drawing --------------------------------------------------------------------

  bindBuffer(target: number, b: GlObject | null): void {
    this.#gl.glBindBuffer(target, b?.id ?? 0);
  }
  bindBufferBase(target: number, index: number, b: GlObject | null): void {
    this.#gl.glBindBufferBase(target, index, b?.id ?? 0);
  }
  bufferData(
    target: number,
    src: number | TypedArray | null,
    usage: number,
    srcOffset = 0,
    length = 0,
  ): void {
    if (typeof src === "number" || src === null) {
      this.#gl.glBufferData(target, BigInt(src ?? 0), null, usage);
      return;
    }
    const view = slice(src, srcOffset, length);
    this.#gl.glBufferData(target, BigInt(view.byteLength), ptr(view), usage);
  }
  bufferSubData(target: number, dstOffset: number, src: TypedArray, srcOffset = 0, length = 0): void {
    const view = slice(src, srcOffset, length);
    this.#gl.glBufferSubData(target, BigInt(dstOffset), BigInt(view.byteLength), ptr(view));
  }
  bindVertexArray(v: GlObject | null): void {
    this.#gl.glBindVertexArray(v?.id ?? 0);
  }
  vertexAttribPointer(
    i: number,
    size: number,
    type: number,
    norm: boolean,
    stride: number,
    offset: number,
  ): void {
    this.#gl.glVertexAttribPointer(i, size, type, +norm, stride, ptr(offset));
  }
  enableVertexAttribArray(i: number): void {
    this.#gl.glEnableVertexAttribArray(i);
  }
  disableVertexAttribArray(i: number): void {
    this.#gl.glDisableVertexAttribArray(i);
  }
  drawArrays(mode: number, first: number, count: number): void {
    this.#gl.glDrawArrays(mode, first, count);
  }
  drawElements(mode: number, count: number, type: number, offset: number): void {
    this.#gl.glDrawElements(mode, count, type, ptr(offset));
  }

  // ---- textures -------------------------------------------------------------------------------

  activeTexture(unit: number): void {
    this.#gl.glActiveTexture(unit);
  }
  bindTexture(target: number, t: GlObject | null): void {
    this.#gl.glBindTexture(target, t?.id ?? 0);
  }
  texParameteri(target: number, pname: number, v: number): void {
    this.#gl.glTexParameteri(target, pname, v);
  }
  texParameterf(target: number, pname: number, v: number): void {
    this.#gl.glTexParameterf(target, pname, v);
  }
  texStorage2D(target: number, levels: number, fmt: number, w: number, h: number): void {
    this.#gl.glTexStorage2D(target, levels, fmt, w, h);
  }
  texStorage3D(target: number, levels: number, fmt: number, w: number, h: number, d: number): void {
    this.#gl.glTexStorage3D(target, levels, fmt, w, h, d);
  }

  /** WebGL2 overloads: (t, l, ifmt, fmt, type, image) and (t, l, ifmt, w, h, border, fmt, type, src, srcOffset?). */
  texImage2D(target: number, level: number, ifmt: number, ...rest: unknown[]): void {
    if (rest.length === 3) {
      const [format, type, image] = rest as [number, number, unknown];
      const img = this.#image(image, format, type);
      this.#gl.glTexImage2D(target, level, ifmt, img.width, img.height, 0, format, type, ptr(img.data));
      return;
    }
    const [w, h, border, format, type, src, srcOffset] = rest as [
      number,
      number,
      number,
      number,
      number,
      ArrayBufferView | number | null,
      number | undefined,
    ];
    this.#gl.glTexImage2D(target, level, ifmt, w, h, border, format, type, this.#pixels(src, srcOffset));
  }

  /** WebGL2 overloads: (t, l, x, y, fmt, type, image) and (t, l, x, y, w, h, fmt, type, src, srcOffset?). */
  texSubImage2D(target: number, level: number, x: number, y: number, ...rest: unknown[]): void {
    if (rest.length === 3) {
      const [format, type, image] = rest as [number, number, unknown];
      const img = this.#image(image, format, type);
      this.#gl.glTexSubImage2D(target, level, x, y, img.width, img.height, format, type, ptr(img.data));
      return;
    }
    const [w, h, format, type, src, srcOffset] = rest as [
      number,
      number,
      number,
      number,
      ArrayBufferView | number | null,
      number | undefined,
    ];
    this.#gl.glTexSubImage2D(target, level, x, y, w, h, format, type, this.#pixels(src, srcOffset));
  }

  texSubImage3D(
    target: number,
    level: number,
    x: number,
    y: number,
    z: number,
    w: number,
    h: number,
    d: number,
    format: number,
    type: number,
    src: ArrayBufferView | number | null,
    srcOffset?: number,
  ): void {
    this.#gl.glTexSubImage3D(target, level, x, y, z, w, h, d, format, type, this.#pixels(src, srcOffset));
  }

  /** Pixel pointer for an ArrayBufferView (+ element offset) or a PIXEL_UNPACK_BUFFER byte offset. */
  #pixels(src: unknown, srcOffset = 0): Deno.PointerValue {
    if (isImage(src)) {
      throw new WebGlShimError("EGL WebGL2 shim: sized uploads from image objects are not supported");
    }
    if (this.#flipY && src !== null && typeof src !== "number") {
      throw new WebGlShimError("EGL WebGL2 shim: UNPACK_FLIP_Y_WEBGL is supported for image uploads only");
    }
    return ptr(src as ArrayBufferView | number | null, srcOffset);
  }

  /** Checks an ImageData-like RGBA8 source and applies UNPACK_FLIP_Y_WEBGL. */
  #image(image: unknown, format: number, type: number): RgbaImage {
    if (!isImage(image)) {
      throw new WebGlShimError(
        "EGL WebGL2 shim: only ImageData-like {data, width, height} RGBA8 images can be uploaded",
      );
    }
    const { width, height, data } = image;
    if (format !== CONSTANTS.RGBA || type !== CONSTANTS.UNSIGNED_BYTE || data.length !== width * height * 4) {
      throw new WebGlShimError(
        `EGL WebGL2 shim: image upload needs RGBA/UNSIGNED_BYTE data of ${width}x${height}x4 bytes ` +
          `(got format 0x${format.toString(16)}, type 0x${type.toString(16)}, ${data.length} bytes)`,
      );
    }
    if (!this.#flipY) return image;
    const flipped = new Uint8Array(data.length), row = width * 4;
    for (let r = 0; r < height; r++) {
      flipped.set(data.subarray(r * row, (r + 1) * row), (height - 1 - r) * row);
    }
    return { data: flipped, width, height };
  }

  // ---- framebuffers ---------------------------------------------------------------------------

  bindFramebuffer(target: number, f: GlObject | null): void {
    this.#gl.glBindFramebuffer(target, f?.id ?? 0);
  }
  framebufferTexture2D(
    target: number,
    att: number,
    texTarget: number,
    t: GlObject | null,
    level: number,
  ): void {
    this.#gl.glFramebufferTexture2D(target, att, texTarget, t?.id ?? 0, level);
  }
  framebufferTextureLayer(
    target: number,
    att: number,
    t: GlObject | null,
    level: number,
    layer: number,
  ): void {
    this.#gl.glFramebufferTextureLayer(target, att, t?.id ?? 0, level, layer);
  }
  checkFramebufferStatus(target: number): number {
    return this.#gl.glCheckFramebufferStatus(target);
  }
  drawBuffers(buffers: ArrayLike<number>): void {
    this.#gl.glDrawBuffers(buffers.length, Uint32Array.from(buffers));
  }
  readPixels(
    x: number,
    y: number,
    w: number,
    h: number,
    format: number,
    type: number,
    dst: ArrayBufferView | number,
    dstOffset = 0,
  ): void {
    this.#gl.glReadPixels(x, y, w, h, format, type, ptr(dst, dstOffset));
  }

  // ---- shaders and programs -------------------------------------------------------------------

  shaderSource(s: GlObject, source: string): void {
    const bytes = encoder.encode(source);
    const strings = new BigUint64Array([Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)) as bigint]);
    this.#gl.glShaderSource(s.id, 1, strings, new Int32Array([bytes.length]));
  }
  compileShader(s: GlObject): void {
    this.#gl.glCompileShader(s.id);
  }
  getShaderParameter(s: GlObject, pname: number): number | boolean {
    this.#gl.glGetShaderiv(s.id, pname, this.#int);
    // COMPILE_STATUS and DELETE_STATUS are booleans in WebGL.
    return pname === 0x8b81 || pname === 0x8b80 ? this.#int[0] !== 0 : this.#int[0];
  }
  getShaderInfoLog(s: GlObject): string {
    this.#gl.glGetShaderiv(s.id, 0x8b84, this.#int); // INFO_LOG_LENGTH
    return this.#readString(this.#int[0], (n, len, buf) => this.#gl.glGetShaderInfoLog(s.id, n, len, buf));
  }
  getShaderSource(s: GlObject): string {
    this.#gl.glGetShaderiv(s.id, 0x8b88, this.#int); // SHADER_SOURCE_LENGTH
    return this.#readString(this.#int[0], (n, len, buf) => this.#gl.glGetShaderSource(s.id, n, len, buf));
  }
  attachShader(p: GlObject, s: GlObject): void {
    this.#gl.glAttachShader(p.id, s.id);
  }
  detachShader(p: GlObject, s: GlObject): void {
    this.#gl.glDetachShader(p.id, s.id);
  }
  bindAttribLocation(p: GlObject, index: number, name: string): void {
    this.#gl.glBindAttribLocation(p.id, index, cstr(name));
  }
  linkProgram(p: GlObject): void {
    this.#gl.glLinkProgram(p.id);
  }
  useProgram(p: GlObject | null): void {
    this.#gl.glUseProgram(p?.id ?? 0);
  }
  getProgramParameter(p: GlObject, pname: number): number | boolean {
    this.#gl.glGetProgramiv(p.id, pname, this.#int);
    // DELETE_STATUS, LINK_STATUS and VALIDATE_STATUS are booleans in WebGL.
    return pname >= 0x8b80 && pname <= 0x8b83 && pname !== 0x8b81 ? this.#int[0] !== 0 : this.#int[0];
  }
  getProgramInfoLog(p: GlObject): string {
    this.#gl.glGetProgramiv(p.id, 0x8b84, this.#int);
    return this.#readString(this.#int[0], (n, len, buf) => this.#gl.glGetProgramInfoLog(p.id, n, len, buf));
  }
  getAttribLocation(p: GlObject, name: string): number {
    return this.#gl.glGetAttribLocation(p.id, cstr(name));
  }
  getActiveAttrib(p: GlObject, index: number): { name: string; size: number; type: number } | null {
    // ACTIVE_ATTRIBUTES, ACTIVE_ATTRIBUTE_MAX_LENGTH
    return this.#activeInfo(
      p,
      index,
      0x8b89,
      0x8b8a,
      (n, len, size, type, buf) => this.#gl.glGetActiveAttrib(p.id, index, n, len, size, type, buf),
    );
  }
  getActiveUniform(p: GlObject, index: number): { name: string; size: number; type: number } | null {
    // ACTIVE_UNIFORMS, ACTIVE_UNIFORM_MAX_LENGTH
    return this.#activeInfo(
      p,
      index,
      0x8b86,
      0x8b87,
      (n, len, size, type, buf) => this.#gl.glGetActiveUniform(p.id, index, n, len, size, type, buf),
    );
  }
  getUniformLocation(p: GlObject, name: string): GlUniformLocation | null {
    const loc = this.#gl.glGetUniformLocation(p.id, cstr(name));
    return loc < 0 ? null : new GlUniformLocation(loc);
  }
  getUniformBlockIndex(p: GlObject, name: string): number {
    return this.#gl.glGetUniformBlockIndex(p.id, cstr(name));
  }
  getActiveUniformBlockName(p: GlObject, index: number): string | null {
    this.#gl.glGetProgramiv(p.id, 0x8a35, this.#int); // ACTIVE_UNIFORM_BLOCK_MAX_NAME_LENGTH
    return this.#readString(
      this.#int[0],
      (n, len, buf) => this.#gl.glGetActiveUniformBlockName(p.id, index, n, len, buf),
    );
  }
  uniformBlockBinding(p: GlObject, index: number, binding: number): void {
    this.#gl.glUniformBlockBinding(p.id, index, binding);
  }

  #readString(max: number, read: (n: number, len: Int32Array, buf: Uint8Array) => void): string {
    if (max <= 0) return "";
    const buf = new Uint8Array(max), len = new Int32Array(1);
    read(max, len, buf);
    return decoder.decode(buf.subarray(0, len[0]));
  }
  #activeInfo(
    p: GlObject,
    index: number,
    countPname: number,
    maxLengthPname: number,
    read: (n: number, len: Int32Array, size: Int32Array, type: Uint32Array, buf: Uint8Array) => void,
  ): { name: string; size: number; type: number } | null {
    this.#gl.glGetProgramiv(p.id, countPname, this.#int);
    if (index < 0 || index >= this.#int[0]) return null;
    this.#gl.glGetProgramiv(p.id, maxLengthPname, this.#int);
    const max = Math.max(this.#int[0], 1);
    const buf = new Uint8Array(max),
      len = new Int32Array(1),
      size = new Int32Array(1),
      type = new Uint32Array(1);
    read(max, len, size, type, buf);
    return { name: decoder.decode(buf.subarray(0, len[0])), size: size[0], type: type[0] };
  }

  // ---- uniforms -------------------------------------------------------------------------------

  uniform1i(l: GlUniformLocation | null, v: number): void {
    this.#gl.glUniform1i(l?.location ?? -1, v);
  }
  uniform1f(l: GlUniformLocation | null, v: number): void {
    this.#gl.glUniform1f(l?.location ?? -1, v);
  }
  uniform2f(l: GlUniformLocation | null, a: number, b: number): void {
    this.#gl.glUniform2f(l?.location ?? -1, a, b);
  }
  uniform3f(l: GlUniformLocation | null, a: number, b: number, c: number): void {
    this.#gl.glUniform3f(l?.location ?? -1, a, b, c);
  }
  uniform4f(l: GlUniformLocation | null, a: number, b: number, c: number, d: number): void {
    this.#gl.glUniform4f(l?.location ?? -1, a, b, c, d);
  }
  uniform1fv(l: GlUniformLocation | null, v: Float32Array | number[], off?: number, len?: number): void {
    const d = slice(v, off, len);
    this.#gl.glUniform1fv(l?.location ?? -1, d.length, ptr(d));
  }
  uniform2fv(l: GlUniformLocation | null, v: Float32Array | number[], off?: number, len?: number): void {
    const d = slice(v, off, len);
    this.#gl.glUniform2fv(l?.location ?? -1, d.length / 2, ptr(d));
  }
  uniform3fv(l: GlUniformLocation | null, v: Float32Array | number[], off?: number, len?: number): void {
    const d = slice(v, off, len);
    this.#gl.glUniform3fv(l?.location ?? -1, d.length / 3, ptr(d));
  }
  uniform4fv(l: GlUniformLocation | null, v: Float32Array | number[], off?: number, len?: number): void {
    const d = slice(v, off, len);
    this.#gl.glUniform4fv(l?.location ?? -1, d.length / 4, ptr(d));
  }
  uniform1iv(l: GlUniformLocation | null, v: Int32Array | number[], off?: number, len?: number): void {
    const d = slice(Array.isArray(v) ? new Int32Array(v) : v, off, len);
    this.#gl.glUniform1iv(l?.location ?? -1, d.length, ptr(d));
  }
  uniform4iv(l: GlUniformLocation | null, v: Int32Array | number[], off?: number, len?: number): void {
    const d = slice(Array.isArray(v) ? new Int32Array(v) : v, off, len);
    this.#gl.glUniform4iv(l?.location ?? -1, d.length / 4, ptr(d));
  }
  uniformMatrix2fv(
    l: GlUniformLocation | null,
    t: boolean,
    v: Float32Array,
    off?: number,
    len?: number,
  ): void {
    const d = slice(v, off, len);
    this.#gl.glUniformMatrix2fv(l?.location ?? -1, d.length / 4, +t, ptr(d));
  }
  uniformMatrix3fv(
    l: GlUniformLocation | null,
    t: boolean,
    v: Float32Array,
    off?: number,
    len?: number,
  ): void {
    const d = slice(v, off, len);
    this.#gl.glUniformMatrix3fv(l?.location ?? -1, d.length / 9, +t, ptr(d));
  }
  uniformMatrix4fv(
    l: GlUniformLocation | null,
    t: boolean,
    v: Float32Array,
    off?: number,
    len?: number,
  ): void {
    const d = slice(v, off, len);
    this.#gl.glUniformMatrix4fv(l?.location ?? -1, d.length / 16, +t, ptr(d));
  }
}
