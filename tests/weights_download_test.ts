/**
 * The weights downloader against a fake hub on 127.0.0.1 (tests/helpers/hf_server.ts): complete download,
 * resume after a cut transfer, 404, a file that fails verification, refused credentials, no network, a disk
 * error, and the CLI honouring HF_ENDPOINT and HF_TOKEN. Only loopback traffic, tiny generated files.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type DownloadEvent,
  type DownloadOptions,
  downloadWeights,
  STALL_ENV,
  stallLimitMs,
  WeightsDownloadError,
} from "../src/weights/download.ts";
import { parseManifest, type WeightsManifest } from "../src/weights/manifest.ts";
import { run } from "../src/cli/weights.ts";
import {
  closedPort,
  type FakeHub,
  startFakeHub,
  tinySafetensors,
  tinyTorchZip,
} from "./helpers/hf_server.ts";
import { makePth, op, pickle } from "./helpers/weights_fixtures.ts";
import { tinyModel } from "./helpers/shared.ts";
import { withEnv } from "./helpers/env.ts";

const REPO = "test-org/tiny";

const MANIFEST: WeightsManifest = parseManifest({
  repo: REPO,
  revision: "main",
  files: [
    {
      name: "st",
      path: "m/model.safetensors",
      stage: "networks",
      status: "required",
      format: "safetensors",
      readBy: "",
    },
    { name: "pth", path: "hallo/net.pth", stage: "networks", status: "required", format: "pth", readBy: "" },
    { name: "cfg", path: "m/config.json", stage: "audio", status: "required", format: "json", readBy: "" },
    { name: "gone", path: "m/missing.json", stage: "audio", status: "required", format: "json", readBy: "" },
    {
      name: "bad",
      path: "m/bad.safetensors",
      stage: "audio",
      status: "required",
      format: "safetensors",
      readBy: "",
    },
    { name: "locked", path: "m/locked.json", stage: "audio", status: "required", format: "json", readBy: "" },
  ],
});

const FILES: Record<string, Uint8Array> = {
  "m/model.safetensors": tinySafetensors(50_000), // 200 KB: several chunks, so a cut lands mid-file
  "hallo/net.pth": tinyTorchZip(8192),
  "m/config.json": new TextEncoder().encode('{"hidden_size": 768}'),
  "m/bad.safetensors": new TextEncoder().encode("<!DOCTYPE html><html>rate limited</html>"),
  "m/locked.json": new TextEncoder().encode("{}"),
};

function pick(...names: string[]) {
  return MANIFEST.files.filter((f) => names.includes(f.name));
}

async function withHub(
  opts: { cutOnce?: string[]; stallOnce?: string[]; stallBytes?: number; status?: Record<string, number> },
  body: (hub: FakeHub, dir: string) => Promise<void>,
): Promise<void> {
  const hub = await startFakeHub({ repo: REPO, files: FILES, ...opts });
  const dir = await Deno.makeTempDir({ prefix: "hallo_dl_" });
  try {
    await body(hub, dir);
  } finally {
    await hub.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function dl(hub: FakeHub | string, dir: string, names: string[], extra: Partial<DownloadOptions> = {}) {
  const events: DownloadEvent[] = [];
  const t0 = performance.now();
  const report = await downloadWeights({
    dir,
    files: pick(...names),
    manifest: MANIFEST,
    endpoint: typeof hub === "string" ? hub : hub.url,
    token: "",
    stallTimeoutMs: 5000,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { report, events, ms: performance.now() - t0 };
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

function onlyError(report: { failed: { error: WeightsDownloadError }[] }): WeightsDownloadError {
  assert.equal(report.failed.length, 1, JSON.stringify(report.failed.map((f) => f.error.message)));
  assert.ok(report.failed[0].error instanceof WeightsDownloadError);
  return report.failed[0].error;
}

Deno.test("download: complete files, byte-identical, verified, no leftovers; second run makes no request", async () => {
  await withHub({}, async (hub, dir) => {
    const { report, events } = await dl(hub, dir, ["st", "pth", "cfg"]);
    assert.deepEqual(report.failed, []);
    assert.deepEqual(report.downloaded, ["st", "pth", "cfg"]);
    for (const f of pick("st", "pth", "cfg")) {
      assert.deepEqual(await Deno.readFile(join(dir, f.path)), FILES[f.path], f.path);
      assert.equal(await exists(join(dir, `${f.path}.partial`)), false);
      assert.equal(await exists(join(dir, `${f.path}.partial.etag`)), false);
    }
    const plan = events.find((e) => e.type === "plan");
    assert.ok(plan && plan.type === "plan");
    assert.equal(plan.totalBytes, FILES["m/model.safetensors"].length + FILES["hallo/net.pth"].length + 20);
    const done = events.filter((e) => e.type === "done").map((e) => e.type === "done" && e.detail);
    assert.deepEqual(done, [
      "safetensors, 1 tensors",
      "torch zip, 3 entries, 0 tensors",
      "JSON object, 1 keys",
    ]);
    const last = events.filter((e) => e.type === "progress").at(-1);
    assert.ok(last && last.type === "progress" && last.bytes === last.size);

    const before = hub.requests.length;
    const again = await dl(hub, dir, ["st", "pth", "cfg"]);
    assert.deepEqual(again.report.present, ["st", "pth", "cfg"]);
    assert.equal(hub.requests.length, before, "present files must not be fetched again");
  });
});

Deno.test("download: a transfer cut midway is resumed with Range and ends byte-identical", async () => {
  await withHub({ cutOnce: ["m/model.safetensors"] }, async (hub, dir) => {
    const path = "m/model.safetensors";
    const size = FILES[path].length;
    const first = await dl(hub, dir, ["st"]);
    const err = onlyError(first.report);
    assert.equal(err.kind, "interrupted");
    assert.match(
      err.message,
      /^m\/model\.safetensors: transfer interrupted after .* run the same command again/,
    );
    assert.equal(await exists(join(dir, path)), false, "no truncated file under the final name");
    const partial = await Deno.readFile(join(dir, `${path}.partial`));
    assert.equal(partial.length, Math.floor(size / 2));
    assert.deepEqual(partial, FILES[path].subarray(0, partial.length));

    const second = await dl(hub, dir, ["st"]);
    assert.deepEqual(second.report.failed, []);
    const ranged = hub.requests.filter((r) => r.method === "GET" && r.range && r.range !== "bytes=0-0");
    assert.deepEqual(ranged.map((r) => r.range), [`bytes=${partial.length}-${size - 1}`]);
    const done = second.events.find((e) => e.type === "done");
    assert.ok(done && done.type === "done" && done.resumedFrom === partial.length);
    assert.deepEqual(await Deno.readFile(join(dir, path)), FILES[path]);
    assert.equal(await exists(join(dir, `${path}.partial`)), false);
  });
});

/**
 * Fails instead of hanging when `p` outlives a limit far above what it should take: a hang must be a
 * failure with a message, not a test run that never ends.
 */
async function noHang<T>(p: Promise<T>, limitMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still hanging after ${limitMs} ms`)), limitMs);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("download: a body that stalls mid-transfer is aborted after the stall limit, kept, and resumed by a rerun", async () => {
  await withHub({ stallOnce: ["m/model.safetensors"], stallBytes: 3000 }, async (hub, dir) => {
    const path = "m/model.safetensors";
    // Deno holds a fetch's abort listener weakly: after a garbage collection, aborting the signal no longer
    // reaches the body. A fetch that drops the signal is that situation made deterministic.
    const deafFetch: typeof fetch = (input, init) => fetch(input, { ...init, signal: undefined });
    const first = await noHang(
      dl(hub, dir, ["st"], { stallTimeoutMs: 1000, fetch: deafFetch }),
      30_000,
      "the stalled download",
    );
    const err = onlyError(first.report);
    assert.equal(err.kind, "interrupted");
    assert.equal(
      err.message,
      "m/model.safetensors: transfer interrupted after 2.93 KiB of 195.4 KiB (no data for 1 s); " +
        "run the same command again to resume",
    );
    assert.equal(await exists(join(dir, path)), false, "nothing under the final name");
    const partial = await Deno.readFile(join(dir, `${path}.partial`));
    assert.deepEqual(partial, FILES[path].subarray(0, 3000));

    const second = await dl(hub, dir, ["st"], { stallTimeoutMs: 1000, fetch: deafFetch });
    assert.deepEqual(second.report.failed, []);
    const done = second.events.find((e) => e.type === "done");
    assert.ok(done && done.type === "done" && done.resumedFrom === 3000);
    const ranged = hub.requests.filter((r) => r.method === "GET" && r.range && r.range !== "bytes=0-0");
    assert.deepEqual(ranged.map((r) => r.range), [`bytes=3000-${FILES[path].length - 1}`]);
    assert.deepEqual(await Deno.readFile(join(dir, path)), FILES[path]);
    assert.equal(await exists(join(dir, `${path}.partial`)), false);
  });
});

Deno.test("download: the stall limit comes from HALLO_DOWNLOAD_STALL_S when not given, and a bad value is refused", async () => {
  await withEnv({ [STALL_ENV]: undefined }, () => {
    assert.equal(stallLimitMs(), 60_000);
    assert.equal(stallLimitMs(250), 250);
    Deno.env.set(STALL_ENV, "1.5");
    assert.equal(stallLimitMs(), 1500);
    Deno.env.set(STALL_ENV, "-1");
    assert.throws(() => stallLimitMs(), /HALLO_DOWNLOAD_STALL_S '-1' is not a positive number of seconds/);
  });
});

Deno.test("download: a partial from another remote version (ETag changed) is restarted, not appended", async () => {
  await withHub({}, async (hub, dir) => {
    const path = "m/model.safetensors";
    await Deno.mkdir(join(dir, "m"), { recursive: true });
    await Deno.writeFile(join(dir, `${path}.partial`), new Uint8Array(1000).fill(9));
    await Deno.writeTextFile(join(dir, `${path}.partial.etag`), '"an-older-etag"');
    const { report } = await dl(hub, dir, ["st"]);
    assert.deepEqual(report.failed, []);
    assert.deepEqual(await Deno.readFile(join(dir, path)), FILES[path]);
  });
});

Deno.test("download: 404 names the file and the other files still arrive", async () => {
  await withHub({}, async (hub, dir) => {
    const { report } = await dl(hub, dir, ["gone", "cfg"]);
    const err = onlyError(report);
    assert.equal(err.kind, "not-found");
    assert.equal(
      err.message,
      `m/missing.json: not found in ${REPO}@main (HTTP 404 from ${hub.url}/${REPO}/resolve/main/m/missing.json)`,
    );
    assert.equal(report.aborted, false);
    assert.deepEqual(report.downloaded, ["cfg"]);
  });
});

Deno.test("download: a file failing verification is kept aside as .invalid, never under its final name", async () => {
  await withHub({}, async (hub, dir) => {
    const { report } = await dl(hub, dir, ["bad"]);
    const err = onlyError(report);
    assert.equal(err.kind, "invalid");
    const final = join(dir, "m/bad.safetensors");
    assert.match(
      err.message,
      /^m\/bad\.safetensors: downloaded file failed its safetensors check \(.*HTML page\)/,
    );
    assert.ok(err.message.endsWith(`kept aside as ${final}.invalid`), err.message);
    assert.equal(await exists(final), false);
    assert.equal(await exists(`${final}.partial`), false);
    assert.deepEqual(await Deno.readFile(`${final}.invalid`), FILES["m/bad.safetensors"]);
  });
});

Deno.test("download: an invalid file already under its final name is set aside and fetched again", async () => {
  await withHub({}, async (hub, dir) => {
    const final = join(dir, "m/config.json");
    await Deno.mkdir(join(dir, "m"));
    await Deno.writeTextFile(final, '{"trunc');
    const { report, events } = await dl(hub, dir, ["cfg"]);
    assert.deepEqual(report.downloaded, ["cfg"]);
    assert.ok(events.some((e) => e.type === "set-aside"));
    assert.equal(await Deno.readTextFile(`${final}.invalid`), '{"trunc');
    assert.deepEqual(await Deno.readFile(final), FILES["m/config.json"]);
  });
});

Deno.test("download: a present net.pth the stages' reader refuses (pickle calling os.system) is set aside and fetched again", async () => {
  await withHub({}, async (hub, dir) => {
    const final = join(dir, "hallo/net.pth");
    await Deno.mkdir(join(dir, "hallo"));
    // A well-formed torch zip whose data.pkl calls os.system: the format check alone called it present.
    const hostile = makePth(
      pickle(op.proto(2), op.global("os", "system"), op.str("true"), op.tuple1, op.reduce, op.stop),
      {},
    );
    await Deno.writeFile(final, hostile);
    const { report, events } = await dl(hub, dir, ["pth"]);
    assert.deepEqual(report.downloaded, ["pth"]);
    const aside = events.find((e) => e.type === "set-aside");
    assert.ok(aside && aside.type === "set-aside");
    assert.match(aside.problem, /global 'os\.system' is not allowed/);
    assert.deepEqual(await Deno.readFile(`${final}.invalid`), hostile);
    assert.deepEqual(await Deno.readFile(final), FILES["hallo/net.pth"]);
  });
});

Deno.test("download: 401 says to set HF_TOKEN and stops the run", async () => {
  await withHub({ status: { "m/locked.json": 401 } }, async (hub, dir) => {
    const { report } = await dl(hub, dir, ["locked", "cfg"]);
    const err = onlyError(report);
    assert.equal(err.kind, "auth");
    assert.match(
      err.message,
      /^m\/locked\.json: HTTP 401 from .*: access denied; set HF_TOKEN to a Hugging Face token/,
    );
    assert.equal(report.aborted, true);
    assert.equal(await exists(join(dir, "m/config.json")), false);
  });
});

Deno.test("download: no network (closed local port) fails fast with one clear message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo_dl_" });
  try {
    const endpoint = `http://127.0.0.1:${closedPort()}`;
    const { report, ms } = await dl(endpoint, dir, ["st", "cfg"]);
    const err = onlyError(report);
    assert.equal(err.kind, "network");
    assert.match(
      err.message,
      new RegExp(`^cannot reach ${endpoint} \\(.*refused.*\\); check the network`, "i"),
    );
    assert.equal(report.aborted, true);
    assert.ok(ms < 3000, `took ${ms} ms`);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download: a folder that cannot be written gives a disk error naming the path", async () => {
  await withHub({}, async (hub, dir) => {
    const blocker = join(dir, "not_a_dir");
    await Deno.writeTextFile(blocker, "x");
    const { report } = await dl(hub, blocker, ["cfg"]);
    const err = onlyError(report);
    assert.equal(err.kind, "disk");
    assert.ok(
      err.message.startsWith(`cannot write ${join(blocker, "m/config.json")}.partial: `),
      err.message,
    );
  });
});

Deno.test("cli: weights download honours HF_ENDPOINT and HF_TOKEN; exit 1 on 404", async () => {
  const path = "stable-diffusion-v1-5/unet/config.json";
  // A real (tiny) UNet config: a downloaded config must pass the parser the networks stage reads it with.
  const config = await Deno.readFile(tinyModel(path));
  const hub = await startFakeHub({ repo: "fudan-generative-ai/hallo", files: { [path]: config } });
  const dir = await Deno.makeTempDir({ prefix: "hallo_dl_" });
  try {
    await withEnv({ HF_ENDPOINT: hub.url, HF_TOKEN: "hf_test_token" }, async () => {
      assert.equal(await run(["download", "--dir", dir, "--only", "unet_config"]), 0);
      assert.deepEqual(await Deno.readFile(join(dir, path)), config);
      assert.ok(
        hub.requests.length > 0 && hub.requests.every((r) => r.authorization === "Bearer hf_test_token"),
      );
      assert.equal(await run(["download", "--dir", dir, "--only", "vae_config"]), 1);
      assert.equal(await run(["download", "--dir", dir, "--only", "no_such_file"]), 2);
    });
  } finally {
    await hub.close();
    await Deno.remove(dir, { recursive: true });
  }
});
