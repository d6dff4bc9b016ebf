/** `--patch` values: a JSON object, an array, or @file; every problem a one-line UsageError naming the value. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { patchOption } from "../src/cli/patches.ts";
import { UsageError } from "../src/cli/options.ts";

Deno.test("--patch: objects, arrays and @files become typed interventions; bad ones are named usage errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hallo-patch-" });
  try {
    const file = join(dir, "p.json");
    await Deno.writeTextFile(
      file,
      '[{"kind":"bank-zero","layers":["up_blocks.1.attentions.0.transformer_blocks.0"]}]',
    );
    assert.deepEqual(
      await patchOption([
        '{"kind":"audio-silence","steps":[3]}',
        '[{"kind":"audio-shift","by":-2}]',
        `@${file}`,
      ]),
      [
        { kind: "audio-silence", steps: [3] },
        { kind: "audio-shift", by: -2 },
        { kind: "bank-zero", layers: ["up_blocks.1.attentions.0.transformer_blocks.0"] },
      ],
    );
    assert.deepEqual(await patchOption(undefined), []);
    const bad: [string, RegExp][] = [
      ["{kind:", /^--patch \{kind:: not JSON/],
      ['{"kind":"audio-clip"}', /audio-clip needs 'clip'/],
      ['{"kind":"mask","region":"nose","fill":0}', /mask\.region = "nose" is not full, face or lip/],
      [`@${join(dir, "missing.json")}`, /cannot read/],
    ];
    for (const [v, re] of bad) {
      await assert.rejects(() => patchOption([v]), (e: Error) => {
        assert.ok(e instanceof UsageError, `${v}: ${e.name}`);
        assert.match(e.message, re);
        assert.ok(!e.message.includes("\n"));
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
