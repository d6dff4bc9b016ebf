/**
 * rearrange / repeat (src/onnx/rearrange.ts) run in ORT on seeded random data against a plain TypeScript einops
 * (index arithmetic over the elementary axes), for the merge, split and permute patterns the UNets use; each
 * pattern builds no more nodes than the hand-written layout change it replaces.
 */
import assert from "node:assert/strict";
import { Graph } from "../src/onnx/graph.ts";
import type { Ctx } from "../src/onnx/layers.ts";
import { type AxisSizes, rearrange, RearrangeError, repeat } from "../src/onnx/rearrange.ts";
import { f32, type F32Tensor } from "../src/tensor.ts";
import { strides } from "./helpers/ref_ops.ts";
import { expectIdentical, prng, randTensor, runTiny } from "./helpers/tensors.ts";

/** Each side's axes as lists of names, parsed independently of the code under test. */
function axesOf(side: string): string[][] {
  return [...side.matchAll(/\(([^)]*)\)|(\w+)/g)].map((m) => m[1] ? m[1].trim().split(/\s+/) : [m[2]]);
}

/** einops by index arithmetic: every output element read from its input position (new axes repeat). */
function refEinops(x: F32Tensor, pattern: string, sizes: AxisSizes): F32Tensor {
  const [lhs, rhs] = pattern.split("->").map(axesOf);
  const inNames = lhs.flat(), outNames = rhs.flat();
  const inStrides = strides(inNames.map((n) => sizes[n]));
  const outSizes = outNames.map((n) => sizes[n]);
  const total = outSizes.reduce((a, b) => a * b, 1);
  const out = new Float32Array(total);
  for (let o = 0; o < total; o++) {
    let rest = o, src = 0;
    for (let i = outNames.length - 1; i >= 0; i--) {
      const k = rest % outSizes[i];
      rest = (rest - k) / outSizes[i];
      const j = inNames.indexOf(outNames[i]);
      if (j >= 0) src += k * inStrides[j];
    }
    out[o] = x.data[src];
  }
  return f32(rhs.map((g) => g.reduce((a, n) => a * sizes[n], 1)), out);
}

const sizes = {
  b: 2,
  c: 3,
  f: 4,
  h: 2,
  w: 3,
  d: 6,
  d1: 2,
  d2: 3,
  s: 3,
  l: 5,
  n: 5,
  bs: 2,
  margin: 3,
  dim: 4,
};

/** Pattern, the nodes it must build, and where it comes from upstream. */
const CASES: { pattern: string; ops: string[]; kind: string }[] = [
  { pattern: "b c f h w -> (b f) c h w", ops: ["Transpose", "Reshape"], kind: "merge" },
  { pattern: "(b f) c h w -> b c f h w", ops: ["Reshape", "Transpose"], kind: "split" },
  { pattern: "b f (d1 d2) c -> b f c d1 d2", ops: ["Transpose", "Reshape"], kind: "permute + split" },
  { pattern: "(b f) d c -> (b d) f c", ops: ["Reshape", "Transpose", "Reshape"], kind: "split + merge" },
  { pattern: "(b d) f c -> (b f) d c", ops: ["Reshape", "Transpose", "Reshape"], kind: "split + merge" },
  { pattern: "bs f margin dim -> (bs f) margin dim", ops: ["Reshape"], kind: "merge, no permute" },
  { pattern: "(b s) l c -> b s l c", ops: ["Reshape"], kind: "split, no permute" },
  { pattern: "b c h w -> b h w c", ops: ["Transpose"], kind: "permute" },
];

function inputShape(pattern: string): number[] {
  return axesOf(pattern.split("->")[0]).map((g) => g.reduce((a, n) => a * sizes[n as keyof typeof sizes], 1));
}

function opsOf(g: Graph): string[] {
  return g.nodes.map((n) => n.opType).filter((t) => t !== "Identity");
}

Deno.test("rearrange equals einops on random data for merge, split and permute patterns, with the fewest nodes", async () => {
  const rand = prng(7);
  const feeds: Record<string, F32Tensor> = {};
  CASES.forEach((k, i) => feeds[`x${i}`] = randTensor(rand, inputShape(k.pattern)));
  const { outputs } = await runTiny({}, feeds, (c, ins) => {
    const out: Record<string, string> = {};
    CASES.forEach((k, i) => out[`y${i}`] = rearrange(c, `r${i}`, ins[`x${i}`], k.pattern, sizes));
    return out;
  });
  CASES.forEach((k, i) => {
    expectIdentical(`${k.kind}: ${k.pattern}`, outputs[`y${i}`], refEinops(feeds[`x${i}`], k.pattern, sizes));
  });
  for (const k of CASES) {
    const g = new Graph("count");
    const c: Ctx = { g, w: { get: () => assert.fail(), has: () => false }, prefix: "", attention: "fused" };
    rearrange(c, "r", g.input("x", inputShape(k.pattern)), k.pattern, sizes);
    assert.deepEqual(opsOf(g), k.ops, k.pattern);
  }
});

Deno.test("repeat adds axes as einops does (Transformer3DModel's context over frames)", async () => {
  const rand = prng(8);
  const patterns = ["b n c -> (b f) n c", "b n c -> b f n c", "b n c -> (f b) n c"];
  const feeds: Record<string, F32Tensor> = {};
  patterns.forEach((_, i) => feeds[`x${i}`] = randTensor(rand, [sizes.b, sizes.n, sizes.c]));
  const { outputs, graph } = await runTiny({}, feeds, (c, ins) => {
    const out: Record<string, string> = {};
    patterns.forEach((p, i) => out[`y${i}`] = repeat(c, `r${i}`, ins[`x${i}`], p, sizes));
    return out;
  });
  patterns.forEach((p, i) => expectIdentical(p, outputs[`y${i}`], refEinops(feeds[`x${i}`], p, sizes)));
  assert.deepEqual(opsOf(graph).slice(0, 3), ["Unsqueeze", "Expand", "Reshape"]);
});

Deno.test("a pattern that changes nothing returns its input, and bad patterns are one-line errors", () => {
  const g = new Graph("errors");
  const c: Ctx = { g, w: { get: () => assert.fail(), has: () => false }, prefix: "", attention: "fused" };
  const x = g.input("x", [2, 3]);
  assert.equal(rearrange(c, "r", x, "a b -> a b", { a: 2, b: 3 }), x);
  assert.equal(g.nodes.length, 0);
  const bad: [string, AxisSizes, RegExp][] = [
    ["a b -> a c", { a: 2, b: 3, c: 3 }, /same axes/],
    ["a b -> (a b", { a: 2, b: 3 }, /unbalanced '\('/],
    ["a b) -> a b", { a: 2, b: 3 }, /unbalanced '\)'/],
    ["((a b)) -> a b", { a: 2, b: 3 }, /nested/],
    ["a a -> a", { a: 2 }, /appears twice/],
    ["a b -> b a", { a: 2 }, /axis 'b' needs a positive integer size/],
    ["a b", { a: 2, b: 3 }, /expected 'input -> output'/],
    ["a 2 -> a", { a: 2 }, /unexpected '2'/],
  ];
  for (const [p, s, re] of bad) {
    assert.throws(
      () => rearrange(c, "r", x, p, s),
      (e) => e instanceof RearrangeError && re.test(String(e)),
      p,
    );
  }
  assert.throws(() => repeat(c, "r", x, "a b -> b a f", { a: 2, b: 3, f: 2 }), /keeps every input axis/);
  assert.throws(() => repeat(c, "r", x, "a b -> a b", { a: 2, b: 3 }), /adds no axis/);
  assert.throws(() => repeat(c, "r", x, "(a b) -> a b f", { a: 2, b: 3, f: 2 }), /no input groups/);
});
