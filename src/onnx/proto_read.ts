/**
 * Reading just enough of an encoded ONNX model without decoding it: the protobuf wire walk and the external
 * data files its tensors point at (what a cache of anything derived from the model must be keyed by).
 */

/** Reads a protobuf varint at `pos`; returns [value, next position] (values past 2^53 lose precision). */
export function readVarint(b: Uint8Array, pos: number): [number, number] {
  let v = 0, mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= b.length) throw new RangeError("varint runs past the end");
    const byte = b[pos++];
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return [v, pos];
    mul *= 128;
  }
  throw new RangeError("varint longer than 10 bytes");
}

/**
 * Calls `visit(field, body)` for each length-delimited field of a protobuf message, in order; stops when it
 * returns true.
 */
export function eachBytesField(
  b: Uint8Array,
  visit: (field: number, body: Uint8Array) => boolean | void,
): void {
  let pos = 0;
  while (pos < b.length) {
    const [key, p] = readVarint(b, pos);
    const field = Math.floor(key / 8), wire = key % 8;
    if (wire === 0) pos = readVarint(b, p)[1];
    else if (wire === 1) pos = p + 8;
    else if (wire === 5) pos = p + 4;
    else if (wire === 2) {
      const [len, start] = readVarint(b, p);
      if (start + len > b.length) throw new RangeError(`protobuf field ${field} runs past the end`);
      if (visit(field, b.subarray(start, start + len)) === true) return;
      pos = start + len;
    } else throw new RangeError(`unsupported protobuf wire type ${wire}`);
  }
  if (pos > b.length) throw new RangeError("protobuf message runs past the end");
}

// Field numbers of onnx.proto used below.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1, GRAPH_INITIALIZER = 5, GRAPH_SPARSE_INITIALIZER = 15;
const NODE_ATTRIBUTE = 5;
const ATTR_T = 5,
  ATTR_G = 6,
  ATTR_TENSORS = 10,
  ATTR_GRAPHS = 11,
  ATTR_SPARSE_TENSOR = 22,
  ATTR_SPARSE_TENSORS = 23;
const SPARSE_VALUES = 1, SPARSE_INDICES = 2;
const TENSOR_EXTERNAL_DATA = 13;
const ENTRY_KEY = 1, ENTRY_VALUE = 2;

/** What the external-data tensors of a model point at. */
export interface ExternalData {
  /** The distinct `location`s, in first-seen order. */
  locations: string[];
  /** Sum of the tensors' `length` entries (bytes read from those files). */
  bytes: number;
}

/**
 * The external data of every tensor of an encoded ModelProto (initializers, sparse initializers and tensor
 * attributes, subgraphs included). Throws RangeError on malformed bytes.
 */
export function externalData(model: Uint8Array): ExternalData {
  const text = new TextDecoder();
  const found = new Set<string>();
  let bytes = 0;
  const tensor = (t: Uint8Array) =>
    eachBytesField(t, (f, entry) => {
      if (f !== TENSOR_EXTERNAL_DATA) return;
      let key = "", value = "";
      eachBytesField(entry, (ef, s) => {
        if (ef === ENTRY_KEY) key = text.decode(s);
        else if (ef === ENTRY_VALUE) value = text.decode(s);
      });
      if (key === "location") found.add(value);
      else if (key === "length") bytes += Number(value);
    });
  const sparse = (s: Uint8Array) =>
    eachBytesField(s, (f, t) => {
      if (f === SPARSE_VALUES || f === SPARSE_INDICES) tensor(t);
    });
  const graph = (g: Uint8Array): void =>
    eachBytesField(g, (f, body) => {
      if (f === GRAPH_INITIALIZER) tensor(body);
      else if (f === GRAPH_SPARSE_INITIALIZER) sparse(body);
      else if (f === GRAPH_NODE) {
        eachBytesField(body, (nf, attr) => {
          if (nf !== NODE_ATTRIBUTE) return;
          eachBytesField(attr, (af, v) => {
            if (af === ATTR_T || af === ATTR_TENSORS) tensor(v);
            else if (af === ATTR_G || af === ATTR_GRAPHS) graph(v);
            else if (af === ATTR_SPARSE_TENSOR || af === ATTR_SPARSE_TENSORS) sparse(v);
          });
        });
      }
    });
  eachBytesField(model, (f, body) => {
    if (f === MODEL_GRAPH) graph(body);
  });
  return { locations: [...found], bytes };
}
