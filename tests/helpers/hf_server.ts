/**
 * A fake Hugging Face hub on 127.0.0.1 for downloader tests: files served at `/{repo}/resolve/{rev}/{path}`
 * with HEAD (content-length, ETag), Range requests (206 + content-range), 404 with X-Error-Code like the hub,
 * forced statuses, and transfers cut midway. Plus generators for tiny files of each weights format.
 */
import { encodeSafetensors } from "../../src/weights/safetensors_write.ts";
import { makeZip } from "./weights_fixtures.ts";

/** One request as the server saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

/** Options of {@link startFakeHub}. */
export interface FakeHubOptions {
  repo: string;
  revision?: string;
  /** Repository files by path. */
  files: Record<string, Uint8Array>;
  /** Paths whose first body transfer (more than one byte) sends half the bytes and drops the connection. */
  cutOnce?: string[];
  /**
   * Paths whose first body transfer (more than one byte) sends its headers and `stallBytes` bytes, then
   * goes silent with the connection left open, as a hung server or proxy does.
   */
  stallOnce?: string[];
  /** Bytes sent before a stall (default 1000). */
  stallBytes?: number;
  /** Paths answered with this HTTP status instead of their bytes. */
  status?: Record<string, number>;
}

/** A running fake hub. */
export interface FakeHub {
  /** Base URL to put in HF_ENDPOINT. */
  readonly url: string;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

async function etagOf(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return `"${Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("")}"`;
}

/** Starts a fake hub on a free loopback port. */
export async function startFakeHub(opts: FakeHubOptions): Promise<FakeHub> {
  const revision = opts.revision ?? "main";
  const etags = new Map<string, string>();
  for (const [p, b] of Object.entries(opts.files)) etags.set(p, await etagOf(b));
  const toCut = new Set(opts.cutOnce ?? []);
  const toStall = new Set(opts.stallOnce ?? []);
  // Stalled streams are closed at shutdown, so the server can stop.
  const stalled: ReadableStreamDefaultController<Uint8Array>[] = [];
  const requests: SeenRequest[] = [];

  const handler = (req: Request): Response => {
    const url = new URL(req.url);
    const range = req.headers.get("range");
    requests.push({
      method: req.method,
      path: url.pathname,
      range,
      authorization: req.headers.get("authorization"),
    });
    const m = /^\/(.+?\/.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    // The hub answers 401 for unknown repositories so as not to reveal private ones.
    if (!m || m[1] !== opts.repo) {
      return new Response("Repository not found", {
        status: 401,
        headers: { "x-error-code": "RepoNotFound" },
      });
    }
    if (decodeURIComponent(m[2]) !== revision) {
      return new Response("Revision not found", {
        status: 404,
        headers: { "x-error-code": "RevisionNotFound" },
      });
    }
    const path = decodeURIComponent(m[3]);
    const forced = opts.status?.[path];
    if (forced) return new Response(`status ${forced}`, { status: forced });
    const bytes = opts.files[path];
    if (!bytes) {
      return new Response("Entry not found", { status: 404, headers: { "x-error-code": "EntryNotFound" } });
    }
    const headers = new Headers({
      etag: etags.get(path)!,
      "accept-ranges": "bytes",
      "content-type": "application/octet-stream",
    });
    if (req.method === "HEAD") {
      headers.set("content-length", String(bytes.length));
      return new Response(null, { status: 200, headers });
    }
    let start = 0;
    let end = bytes.length - 1;
    let status = 200;
    if (range) {
      const r = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!r) return new Response("bad range", { status: 416 });
      start = Number(r[1]);
      end = r[2] ? Math.min(Number(r[2]), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length || end < start) {
        return new Response("range not satisfiable", {
          status: 416,
          headers: { "content-range": `bytes */${bytes.length}` },
        });
      }
      status = 206;
      headers.set("content-range", `bytes ${start}-${end}/${bytes.length}`);
    }
    const body = bytes.subarray(start, end + 1) as Uint8Array<ArrayBuffer>;
    headers.set("content-length", String(body.length));
    if (body.length > 1 && toCut.delete(path)) {
      // Declared length, half the bytes, then a clean close: the client sees the connection end early.
      const half = body.subarray(0, Math.floor(body.length / 2));
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(half);
          c.close();
        },
      });
      return new Response(stream, { status, headers });
    }
    if (body.length > 1 && toStall.delete(path)) {
      const head = body.subarray(0, Math.min(opts.stallBytes ?? 1000, body.length - 1));
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(head);
          stalled.push(c);
        },
      });
      return new Response(stream, { status, headers });
    }
    return new Response(body, { status, headers });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => {
      for (const c of stalled.splice(0)) {
        try {
          c.error(new Error("server shut down"));
        } catch { /* the client already went away */ }
      }
      return server.shutdown();
    },
  };
}

/** A loopback port with nothing listening on it (bound, then released). */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A tiny valid safetensors file: one F32 tensor of `n` values 0..n-1. */
export function tinySafetensors(n = 64): Uint8Array {
  const data = Float32Array.from({ length: n }, (_, i) => i);
  return encodeSafetensors([{ name: "w", dtype: "F32", shape: [n], data }], { format: "pt" });
}

/** A zip of the given entries (stored, torch-style data alignment), as torch.save and MediaPipe bundles are. */
export function tinyZip(entries: Record<string, Uint8Array>): Uint8Array {
  return makeZip(Object.entries(entries).map(([name, data]) => ({ name, data })));
}

/** A zip laid out like torch.save's: `archive/data.pkl` plus one storage, padded to `size` bytes of data. */
export function tinyTorchZip(storageBytes = 4096): Uint8Array {
  const pkl = new Uint8Array([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e]); // protocol 2, empty dict, STOP
  const storage = new Uint8Array(storageBytes).map((_, i) => (i * 7) & 0xff);
  return tinyZip({
    "archive/data.pkl": pkl,
    "archive/data/0": storage,
    "archive/version": new TextEncoder().encode("3\n"),
  });
}

/** A minimal ONNX ModelProto: ir_version 8, an empty graph, opset 17. */
export function tinyOnnx(): Uint8Array {
  const graph = [0x12, 0x01, 0x67]; // GraphProto.name = "g"
  const opset = [0x10, 0x11]; // OperatorSetIdProto.version = 17
  return new Uint8Array([0x08, 0x08, 0x3a, graph.length, ...graph, 0x42, opset.length, ...opset]);
}
