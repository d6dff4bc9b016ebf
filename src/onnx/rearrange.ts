/**
 * einops' `rearrange` and `repeat` on graph values, so that a layout change reads as upstream writes it:
 * `rearrange(c, path, x, "b c f h w -> (b f) c h w", { b, c, f, h, w })`.
 *
 * A rearrange is at most Reshape (split the input's groups) -> Transpose -> Reshape (merge the output's groups),
 * each left out when it would do nothing. Axes that sit side by side in the same order on both sides, inside one
 * input axis, move as one: `"b f (d1 d2) c -> b f c d1 d2"` is one Transpose and one Reshape. A repeat is
 * Unsqueeze -> Expand -> Reshape. Every axis size is given: graphs are built for fixed shapes.
 */
import type { Value } from "./graph.ts";
import { type Ctx, reshape, transpose, unsqueeze } from "./layers.ts";

/** Size of every named axis of a pattern. */
export type AxisSizes = Readonly<Record<string, number>>;

/** Thrown for a pattern that cannot be parsed or does not fit the sizes given. */
export class RearrangeError extends Error {
  override name = "RearrangeError";
}

/** One side of a pattern: each tensor axis as the list of elementary axes it holds (`(b f)` -> `[b, f]`). */
type Side = string[][];

function parseSide(text: string, pattern: string): Side {
  const axes: Side = [];
  let group: string[] | undefined;
  for (const tok of text.match(/\(|\)|[A-Za-z_][A-Za-z0-9_]*|\S/g) ?? []) {
    if (tok === "(") {
      if (group) throw new RearrangeError(`'${pattern}': nested parentheses`);
      group = [];
    } else if (tok === ")") {
      if (!group) throw new RearrangeError(`'${pattern}': unbalanced ')'`);
      axes.push(group);
      group = undefined;
    } else if (/^[A-Za-z_]/.test(tok)) {
      if (group) group.push(tok);
      else axes.push([tok]);
    } else {
      throw new RearrangeError(`'${pattern}': unexpected '${tok}' (axes are names, groups are '(a b)')`);
    }
  }
  if (group) throw new RearrangeError(`'${pattern}': unbalanced '('`);
  const names = axes.flat();
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new RearrangeError(`'${pattern}': axis '${twice}' appears twice on one side`);
  return axes;
}

function parse(pattern: string): { lhs: Side; rhs: Side } {
  const sides = pattern.split("->");
  if (sides.length !== 2) throw new RearrangeError(`'${pattern}': expected 'input -> output'`);
  return { lhs: parseSide(sides[0], pattern), rhs: parseSide(sides[1], pattern) };
}

function sizeOf(names: readonly string[], sizes: AxisSizes, pattern: string): number {
  let n = 1;
  for (const a of names) {
    const s = sizes[a];
    if (!Number.isInteger(s) || s < 1) {
      throw new RearrangeError(`'${pattern}': axis '${a}' needs a positive integer size, got ${s}`);
    }
    n *= s;
  }
  return n;
}

const sameAxes = (a: Side, b: Side) =>
  a.length === b.length && a.every((g, i) => g.length === b[i].length && g.every((n, j) => n === b[i][j]));

/**
 * einops `rearrange(x, pattern)`: permutes, splits and merges axes. `sizes` gives every axis of the pattern.
 * Returns `x` itself when the pattern changes nothing.
 */
export function rearrange(c: Ctx, path: string, x: Value, pattern: string, sizes: AxisSizes): Value {
  const { lhs, rhs } = parse(pattern);
  const inNames = lhs.flat();
  const outNames = rhs.flat();
  if (inNames.length !== outNames.length || inNames.some((n) => !outNames.includes(n))) {
    throw new RearrangeError(`'${pattern}': both sides must name the same axes (use repeat to add axes)`);
  }
  const shape = (side: Side) => side.map((g) => sizeOf(g, sizes, pattern));
  const rhsShape = shape(rhs);
  // Units: runs of axes inside one input axis that stay adjacent and in order in the output.
  const units: Side = [];
  for (const g of lhs) {
    g.forEach((n, i) => {
      const prev = g[i - 1];
      if (i > 0 && outNames.indexOf(n) === outNames.indexOf(prev) + 1) units[units.length - 1].push(n);
      else units.push([n]);
    });
  }
  const order = units.map((_, i) => i).sort((a, b) =>
    outNames.indexOf(units[a][0]) - outNames.indexOf(units[b][0])
  );
  if (order.every((u, i) => u === i)) {
    return sameAxes(lhs, rhs) ? x : reshape(c, path, x, rhsShape);
  }
  let y = x;
  if (units.length !== lhs.length) y = reshape(c, path, y, shape(units));
  y = transpose(c, path, y, order);
  if (!sameAxes(order.map((u) => units[u]), rhs)) y = reshape(c, path, y, rhsShape);
  return y;
}

/**
 * einops `repeat(x, pattern)` for new axes that the input lacks, e.g. `"b n c -> (b f) n c"`: the input's axes
 * keep their order and are not grouped; `sizes` gives every axis.
 */
export function repeat(c: Ctx, path: string, x: Value, pattern: string, sizes: AxisSizes): Value {
  const { lhs, rhs } = parse(pattern);
  const inNames = lhs.flat();
  const outNames = rhs.flat();
  if (lhs.some((g) => g.length !== 1)) throw new RearrangeError(`'${pattern}': repeat takes no input groups`);
  const kept = outNames.filter((n) => inNames.includes(n));
  if (kept.length !== inNames.length || kept.some((n, i) => n !== inNames[i])) {
    throw new RearrangeError(`'${pattern}': repeat keeps every input axis in its order (rearrange first)`);
  }
  const added = outNames.flatMap((n, i) => inNames.includes(n) ? [] : [i]);
  if (added.length === 0) throw new RearrangeError(`'${pattern}': repeat adds no axis (use rearrange)`);
  const full = outNames.map((n) => sizeOf([n], sizes, pattern));
  const expanded = c.g.op1("Expand", [unsqueeze(c, path, x, added), c.g.ints(`${path}/expand`, full)], {
    path,
  });
  return rhs.every((g) => g.length === 1)
    ? expanded
    : reshape(c, path, expanded, rhs.map((g) => sizeOf(g, sizes, pattern)));
}
