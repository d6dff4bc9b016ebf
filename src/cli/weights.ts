/**
 * `deno task hallo weights download|check|clean`: fetch Hallo's pretrained_models from the Hugging Face hub,
 * report what is there and which stages it enables, remove leftovers of failed downloads.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { type DownloadEvent, downloadWeights } from "../weights/download.ts";
import { formatBytes } from "../util/bytes.ts";
import { downloadCommand, resolveWeightsDir } from "../weights/locate.ts";
import {
  MANIFEST,
  ManifestError,
  parseStages,
  selectFiles,
  STAGES,
  type WeightsFile,
} from "../weights/manifest.ts";
import { readTinyConfigs } from "../tiny/configs.ts";
import { checkWeights, enabledStages, type FileCheck, missingFor } from "../weights/verify.ts";
import { findCompiledCaches, removeCaches } from "../weights/clean_caches.ts";

const USAGE = `usage: deno task hallo weights <download|check|clean> [options]

  download [--dir DIR] [--only NAME[,NAME]] [--all]
      fetch the files of weights/manifest.json from $HF_ENDPOINT (default https://huggingface.co),
      with $HF_TOKEN if set; interrupted downloads resume. Default: required and optional files;
      --all adds the ones this port never reads; --only picks files by name or path. A transfer
      that receives nothing for $HALLO_DOWNLOAD_STALL_S seconds (default 60) stops; rerun to resume.
  check [--dir DIR] [--stages image,audio,networks] [--deep]
      table of every manifest file (present, valid, size, stage); exit 1 when a required file of the
      requested stages (default: all) is missing or invalid. Valid means the stages will load it: each
      file is opened with the stages' readers and config parsers (ONNX models in an ORT session), and
      every network's graph is built over the checkpoints (keys and shapes). --deep also reads every tensor once and compares the size and
      sha256 weights/manifest.json records (only a hash finds bytes altered inside tensor data).
  clean [--dir DIR] [--all]
      delete *.partial and *.invalid leftovers of failed downloads, and the compiled caches of DIR
      (.hallo-cache/ folders: graphs, fp16 weights and ORT-optimised models, and their per-user copies
      for read-only folders);
      --all also empties the whole per-user cache ($XDG_CACHE_HOME/hallo-lab) of every weights folder.

DIR defaults to --weights, then $HALLO_WEIGHTS, then weights/pretrained_models.`;

const enc = new TextEncoder();

function err(line: string): void {
  Deno.stderr.writeSync(enc.encode(`${line}\n`));
}

/** Draws a per-file and a total bar on a terminal; prints plain lines when stderr is a pipe or file. */
class Progress {
  readonly tty = Deno.stderr.isTerminal();
  #lines = 0;
  #last = 0;
  #total = 0;
  #totalDone = 0;
  #fileCount = 0;
  #fileIndex = 0;
  #file: { name: string; size: number; bytes: number; base: number; t0: number; nextPct: number } | null =
    null;

  handle(e: DownloadEvent): void {
    switch (e.type) {
      case "present":
        this.#print(`present     ${e.file.path} (${e.detail})`);
        break;
      case "set-aside":
        this.#print(
          `invalid     ${e.file.path}: ${e.problem}; kept aside as ${e.invalidPath}, downloading again`,
        );
        break;
      case "plan":
        this.#total = e.totalBytes;
        this.#totalDone = e.files.reduce((a, f) => a + f.offset, 0);
        this.#fileCount = e.files.length;
        this.#print(`to download ${e.files.length} file(s), ${formatBytes(e.totalBytes)} in all`);
        break;
      case "start":
        this.#fileIndex++;
        this.#file = {
          name: e.file.path,
          size: e.size,
          bytes: e.offset,
          base: e.offset,
          t0: Date.now(),
          nextPct: 10,
        };
        if (!this.tty) {
          const resume = e.offset ? `, resuming at ${formatBytes(e.offset)}` : "";
          this.#print(`downloading ${e.file.path} (${formatBytes(e.size)}${resume})`);
        }
        this.#draw(true);
        break;
      case "progress":
        if (this.#file) {
          this.#totalDone += e.bytes - this.#file.bytes;
          this.#file.bytes = e.bytes;
          if (!this.tty && e.size > 0 && (100 * e.bytes) / e.size >= this.#file.nextPct) {
            this.#print(`  ${e.file.path}: ${Math.floor((100 * e.bytes) / e.size)}%`);
            this.#file.nextPct = Math.floor((100 * e.bytes) / e.size / 10) * 10 + 10;
          }
        }
        this.#draw(false);
        break;
      case "done": {
        const secs = this.#file ? (Date.now() - this.#file.t0) / 1000 : 0;
        this.#file = null;
        this.#print(
          `downloaded  ${e.file.path} (${formatBytes(e.size)} in ${secs.toFixed(1)} s; ${e.detail})`,
        );
        break;
      }
      case "error":
        this.#print(`error       ${e.error.message}`);
        break;
    }
  }

  #bar(frac: number, width = 24): string {
    const n = Math.max(0, Math.min(width, Math.round(frac * width)));
    return `[${"#".repeat(n)}${".".repeat(width - n)}] ${(frac * 100).toFixed(1).padStart(5)}%`;
  }

  #draw(force: boolean): void {
    if (!this.tty || !this.#file) return;
    const now = Date.now();
    if (!force && now - this.#last < 100) return;
    this.#last = now;
    const f = this.#file;
    const rate = (f.bytes - f.base) / Math.max(0.001, (now - f.t0) / 1000);
    const name = f.name.length > 40 ? `...${f.name.slice(-37)}` : f.name.padEnd(40);
    const rows = [
      `${name} ${this.#bar(f.size ? f.bytes / f.size : 1)} ${formatBytes(f.bytes)}/${formatBytes(f.size)} ${
        formatBytes(Math.round(rate))
      }/s`,
      `${`total (file ${this.#fileIndex}/${this.#fileCount})`.padEnd(40)} ${
        this.#bar(this.#total ? this.#totalDone / this.#total : 1)
      } ${formatBytes(this.#totalDone)}/${formatBytes(this.#total)}`,
    ];
    Deno.stderr.writeSync(enc.encode(this.#clear() + rows.map((r) => `${r}\x1b[K\n`).join("")));
    this.#lines = rows.length;
  }

  #clear(): string {
    const s = this.#lines ? `\x1b[${this.#lines}A\x1b[J` : "";
    this.#lines = 0;
    return s;
  }

  /** Prints a line above the bars (or as is without a terminal). */
  #print(line: string): void {
    if (this.tty) Deno.stderr.writeSync(enc.encode(this.#clear()));
    err(line);
    this.#draw(true);
  }

  finish(): void {
    if (this.tty) Deno.stderr.writeSync(enc.encode(this.#clear()));
  }
}

async function download(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: "string" },
      weights: { type: "string" },
      only: { type: "string" },
      all: { type: "boolean", default: false },
    },
  });
  const dir = resolveWeightsDir(values.dir ?? values.weights);
  const files: WeightsFile[] = values.only
    ? selectFiles(values.only)
    : MANIFEST.files.filter((f) => values.all || f.status !== "unused");
  err(`weights folder: ${dir}`);
  const progress = new Progress();
  const report = await downloadWeights({ dir, files, onEvent: (e) => progress.handle(e) });
  progress.finish();
  const n = report.failed.length;
  err(
    `${report.downloaded.length} downloaded, ${report.present.length} already present, ${n} failed${
      report.aborted ? " (stopped early)" : ""
    }`,
  );
  return n ? 1 : 0;
}

function statusCell(f: WeightsFile): string {
  if (f.status === "required") return f.stage;
  if (f.status === "optional") return `${f.stage} (optional)`;
  return "- (unused)";
}

function table(checks: readonly FileCheck[]): string {
  const head = ["file", "present", "valid", "size", "enables", "check"];
  const rows = checks.map((c) => [
    c.file.path,
    c.present ? "yes" : "no",
    c.present ? (c.valid ? "yes" : "NO") : "-",
    c.present ? formatBytes(c.size) : "-",
    statusCell(c.file),
    c.detail,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((x, i) => (i === r.length - 1 ? x : x.padEnd(widths[i]))).join("  ");
  return [fmt(head), fmt(widths.map((w) => "-".repeat(w))), ...rows.map(fmt)].join("\n");
}

async function check(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: "string" },
      weights: { type: "string" },
      stages: { type: "string" },
      deep: { type: "boolean", default: false },
    },
  });
  const dir = resolveWeightsDir(values.dir ?? values.weights);
  const stages = values.stages ? parseStages(values.stages) : [...STAGES];
  let configs;
  try {
    configs = readTinyConfigs(dir);
  } catch (e) {
    console.error(`weights check: ${(e as Error).message.split("\n")[0]}`);
    return 1;
  }
  // A tiny random set is checked with the sizes its tiny.json records, as animate loads it.
  const checks = await checkWeights(dir, MANIFEST, { deep: values.deep, configs });
  console.log(`weights folder: ${dir}\n`);
  console.log(table(checks));
  const enabled = enabledStages(checks);
  console.log(`\nstages enabled: ${enabled.length ? enabled.join(", ") : "none"}`);
  const missing = missingFor(checks, stages);
  if (!missing.length) {
    console.log(`all required files present for: ${stages.join(", ")}`);
    return 0;
  }
  for (const c of missing) {
    err(
      `missing for stage '${c.file.stage}': ${c.file.path} (${
        c.present ? `invalid: ${c.detail}` : "missing"
      })`,
    );
  }
  err(`fetch with: ${downloadCommand(missing.map((c) => c.file.name), dir)}`);
  return 1;
}

async function clean(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: "string" },
      weights: { type: "string" },
      all: { type: "boolean", default: false },
    },
  });
  const dir = resolveWeightsDir(values.dir ?? values.weights);
  let removed = 0;
  for (const f of MANIFEST.files) {
    const base = join(dir, f.path);
    for (const p of [`${base}.partial`, `${base}.partial.etag`, `${base}.invalid`]) {
      try {
        await Deno.remove(p);
        removed++;
        err(`removed ${p}`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
  }
  err(`${removed} leftover file(s) removed from ${dir}`);
  const caches = findCompiledCaches(dir, { all: values.all });
  let freed = 0;
  for (const c of caches) {
    freed += removeCaches([c]);
    err(`removed ${c.path} (${c.where} cache, ${formatBytes(c.bytes)})`);
  }
  err(`${caches.length} compiled cache folder(s) removed, ${formatBytes(freed)} freed`);
  return 0;
}

const SUBCOMMANDS: Record<string, (args: string[]) => Promise<number>> = { download, check, clean };

/** Entry point of `deno task hallo weights ...`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === "--help" || sub === "-h" || rest.includes("--help") || rest.includes("-h")) {
    console.log(USAGE);
    return sub ? 0 : 2;
  }
  const cmd = SUBCOMMANDS[sub];
  if (!cmd) {
    err(`hallo weights: unknown subcommand '${sub}'\n${USAGE}`);
    return 2;
  }
  try {
    return await cmd(rest);
  } catch (e) {
    // Bad flags and bad --only/--stages values are user errors: one line, no stack.
    const code = (e as { code?: string }).code;
    if (e instanceof ManifestError || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))) {
      err(`hallo weights ${sub}: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
