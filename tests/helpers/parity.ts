/** The check shared by the single-network parity tests: a case's outputs against upstream's. */
import assert from "node:assert/strict";
import type { CaseInput, ParityCase } from "../../src/parity/types.ts";
import type { F32Tensor } from "../../src/tensor.ts";
import { relL2 } from "./tensors.ts";

/**
 * Runs parity case `c` on `input` and asserts it returns exactly the reference's `output` tensors, each with
 * the reference shape and a relative L2 error within the case's tolerance.
 */
export async function assertCaseOutputs(c: ParityCase, input: CaseInput): Promise<void> {
  const res = await c.run(input);
  const roles = input.meta.tensors as Record<string, { role: string }>;
  const outputs = Object.keys(roles).filter((k) => roles[k].role === "output").sort();
  assert.deepEqual(Object.keys(res.outputs).sort(), outputs);
  for (const name of outputs) {
    const got = res.outputs[name] as F32Tensor;
    const ref = input.tensors.get(name)!;
    assert.deepEqual(got.shape, ref.shape, name);
    const err = relL2(got.data, ref.data);
    assert.ok(err <= c.tolerance, `${name}: relative L2 ${err}`);
  }
}
