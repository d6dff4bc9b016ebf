import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { openCheckpoint, parseCheckpoint } from "../src/weights/checkpoint.ts";
import { MemorySource } from "../src/weights/source.ts";
import { pickleGlobal, unpickle } from "../src/weights/unpickle.ts";
import {
  expectCheckpointError,
  f32Bytes,
  makePth,
  op,
  pickle,
  stateDictPickle,
  tempFolder,
  writeTemp,
} from "./helpers/weights_fixtures.ts";

/** Parses `pkl` as the data.pkl of a torch.save zip, through the real reader and its allowlist. */
function parsePkl(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}) {
  return parseCheckpoint(new MemorySource("/tmp/hostile.pth", makePth(pkl, storages)));
}

const HOSTILE: [string, string][] = [
  ["os", "system"],
  ["builtins", "eval"],
  ["subprocess", "Popen"],
  ["posix", "system"],
  ["nt", "system"],
  ["builtins", "exec"],
  ["torch", "load"],
];

Deno.test("unpickle: GLOBAL + REDUCE of dangerous callables is refused and nothing runs", () => {
  const dir = tempFolder();
  for (const [module, name] of HOSTILE) {
    const marker = `${dir}/pwned-${module}-${name}`;
    const pkl = pickle(
      op.proto(2),
      op.global(module, name),
      op.str(`touch ${marker}`),
      op.tuple1,
      op.reduce,
      op.stop,
    );
    const path = writeTemp("evil.pth", makePth(pkl, {}));
    const e = expectCheckpointError(
      () => openCheckpoint(path),
      new RegExp(`global '${module}\\.${name}' is not allowed`),
    );
    assert.match(e.message, /evil\.pth: archive\/data\.pkl: .*GLOBAL \(0x63\) at byte 2\)$/);
    assert.equal(existsSync(marker), false);
  }
});

Deno.test("unpickle: STACK_GLOBAL (protocol 4) of dangerous callables is refused", () => {
  for (const [module, name] of HOSTILE) {
    const pkl = pickle(
      op.proto(4),
      op.frame(40),
      op.shortStr(module),
      op.memoize,
      op.shortStr(name),
      op.memoize,
      op.stackGlobal,
      op.memoize,
      op.shortStr("id"),
      op.tuple1,
      op.reduce,
      op.stop,
    );
    expectCheckpointError(
      () => parsePkl(pkl),
      new RegExp(`global '${module}\\.${name}' is not allowed.*STACK_GLOBAL`),
    );
  }
});

Deno.test("unpickle: a hostile call hidden inside a valid state dict is refused", () => {
  const good = stateDictPickle(
    [{ name: "w", storage: "FloatStorage", key: "0", storageNumel: 1, size: [1] }],
    {},
  );
  // ... {"w": tensor, "x": os.system("id")} ...
  const tail = pickle(
    op.str("x"),
    op.global("os", "system"),
    op.str("id"),
    op.tuple1,
    op.reduce,
    op.setitem,
    op.stop,
  );
  const pkl = new Uint8Array([...good.subarray(0, good.length - 1), ...tail]);
  expectCheckpointError(() => parsePkl(pkl, { "0": f32Bytes([1]) }), /global 'os\.system' is not allowed/);
  assert.equal(parsePkl(good, { "0": f32Bytes([1]) }).tensors.size, 1);
});

Deno.test("unpickle: opcodes outside the state-dict subset are refused by name", () => {
  const cases: [number[][], RegExp][] = [
    [
      [op.proto(2), [0x69, ...new TextEncoder().encode("os\nsystem\n")], op.stop],
      /opcode not allowed \(INST \(0x69\)/,
    ],
    [[op.proto(2), op.mark, op.global("collections", "OrderedDict"), [0x6f], op.stop], /OBJ \(0x6f\)/],
    [
      [op.proto(2), op.global("collections", "OrderedDict"), op.emptyTuple, [0x81], op.stop],
      /NEWOBJ \(0x81\)/,
    ],
    [[op.proto(2), [0x82, 1], op.stop], /EXT1 \(0x82\)/],
    [[op.proto(2), [0x50, ...new TextEncoder().encode("x\n")], op.stop], /PERSID \(0x50\)/],
    [[op.proto(2), [0xff], op.stop], /unknown opcode \(0xff\)/],
    [[op.proto(9)], /unsupported pickle protocol 9/],
  ];
  for (const [parts, pattern] of cases) expectCheckpointError(() => parsePkl(pickle(...parts)), pattern);
});

Deno.test("unpickle: calling or building on what is not allowed is refused", () => {
  const cases: [number[][], RegExp][] = [
    [
      [op.proto(2), op.global("torch", "FloatStorage"), op.emptyTuple, op.reduce, op.stop],
      /global 'torch\.FloatStorage' cannot be called/,
    ],
    [[op.proto(2), op.str("x"), op.emptyTuple, op.reduce, op.stop], /a string cannot be called/],
    [[op.proto(2), op.emptyDict, op.emptyDict, op.build, op.stop], /cannot set state on a dict/],
    [
      [op.proto(2), op.global("collections", "OrderedDict"), op.str("a"), op.tuple1, op.reduce, op.stop],
      /OrderedDict called with arguments/,
    ],
    [
      [op.proto(2), op.global("torch._utils", "_rebuild_tensor_v2"), op.emptyTuple, op.reduce, op.stop],
      /without a storage/,
    ],
    [[op.proto(2), op.str("x"), op.binpersid, op.stop], /unknown persistent id/],
    [[op.proto(2), op.emptyTuple, op.int(1), op.append, op.stop], /target is not a list/],
  ];
  for (const [parts, pattern] of cases) expectCheckpointError(() => parsePkl(pickle(...parts)), pattern);
});

Deno.test("unpickle: malformed pickles are clean errors", () => {
  const cases: [number[][], RegExp][] = [
    [[op.proto(2), op.emptyDict], /truncated pickle: no STOP/],
    [[op.proto(2), op.setitem, op.stop], /stack underflow/],
    [[op.proto(2), op.get(7), op.stop], /memo entry 7 is missing/],
    [[op.proto(2), op.tuple, op.stop], /no MARK on the stack/],
    [[op.proto(2), [0x58, 0xff, 0xff, 0xff, 0x7f], op.stop], /truncated pickle/],
    [[op.proto(2), [0x8c, 2, 0xc3, 0x28], op.stop], /not valid UTF-8/],
    [[op.proto(2), [0x63, 0x61, 0x62], op.stop], /unterminated or overlong GLOBAL name/],
    [[op.proto(2), op.long1(new Array(40).fill(1)), op.stop], /integer of 40 bytes is too wide/],
    [[op.proto(2), op.emptyList, op.stop], /does not hold a dict/],
    // a dict that contains itself
    [
      [op.proto(2), op.emptyDict, op.put(0), op.str("a"), op.get(0), op.setitem, op.stop],
      /cyclic or too deep/,
    ],
  ];
  for (const [parts, pattern] of cases) expectCheckpointError(() => parsePkl(pickle(...parts)), pattern);
});

Deno.test("unpickle: the state-dict subset decodes to Maps, arrays and numbers", () => {
  const value = unpickle(
    pickle(
      op.proto(2),
      op.emptyDict,
      op.str("ints"),
      op.mark,
      op.int(7),
      op.int(300),
      op.int(-2),
      op.long1([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
      op.long1([0xfe]),
      op.tuple,
      op.setitem,
      op.str("list"),
      op.emptyList,
      op.newTrue,
      op.append,
      op.none,
      op.append,
      op.setitem,
      op.str("float"),
      [0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
      op.setitem,
      op.stop,
    ),
    { file: "x", where: "y", globals: new Map(), persistentLoad: () => null },
  ) as Map<string, unknown>;
  assert.deepEqual(value.get("ints"), [7, 300, -2, 2n ** 63n - 1n, -2]);
  assert.deepEqual(value.get("list"), [true, null]);
  assert.equal(value.get("float"), 1.5);
});

Deno.test("unpickle: globals are matched by module and name exactly, and only pickleGlobal values count", () => {
  const globals = new Map([["a.b.c", pickleGlobal("a.b", "c", () => 42)]]);
  const run = (module: string, name: string) =>
    unpickle(pickle(op.proto(2), op.global(module, name), op.emptyTuple, op.reduce, op.stop), {
      file: "f",
      where: "w",
      globals,
      persistentLoad: () => null,
    });
  assert.equal(run("a.b", "c"), 42);
  expectCheckpointError(() => run("a", "b.c"), /global 'a\.b\.c' is not allowed/);
  // a forged entry that was not made by pickleGlobal is never treated as a global
  const forged = new Map([["os.system", { module: "os", name: "system", call: () => "ran" }]]);
  expectCheckpointError(
    () =>
      unpickle(pickle(op.proto(2), op.global("os", "system"), op.emptyTuple, op.reduce, op.stop), {
        file: "f",
        where: "w",
        globals: forged as never,
        persistentLoad: () => null,
      }),
    /not allowed/,
  );
});

Deno.test("pth: nested dicts flatten with '.', OrderedDict _metadata is tolerated", () => {
  const inner = stateDictPickle([{
    name: "w",
    storage: "FloatStorage",
    key: "0",
    storageNumel: 2,
    size: [2],
  }]);
  // {"state_dict": <inner>, "epoch": 3}
  const pkl = pickle(
    op.proto(2),
    op.emptyDict,
    op.str("epoch"),
    op.int(3),
    op.setitem,
    op.str("state_dict"),
    [...inner.subarray(2, inner.length - 1)],
    op.setitem,
    op.stop,
  );
  const c = parsePkl(pkl, { "0": f32Bytes([1, 2]) });
  assert.deepEqual([...c.tensors.keys()], ["state_dict.w"]);
});
