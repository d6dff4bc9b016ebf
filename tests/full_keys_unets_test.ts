/**
 * Shape-only build of both full-size UNets over the key list of the real net.pth: every `reference_unet.` and
 * `denoising_unet.` key is bound with its listed shape, except the modules upstream never executes, which are
 * listed by name (the motion modules of down_blocks.3 / up_blocks.0, skipped by the train-mode branch).
 */
import assert from "node:assert/strict";
import { buildDenoisingUNet } from "../src/models/denoising_unet.ts";
import { buildReferenceUNet } from "../src/models/reference_unet.ts";
import { HALLO_UNET_KWARGS, parseUNetConfig } from "../src/models/unet_config.ts";
import { fakeStore, fullKeys } from "./helpers/shared.ts";

const full = fullKeys();
const cfg = parseUNetConfig(full.configs.sd15_unet);
const net = full.files["hallo/net.pth"].keys;
const shapeOf = new Map(net.map((k) => [k.name, k.shape.join()]));

function check(prefix: string, bound: { key: string; shape: readonly number[] }[]) {
  const listed = net.filter((k) => k.name.startsWith(prefix)).map((k) => k.name);
  const boundSet = new Set(bound.map((b) => b.key));
  for (const b of bound) assert.equal(b.shape.join(), shapeOf.get(b.key), `shape of ${b.key}`);
  assert.ok(bound.every((b) => b.key.startsWith(prefix)));
  return listed.filter((k) => !boundSet.has(k));
}

Deno.test("full-size reference UNet binds every reference_unet. key with its shape", () => {
  const g = buildReferenceUNet(cfg, fakeStore(net), {
    batch: 6,
    contextBatch: 2,
    contextTokens: 4,
    height: 64,
    width: 64,
  });
  const unused = check("reference_unet.", g.boundKeys());
  assert.deepEqual(unused, []);
  assert.equal(g.boundKeys().length, 682);
});

Deno.test("full-size denoising UNet binds every executed denoising_unet. key; the skipped motion modules are listed", () => {
  const g = buildDenoisingUNet(cfg, HALLO_UNET_KWARGS, fakeStore(net), {
    batch: 2,
    frames: 2,
    height: 16,
    width: 16,
    contextTokens: 4,
    audioTokens: 32,
    motionFrames: 2,
  });
  const unused = check("denoising_unet.", g.boundKeys());
  assert.ok(unused.length > 0);
  for (const k of unused) {
    assert.match(
      k,
      /^denoising_unet\.(down_blocks\.3|up_blocks\.0)\.motion_modules\./,
      `unexpectedly unused: ${k}`,
    );
  }
  // 2 motion modules in down_blocks.3, 3 in up_blocks.0, 28 tensors each (incl. the two pos_encoder.pe buffers).
  assert.equal(unused.length, 5 * 28);
  assert.equal(g.boundKeys().length + unused.length, 1946);
});
