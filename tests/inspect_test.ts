import assert from "node:assert/strict";
import { type InspectReport, run } from "../src/cli/inspect.ts";
import { makePth, op, pickle, writeTemp } from "./helpers/weights_fixtures.ts";
import { tinyModel } from "./helpers/shared.ts";

/** Runs the inspect command in-process, capturing what it prints. */
async function inspect(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await run(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

function readAt(file: Deno.FsFile, offset: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  file.seekSync(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) done += file.readSync(buf.subarray(done)) ?? Infinity;
  return buf;
}

Deno.test("inspect: net.pth and net.safetensors list the same 1,688 tensors, shapes and bytes", async () => {
  const a = await inspect(tinyModel("hallo", "net.pth"), "--json");
  const b = await inspect(tinyModel("hallo", "net.safetensors"), "--json");
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
  const ra = JSON.parse(a.out) as InspectReport;
  const rb = JSON.parse(b.out) as InspectReport;
  assert.equal(ra.format, "pth");
  assert.equal(rb.format, "safetensors");
  assert.equal(ra.tensors.length, 1688);
  assert.equal(ra.total_parameters, rb.total_parameters);
  const byName = new Map(rb.tensors.map((t) => [t.name, t]));
  const fa = Deno.openSync(ra.file);
  const fb = Deno.openSync(rb.file);
  try {
    for (const t of ra.tensors) {
      const u = byName.get(t.name);
      assert.ok(u, `${t.name} missing from net.safetensors`);
      assert.deepEqual(t.shape, u.shape, t.name);
      assert.equal(t.dtype, u.dtype, t.name);
      assert.equal(t.length, u.length, t.name);
      // the bytes at the reported offsets of the two files are identical
      assert.deepEqual(readAt(fa, t.offset, t.length), readAt(fb, u.offset, u.length), t.name);
    }
  } finally {
    fa.close();
    fb.close();
  }
  assert.equal(byName.size, ra.tensors.length);
});

Deno.test("inspect: the table lists key, dtype, shape, offset and the parameter total", async () => {
  const { code, out } = await inspect(tinyModel("hallo", "net.pth"));
  assert.equal(code, 0);
  const lines = out.split("\n");
  assert.match(lines[0], /^key\s+dtype\s+shape\s+offset$/);
  assert.match(lines[1], /^reference_unet\.conv_in\.weight\s+F32\s+\[32, 4, 3, 3\]\s+\d+$/);
  assert.equal(lines.length, 1688 + 2);
  assert.match(lines.at(-1)!, /^1688 tensors, 4,561,500 parameters, 18,246,000 bytes \(pth: /);
});

Deno.test("inspect: a bad or hostile file exits 1 with a one-line error; usage errors exit 2", async () => {
  const evil = writeTemp(
    "evil.pth",
    makePth(pickle(op.proto(2), op.global("os", "system"), op.str("id"), op.tuple1, op.reduce, op.stop), {}),
  );
  for (
    const path of [
      evil,
      "/nonexistent.safetensors",
      writeTemp("junk.safetensors", new Uint8Array(100).fill(7)),
    ]
  ) {
    const r = await inspect(path);
    assert.equal(r.code, 1);
    assert.equal(r.out, "");
    assert.equal(r.err.split("\n").length, 1, r.err);
    assert.match(r.err, /^hallo inspect: \/.*: /);
    assert.doesNotMatch(r.err, /\bat .*\.ts:\d+/);
  }
  assert.match((await inspect(evil)).err, /global 'os\.system' is not allowed/);
  assert.equal((await inspect()).code, 2);
  assert.equal((await inspect("a", "b")).code, 2);
});

Deno.test("inspect: through the CLI entry, stderr is one line and the exit code 1", async () => {
  const evil = writeTemp(
    "evil.pth",
    makePth(
      pickle(op.proto(2), op.global("builtins", "eval"), op.str("1"), op.tuple1, op.reduce, op.stop),
      {},
    ),
  );
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../src/cli/main.ts", import.meta.url).pathname, "inspect", evil],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(p.stderr).trim();
  assert.equal(p.code, 1);
  assert.equal(err.split("\n").length, 1, err);
  assert.match(
    err,
    /^hallo inspect: .*evil\.pth: archive\/data\.pkl: global 'builtins\.eval' is not allowed/,
  );
});
