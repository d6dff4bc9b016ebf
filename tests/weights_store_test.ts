import assert from "node:assert/strict";
import { WeightStore } from "../src/weights/store.ts";
import {
  expectCheckpointError,
  f32Bytes,
  makePth,
  makeSafetensors,
  stateDictPickle,
  writeTemp,
} from "./helpers/weights_fixtures.ts";
import { tinyModel } from "./helpers/shared.ts";

function smallFiles() {
  const pth = writeTemp(
    "net.pth",
    makePth(
      stateDictPickle([
        {
          name: "denoising_unet.conv_in.weight",
          storage: "FloatStorage",
          key: "0",
          storageNumel: 2,
          size: [2],
        },
        {
          name: "denoising_unet.conv_in.bias",
          storage: "FloatStorage",
          key: "1",
          storageNumel: 1,
          size: [1],
        },
        {
          name: "reference_unet.conv_in.weight",
          storage: "FloatStorage",
          key: "2",
          storageNumel: 1,
          size: [1],
        },
      ]),
      { "0": f32Bytes([1, 2]), "1": f32Bytes([3]), "2": f32Bytes([4]) },
    ),
  );
  const st = writeTemp(
    "vae.safetensors",
    makeSafetensors(
      { "encoder.conv_in.weight": { dtype: "F32", shape: [1], data_offsets: [0, 4] } },
      f32Bytes([9]),
    ),
  );
  return { pth, st };
}

Deno.test("store: prefixes are stripped and added; files merge into one key space", () => {
  const { pth, st } = smallFiles();
  const unet = WeightStore.open(pth, { strip: "denoising_unet." });
  assert.deepEqual(unet.keys(), ["conv_in.weight", "conv_in.bias"]);
  assert.equal(unet.get("conv_in.weight").name, "conv_in.weight");
  assert.deepEqual([...unet.readF32("conv_in.weight")], [1, 2]);

  const all = new WeightStore().add(pth).add(st, { prefix: "vae." });
  assert.equal(all.size, 4);
  assert.ok(all.has("vae.encoder.conv_in.weight"));
  assert.ok(!all.has("encoder.conv_in.weight"));
  assert.deepEqual([...all.readF32("vae.encoder.conv_in.weight")], [9]);
  const both = WeightStore.open([pth, st], { prefix: "m." });
  assert.deepEqual(both.keys().slice(-1), ["m.encoder.conv_in.weight"]);
});

Deno.test("store: a missing key names the key, the file and the mapping, with a hint", () => {
  const { pth } = smallFiles();
  const unet = WeightStore.open(pth, { strip: "denoising_unet." });
  const e = expectCheckpointError(() => unet.get("conv_out.weight"), /no tensor 'conv_out\.weight'/);
  assert.match(e.message, /net\.pth \(prefix 'denoising_unet\.' stripped\)/);
  expectCheckpointError(() => unet.get("denoising_unet.conv_in.bias"), /did you mean 'conv_in\.bias'\?/);
  expectCheckpointError(() => unet.markUsed("nope"), /no tensor 'nope'/);
});

Deno.test("store: a key present in two files is an error naming both", () => {
  const { pth } = smallFiles();
  const other = writeTemp(
    "other.safetensors",
    makeSafetensors({ "conv_in.bias": { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, f32Bytes([0])),
  );
  expectCheckpointError(
    () => WeightStore.open(pth, { strip: "denoising_unet." }).add(other),
    /other\.safetensors: tensor 'conv_in\.bias' is already in the store from .*net\.pth/,
  );
});

Deno.test("store: usage tracking is shared between a store and its views", () => {
  const { pth } = smallFiles();
  const net = WeightStore.open(pth);
  const unet = net.view({ strip: "denoising_unet." });
  assert.deepEqual(unet.keys(), ["conv_in.weight", "conv_in.bias"]);
  assert.equal(unet.use("conv_in.weight").length, 8);
  assert.deepEqual(unet.unusedKeys(), ["conv_in.bias"]);
  assert.ok(net.isUsed("denoising_unet.conv_in.weight"));
  assert.deepEqual(net.unusedKeys(), ["denoising_unet.conv_in.bias", "reference_unet.conv_in.weight"]);
  net.markUsed("denoising_unet.conv_in.bias");
  assert.deepEqual(unet.unusedKeys(), []);
});

Deno.test("store: the tiny net.pth views cover every key once", () => {
  const net = WeightStore.open(tinyModel("hallo", "net.pth"));
  const prefixes = ["reference_unet.", "denoising_unet.", "face_locator.", "imageproj.", "audioproj."];
  const total = prefixes.reduce((n, p) => n + net.view({ strip: p }).size, 0);
  assert.equal(net.size, 1688);
  assert.equal(total, 1688);
  const unet = net.view({ strip: "denoising_unet." });
  for (const k of unet.keys()) unet.markUsed(k);
  assert.equal(net.unusedKeys().length, 1688 - unet.size);
  assert.ok(net.unusedKeys().every((k) => !k.startsWith("denoising_unet.")));
});
