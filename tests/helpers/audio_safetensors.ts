/** A tiny safetensors reader for the audio tests (float32/int64/int32 only); src/weights has the real one. */

/** One tensor read from a safetensors file. */
export interface StTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

/** Reads every tensor of a safetensors file into memory. */
export function readSafetensors(path: string): Record<string, StTensor> {
  const bytes = Deno.readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLen;
  const out: Record<string, StTensor> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const raw = bytes.slice(base + t.data_offsets[0], base + t.data_offsets[1]);
    const data = t.dtype === "F32"
      ? new Float32Array(raw.buffer)
      : t.dtype === "I32"
      ? new Int32Array(raw.buffer)
      : t.dtype === "I64"
      ? new BigInt64Array(raw.buffer)
      : undefined;
    if (!data) {
      throw new Error(`${path}: tensor ${name} has dtype ${t.dtype}, which this test helper does not read`);
    }
    out[name] = { dtype: t.dtype, shape: t.shape, data };
  }
  return out;
}
