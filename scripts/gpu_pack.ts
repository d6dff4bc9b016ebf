/**
 * Packs what the GPU check (scripts/gpu_check.ts) needs on the device machine, which has no Deno, no Node and
 * no network, and splits it into calls that each fit the device tool's 64 MiB: the working tree travels with
 * every call, so each call carries only what is left of the 64 MiB after the tree.
 *
 *   deno run -A scripts/gpu_pack.ts --sources DIR [--out .gpu] [--xz 9e] [--no-vulkan]
 *
 * DIR holds git repositories (clones or bare mirrors) named hallo, diffusers, huggingface_hub and einops; each
 * is archived at the commit the reference set was made with (tests/reference/index.json `common.versions`,
 * pinned in UPSTREAM_SOURCES), so no upstream code is committed here. Get them with e.g.
 * `git clone https://github.com/fudan-generative-vision/hallo DIR/hallo` (and huggingface/diffusers,
 * huggingface/huggingface_hub, arogozhnikov/einops).
 *
 * Payload (what the machine lacks): deno's own binary (xz), node_modules with onnxruntime-node for linux-x64
 * and its JS dependencies (tar.xz; `deno run --node-modules-dir=manual --cached-only` runs from it with an empty
 * DENO_DIR and no network), upstream's sources (tar.xz) and Debian's Vulkan loader (libvulkan1, for ORT's
 * WebGPU EP; the GPU machine's image may lack it). Out: `<out>/call-N/` (one carried folder per staging
 * call, chunks of the payload), `<out>/plan.json` and `<out>/COMMANDS.md` (the device calls, in order).
 * On the machine scripts/gpu_remote.sh stages the chunks under /var/tmp/hallo-gpu, which a warm machine keeps
 * between calls (it is given back 30 s after a call: make the calls back to back).
 */
import { parseArgs } from "node:util";
import { basename, dirname, join, relative, resolve } from "node:path";

/** The device tool's limit on what one call sends: working tree plus carried paths. */
export const CALL_LIMIT_BYTES = 64 * 2 ** 20;
/** Headroom per call for files that appear between packing and calling (logs, a note). */
export const CALL_MARGIN_BYTES = 2 ** 20;

/** One upstream repository: where it comes from, the commit, and which of its paths travel (as `name/`). */
export interface UpstreamSource {
  name: string;
  repo: string;
  commit: string;
  /** Paths archived from the commit. */
  paths: string[];
  /** Prefix removed so that the package lands at `<upstream>/<name>/`. */
  strip: string;
}

/** The commits of tests/reference/index.json `common.versions`: upstream as the reference set ran it. */
export const UPSTREAM_SOURCES: readonly UpstreamSource[] = [
  {
    name: "hallo",
    repo: "github.com/fudan-generative-vision/hallo",
    commit: "8fd7c572a3d43c2a9c1a5473219ce4fc1b6e3ed2",
    paths: ["hallo/__init__.py", "hallo/models"],
    strip: "",
  },
  {
    name: "diffusers",
    repo: "github.com/huggingface/diffusers (v0.27.2)",
    commit: "b69fd990ad8026f21893499ab396d969b62bb8cc",
    paths: ["src/diffusers"],
    strip: "src/",
  },
  {
    name: "huggingface_hub",
    repo: "github.com/huggingface/huggingface_hub (v0.22.2)",
    commit: "06f48e6aa95c30167928be586dc0472ad50ae2bb",
    paths: ["src/huggingface_hub"],
    strip: "src/",
  },
  {
    name: "einops",
    repo: "github.com/arogozhnikov/einops (v0.8.0)",
    commit: "fe9d81d577dec5a224d572a5bc7d44ab8bd914eb",
    paths: ["einops"],
    strip: "",
  },
];

/** A packing step that cannot go on, with the reason and, for sizes, the numbers. */
export class GpuPackError extends Error {
  override name = "GpuPackError";
}

async function sh(cmd: string, args: string[], opts: { cwd?: string; stdin?: Uint8Array } = {}) {
  const p = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin) {
    const w = p.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await p.output();
  if (!out.success) {
    throw new GpuPackError(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim().split("\n")[0]}`,
    );
  }
  return out.stdout;
}

/** The git directory of a clone or a bare mirror. */
function gitDir(dir: string): string {
  for (const d of [join(dir, ".git"), join(dir, "repo"), dir]) {
    try {
      if (Deno.statSync(join(d, "HEAD")).isFile || Deno.statSync(join(d, "HEAD")).isSymlink) return d;
    } catch { /* next */ }
  }
  throw new GpuPackError(`${dir}: not a git repository (clone it, see scripts/gpu_pack.ts)`);
}

/**
 * Archives every UPSTREAM_SOURCES entry from `sources/<name>` at its pinned commit into `out` (`out/hallo`,
 * `out/diffusers`, ...) and writes `out/SOURCES.json`. Throws a GpuPackError naming a missing repository or
 * commit.
 */
export async function packUpstream(sources: string, out: string): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  const record: Record<string, { repo: string; commit: string }> = {};
  for (const s of UPSTREAM_SOURCES) {
    const git = gitDir(join(sources, s.name));
    const tar = await sh("git", [`--git-dir=${git}`, "archive", "--format=tar", s.commit, ...s.paths]).catch(
      (e) => {
        throw new GpuPackError(`${s.name}: commit ${s.commit} not in ${git}? (${(e as Error).message})`);
      },
    );
    const tmp = await Deno.makeTempDir({ dir: out, prefix: ".extract-" });
    await sh("tar", ["-x", "-C", tmp], { stdin: tar });
    await Deno.rename(join(tmp, s.strip, s.name), join(out, s.name));
    await Deno.remove(tmp, { recursive: true });
    record[s.name] = { repo: s.repo, commit: s.commit };
  }
  await Deno.writeTextFile(join(out, "SOURCES.json"), JSON.stringify(record, null, 2) + "\n");
}

/** Bytes that a device call sends before any carried path: tracked and untracked-not-ignored files. */
export async function treeBytes(root: string): Promise<number> {
  const list = new TextDecoder().decode(
    await sh("git", ["-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]),
  );
  let total = 0;
  for (const f of new Set(list.split("\0").filter(Boolean))) {
    try {
      const st = Deno.lstatSync(join(root, f));
      if (st.isFile) total += st.size;
    } catch { /* listed but deleted in the working tree */ }
  }
  return total;
}

/** A payload file and its size. */
export interface PayloadFile {
  name: string;
  bytes: number;
}

/** One staging call: the byte ranges of payload files it carries (chunks are concatenated in order there). */
export interface StagingCall {
  chunks: { file: string; chunk: string; offset: number; bytes: number }[];
  bytes: number;
}

/**
 * Splits `payload` over calls so that tree + carried bytes stay under `limit - margin` in each. Throws a
 * GpuPackError with the numbers when the tree alone leaves no room (the call would be refused outright).
 */
export function planCalls(
  tree: number,
  payload: readonly PayloadFile[],
  limit = CALL_LIMIT_BYTES,
  margin = CALL_MARGIN_BYTES,
): StagingCall[] {
  const budget = limit - margin - tree;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (budget < 2 ** 20) {
    throw new GpuPackError(
      `the working tree is ${mib(tree)}: with ${mib(margin)} headroom a ${mib(limit)} call has ${
        mib(Math.max(budget, 0))
      } left for the ${
        mib(payload.reduce((a, p) => a + p.bytes, 0))
      } payload; shrink the tracked tree by at ` +
        `least ${mib(2 ** 20 - budget)} (more for fewer calls) before the check can travel`,
    );
  }
  const calls: StagingCall[] = [];
  let cur: StagingCall = { chunks: [], bytes: 0 };
  for (const p of payload) {
    let offset = 0, n = 0;
    while (offset < p.bytes) {
      if (cur.bytes === budget) {
        calls.push(cur);
        cur = { chunks: [], bytes: 0 };
      }
      const take = Math.min(p.bytes - offset, budget - cur.bytes);
      cur.chunks.push({
        file: p.name,
        chunk: `${p.name}.${String(n++).padStart(3, "0")}`,
        offset,
        bytes: take,
      });
      cur.bytes += take;
      offset += take;
    }
  }
  if (cur.chunks.length) calls.push(cur);
  return calls;
}

/** Writes each call's chunks into `<out>/call-N/` (N from 1) from the payload files in `payloadDir`. */
export async function writeCalls(payloadDir: string, out: string, calls: readonly StagingCall[]) {
  for (const [i, c] of calls.entries()) {
    const dir = join(out, `call-${i + 1}`);
    await Deno.mkdir(dir, { recursive: true });
    for (const ch of c.chunks) {
      const src = await Deno.open(join(payloadDir, ch.file));
      try {
        await src.seek(ch.offset, Deno.SeekMode.Start);
        const buf = new Uint8Array(ch.bytes);
        let got = 0;
        while (got < ch.bytes) {
          const n = await src.read(buf.subarray(got));
          if (n === null) throw new GpuPackError(`${ch.file}: shorter than planned`);
          got += n;
        }
        await Deno.writeFile(join(dir, ch.chunk), buf);
      } finally {
        src.close();
      }
    }
  }
}

/** The device calls, in order: `carry` and `command` of each (the last staging call also unpacks). */
export function commands(out: string, calls: readonly StagingCall[]) {
  const steps = calls.map((_, i) => {
    const dir = `${out}/call-${i + 1}`;
    const last = i === calls.length - 1;
    return {
      carry: [dir],
      command: `bash scripts/gpu_remote.sh stage ${dir}${
        last ? " && bash scripts/gpu_remote.sh unpack" : ""
      }`,
    };
  });
  // two runs of under 10 minutes each: fp32 writes the random weights once, fp16 reuses them
  for (const d of ["fp32", "fp16"]) {
    steps.push({ carry: [], command: `bash scripts/gpu_remote.sh check --dtypes ${d}` });
  }
  return steps;
}

async function xzFile(src: string, dst: string, preset: string) {
  const out = await Deno.open(dst, { write: true, create: true, truncate: true });
  const p = new Deno.Command("xz", { args: [`-${preset}`, "-T0", "-c", src], stdout: "piped" }).spawn();
  await p.stdout.pipeTo(out.writable);
  if (!(await p.status).success) throw new GpuPackError(`xz ${src} failed`);
}

async function tarXz(cwd: string, dst: string, paths: string[], preset: string, exclude: string[] = []) {
  const out = await Deno.open(dst, { write: true, create: true, truncate: true });
  const tar = new Deno.Command("tar", {
    args: ["-c", "-C", cwd, ...exclude.map((e) => `--exclude=${e}`), ...paths],
    stdout: "piped",
  }).spawn();
  const xz = new Deno.Command("xz", { args: [`-${preset}`, "-T0", "-c"], stdin: "piped", stdout: "piped" })
    .spawn();
  await Promise.all([tar.stdout.pipeTo(xz.stdin), xz.stdout.pipeTo(out.writable)]);
  if (!(await tar.status).success || !(await xz.status).success) throw new GpuPackError(`tar ${dst} failed`);
}

/** node_modules entries the check imports (onnxruntime-node for linux-x64, its JS deps) and deno's state file. */
export const NODE_MODULES_PATHS = [
  ".deno/.setup-cache.bin",
  ".deno/.deno.lock",
  "onnxruntime-node",
  "onnxruntime-common",
  ".deno/onnxruntime-node@1.30.0",
  ".deno/onnxruntime-common@1.30.0",
  ".deno/adm-zip@0.6.1",
  ".deno/global-agent@4.1.3",
];
const NODE_MODULES_EXCLUDE = [
  "*/bin/napi-v6/darwin",
  "*/bin/napi-v6/win32",
  "*/bin/napi-v6/linux/arm64",
];

/** Payload files into `dir`: deno.xz, node_modules.tar.xz, upstream.tar.xz and (optionally) libvulkan1. */
export async function packPayload(
  root: string,
  sources: string,
  dir: string,
  opts: { xz?: string; vulkan?: boolean; deno?: string } = {},
): Promise<PayloadFile[]> {
  const preset = opts.xz ?? "9e";
  await Deno.mkdir(dir, { recursive: true });
  const up = join(dir, "upstream");
  await Deno.remove(up, { recursive: true }).catch(() => {});
  await packUpstream(sources, up);
  await tarXz(dir, join(dir, "upstream.tar.xz"), ["upstream"], preset);
  await Deno.remove(up, { recursive: true });
  await tarXz(join(root, "node_modules"), join(dir, "node_modules.tar.xz"), NODE_MODULES_PATHS, preset, [
    ...NODE_MODULES_EXCLUDE,
  ]);
  await xzFile(opts.deno ?? Deno.execPath(), join(dir, "deno.xz"), preset);
  const names = ["upstream.tar.xz", "node_modules.tar.xz", "deno.xz"];
  if (opts.vulkan ?? true) {
    await sh("apt-get", ["download", "libvulkan1"], { cwd: dir });
    const deb = [...Deno.readDirSync(dir)].map((e) => e.name).find((n) => n.startsWith("libvulkan1_"));
    if (!deb) throw new GpuPackError("apt-get download libvulkan1 left no .deb");
    await Deno.rename(join(dir, deb), join(dir, "libvulkan1.deb"));
    names.push("libvulkan1.deb");
  }
  return names.map((name) => ({ name, bytes: Deno.statSync(join(dir, name)).size }));
}

/** sha256 of a file, hex (the manifest lets the machine check each reassembled payload file). */
async function sha256(path: string): Promise<string> {
  const out = new TextDecoder().decode(await sh("sha256sum", [path]));
  return out.split(" ")[0];
}

/**
 * Makes `<out>/` (an existing folder) ignored through the repository's info/exclude: the device tool then
 * sends it only when a call carries it.
 */
export async function ensureIgnored(root: string, out: string) {
  const rel = relative(root, out);
  if (rel.startsWith("..")) return;
  const probe = await new Deno.Command("git", { args: ["-C", root, "check-ignore", "-q", rel] }).output();
  if (probe.success) return;
  const exclude = resolve(
    root,
    new TextDecoder().decode(await sh("git", ["-C", root, "rev-parse", "--git-path", "info/exclude"])).trim(),
  );
  await Deno.mkdir(dirname(exclude), { recursive: true });
  await Deno.writeTextFile(exclude, `/${rel}/\n`, { append: true });
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      sources: { type: "string" },
      out: { type: "string", default: ".gpu" },
      xz: { type: "string", default: "9e" },
      "no-vulkan": { type: "boolean" },
    },
  });
  if (!v.sources) {
    console.error(
      "usage: deno run -A scripts/gpu_pack.ts --sources DIR [--out .gpu] [--xz 9e] [--no-vulkan]",
    );
    Deno.exit(2);
  }
  const root = resolve(new URL("..", import.meta.url).pathname);
  const out = resolve(root, v.out!);
  const payloadDir = join(out, "payload");
  await Deno.mkdir(out, { recursive: true });
  await ensureIgnored(root, out);
  for (const e of Deno.readDirSync(out)) {
    if (e.name.startsWith("call-")) await Deno.remove(join(out, e.name), { recursive: true });
  }
  const payload = await packPayload(root, resolve(v.sources), payloadDir, {
    xz: v.xz,
    vulkan: !v["no-vulkan"],
  });
  const manifest = await Promise.all(
    payload.map(async (p) => ({ ...p, sha256: await sha256(join(payloadDir, p.name)) })),
  );
  const tree = await treeBytes(root);
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  for (const p of payload) console.error(`gpu_pack: ${p.name} ${mib(p.bytes)} MiB`);
  console.error(`gpu_pack: working tree ${mib(tree)} MiB (sent with every call)`);
  const calls = planCalls(tree, payload);
  await writeCalls(payloadDir, out, calls);
  // the manifest travels in the last call: unpack checks every reassembled file against it
  await Deno.writeTextFile(join(out, `call-${calls.length}`, "MANIFEST.json"), JSON.stringify(manifest));
  const steps = commands(relative(root, out), calls);
  await Deno.writeTextFile(join(out, "plan.json"), JSON.stringify({ tree, payload: manifest, calls, steps }));
  const md = steps.map((s, i) =>
    `${i + 1}. carry ${JSON.stringify(s.carry)}${
      i < calls.length ? ` (${mib(tree + calls[i].bytes)} MiB with the tree)` : ""
    }: \`${s.command}\``
  );
  await Deno.writeTextFile(
    join(out, "COMMANDS.md"),
    `# Device calls, back to back (a machine goes back 30 s after a call)\n\nPlanned for a working tree of ` +
      `${mib(tree)} MiB: run gpu_pack again after the tree changes.\n\n${md.join("\n")}\n`,
  );
  console.log(md.join("\n"));
  console.error(`gpu_pack: ${basename(out)}/COMMANDS.md written`);
}
