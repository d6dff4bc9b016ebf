/**
 * Opens a report in headless Chromium over the DevTools protocol and says how it went: console errors,
 * uncaught exceptions and failed loads (from the browser, not only from the page's own recorder), whether
 * each Plotly figure drew, where it is on the page, and a full-page screenshot.
 */
import { dirname, join } from "node:path";

/** Thrown when Chromium is missing, does not start or does not answer in time. */
export class BrowserError extends Error {
  override name = "BrowserError";
}

export interface PlotRegion {
  id: string;
  drawn: boolean;
  /** Page coordinates (CSS pixels) of the figure's element. */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PageCheck {
  /** body[data-status] when the page finished (e.g. "done"), or "timeout". */
  status: string;
  /** Errors the browser reported (console.error, exceptions, failed resources). */
  errors: string[];
  /** What the page's own recorder collected (window.__reportErrors). */
  pageErrors: string[];
  plots: PlotRegion[];
  /** PNG of the whole page. */
  screenshot: Uint8Array;
  width: number;
  height: number;
}

/**
 * The Chromium binary: $CHROMIUM when set (null if it is not a file), else the first of chromium,
 * chromium-browser, google-chrome on PATH.
 */
export function findChromium(): string | null {
  const env = Deno.env.get("CHROMIUM");
  if (env) {
    try {
      return Deno.statSync(env).isFile ? env : null;
    } catch {
      return null;
    }
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
      try {
        const p = join(dir, name);
        if (Deno.statSync(p).isFile) return p;
      } catch { /* not here */ }
    }
  }
  return null;
}

type Json = Record<string, unknown>;

/** A minimal DevTools client: one WebSocket, calls by id, events to a listener. */
class Cdp {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  onEvent: (method: string, params: Json, sessionId?: string) => void = () => {};

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new BrowserError(`DevTools: ${msg.error.message}`));
        else p?.resolve(msg.result ?? {});
      } else if (msg.method) {
        this.onEvent(msg.method, msg.params ?? {}, msg.sessionId);
      }
    };
    ws.onclose = () => {
      for (const p of this.#pending.values()) p.reject(new BrowserError("DevTools connection closed"));
      this.#pending.clear();
    };
  }

  static open(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve(new Cdp(ws));
      ws.onerror = () => reject(new BrowserError(`cannot connect to ${url}`));
    });
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}

/** Reads Chromium's stderr until it prints its DevTools address. */
async function devtoolsUrl(stderr: ReadableStream<Uint8Array>, timeoutMs: number): Promise<string> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => reader.cancel(), timeoutMs);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
      if (m) {
        // Keep draining stderr so Chromium never blocks on a full pipe.
        (async () => {
          try {
            while (!(await reader.read()).done) { /* discard */ }
          } catch { /* closed */ }
        })();
        return m[1];
      }
    }
  } finally {
    clearTimeout(timer);
  }
  throw new BrowserError(
    `chromium did not start its DevTools server: ${text.trim().split("\n").slice(-3).join(" | ")}`,
  );
}

function describe(params: Json): string {
  const args = (params.args as { value?: unknown; description?: string }[] | undefined) ?? [];
  return args.map((a) => (a.value !== undefined ? String(a.value) : a.description ?? "")).join(" ");
}

/** Loads `url` in headless Chromium, waits for body[data-status], and checks the page. */
export async function checkPageInChromium(
  url: string,
  o: { chromium?: string; width?: number; height?: number; timeoutMs?: number; scale?: number } = {},
): Promise<PageCheck> {
  const bin = o.chromium ?? findChromium();
  if (!bin) {
    throw new BrowserError("chromium not found (install the Debian package `chromium` or set $CHROMIUM)");
  }
  const width = o.width ?? 1280, height = o.height ?? 900, timeoutMs = o.timeoutMs ?? 60_000;
  const profile = await Deno.makeTempDir({ prefix: "hallo-chromium-" });
  const child = new Deno.Command(bin, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--no-first-run",
      "--no-default-browser-check",
      "--mute-audio",
      "--allow-file-access-from-files",
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      `--window-size=${width},${height}`,
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let cdp: Cdp | null = null;
  try {
    cdp = await Cdp.open(await devtoolsUrl(child.stderr, timeoutMs));
    const errors: string[] = [];
    cdp.onEvent = (method, p) => {
      if (method === "Runtime.consoleAPICalled" && (p.type === "error" || p.type === "assert")) {
        errors.push(`console.${p.type}: ${describe(p)}`);
      } else if (method === "Runtime.exceptionThrown") {
        const d = p.exceptionDetails as { text?: string; exception?: { description?: string } };
        errors.push(`exception: ${d.exception?.description ?? d.text}`);
      } else if (method === "Log.entryAdded") {
        const e = p.entry as { level?: string; text?: string; url?: string };
        if (e.level === "error") errors.push(`log: ${e.text}${e.url ? ` (${e.url})` : ""}`);
      }
    };
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const s = sessionId as string;
    for (const domain of ["Runtime", "Log", "Page"]) await cdp.send(`${domain}.enable`, {}, s);
    await cdp.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    }, s);
    await cdp.send("Page.navigate", { url }, s);
    const evaluate = async (expression: string): Promise<unknown> => {
      const r = await cdp!.send("Runtime.evaluate", { expression, returnByValue: true }, s);
      return (r.result as { value?: unknown }).value;
    };
    let status = "timeout";
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      const v = await evaluate(
        "document.readyState === 'complete' && document.body ? document.body.dataset.status || '' : ''",
      );
      if (typeof v === "string" && v) {
        status = v;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // Let images inside the plots decode before the screenshot.
    await evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
    const plots = JSON.parse(
      String(
        await evaluate(`JSON.stringify([...document.querySelectorAll("div.plot")].map(d => {
      const r = d.getBoundingClientRect();
      return { id: d.id, drawn: d.dataset.drawn === "1", x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height };
    }))`),
      ),
    ) as PlotRegion[];
    const pageErrors = (await evaluate("window.__reportErrors || []")) as string[];
    const metrics = await cdp.send("Page.getLayoutMetrics", {}, s);
    const size = metrics.cssContentSize as { width: number; height: number };
    const W = Math.ceil(Math.max(width, size.width)), H = Math.ceil(size.height);
    const shot = await cdp.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: W, height: H, scale: o.scale ?? 1 },
    }, s);
    const screenshot = Uint8Array.from(atob(shot.data as string), (c) => c.charCodeAt(0));
    await cdp.send("Browser.close").catch(() => {});
    return { status, errors, pageErrors, plots, screenshot, width: W, height: H };
  } finally {
    cdp?.close();
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
    await removeSingletonDir(profile);
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/**
 * Removes the folder Chromium made in TMPDIR for its single-instance socket (`org.chromium.Chromium.XXXXXX`,
 * linked from the profile as SingletonSocket; kept out of the profile because a socket path is limited to 107
 * bytes), which a killed Chromium leaves behind. Only a folder holding nothing but Singleton* entries goes.
 */
async function removeSingletonDir(profile: string): Promise<void> {
  let dir: string;
  try {
    dir = dirname(await Deno.readLink(join(profile, "SingletonSocket")));
  } catch {
    return; // Chromium did not get that far
  }
  try {
    for await (const e of Deno.readDir(dir)) if (!e.name.startsWith("Singleton")) return;
    await Deno.remove(dir, { recursive: true });
  } catch { /* gone already */ }
}
