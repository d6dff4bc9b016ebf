/**
 * The reference set keeps Hallo's tiny checkpoint once, as net.pth; tests that read net.safetensors get a twin
 * rebuilt from it (tests/helpers/net_safetensors.ts). The twin is the exporter's file byte for byte, so the
 * tests comparing the two formats still compare the exporter's two files.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { NET_SAFETENSORS_SHA256, writeNetSafetensors } from "./helpers/net_safetensors.ts";
import { REFERENCE } from "./helpers/shared.ts";

Deno.test("net.safetensors rebuilt from net.pth is the exporter's file byte for byte", () => {
  const dir = Deno.makeTempDirSync({ prefix: "hallo-twin-" });
  try {
    const out = join(dir, "net.safetensors");
    writeNetSafetensors(join(REFERENCE, "tiny_models", "hallo", "net.pth"), out);
    const bytes = Deno.readFileSync(out);
    assert.equal(bytes.length, 18486856);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), NET_SAFETENSORS_SHA256);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a net.pth whose tensors differ from the exporter's gives no twin", () => {
  const dir = Deno.makeTempDirSync({ prefix: "hallo-twin-" });
  try {
    const pth = join(dir, "net.pth");
    const bytes = Deno.readFileSync(join(REFERENCE, "tiny_models", "hallo", "net.pth"));
    // flip one byte near the end of the zip's data region (a tensor's bytes, not its structure)
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    Deno.writeFileSync(pth, bytes);
    assert.throws(() => writeNetSafetensors(pth, join(dir, "net.safetensors")), /not the exporter's/);
    assert.throws(() => Deno.statSync(join(dir, "net.safetensors")), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
