/**
 * `tiny_models/hallo/net.safetensors`, made from `net.pth` where a test needs it. The reference set keeps only
 * net.pth: the exporter wrote net.safetensors with the same tensors in the same order (its own writer: compact
 * JSON header, `__metadata__` last, padded with spaces to 8 bytes), so the twin rebuilt here is that file byte
 * for byte (NET_SAFETENSORS_SHA256, the sha256 of the file as the exporter wrote it, checks it). Dropping the
 * duplicate keeps the working tree small enough for the GPU check to travel (scripts/gpu_pack.ts).
 */
import { createHash } from "node:crypto";
import { openCheckpoint } from "../../src/weights/checkpoint.ts";

/** sha256 of the exporter's net.safetensors (18,486,856 bytes), removed from tests/reference. */
export const NET_SAFETENSORS_SHA256 = "91118f9edc84204ea644894fe0d09cbdc79e014a282a549fae3330800078381a";
const NOTE = "same tensors as net.pth, written by the harness's own writer";

/** Writes the safetensors twin of the torch checkpoint `pth` to `out`; throws if it is not the recorded file. */
export function writeNetSafetensors(pth: string, out: string): void {
  const refs = [...openCheckpoint(pth).tensors.values()];
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const r of refs) {
    if (r.dtype !== "F32") throw new Error(`${pth}: ${r.name} is ${r.dtype}; the twin holds F32 only`);
    header[r.name] = { dtype: r.dtype, shape: r.shape, data_offsets: [offset, offset + r.length] };
    offset += r.length;
  }
  header.__metadata__ = { note: NOTE };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded + offset).fill(0x20, 8, 8 + padded);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  const file = Deno.openSync(pth);
  try {
    let at = 8 + padded;
    for (const r of refs) {
      file.seekSync(r.offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < r.length) {
        const n = file.readSync(bytes.subarray(at + got, at + r.length));
        if (n === null) throw new Error(`${pth}: ${r.name} runs past the end`);
        got += n;
      }
      at += r.length;
    }
  } finally {
    file.close();
  }
  const sha = createHash("sha256").update(bytes).digest("hex");
  if (sha !== NET_SAFETENSORS_SHA256) {
    throw new Error(`${out}: the twin of ${pth} is not the exporter's net.safetensors (sha256 ${sha})`);
  }
  Deno.writeFileSync(out, bytes);
}
