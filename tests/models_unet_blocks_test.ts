/**
 * The UNet builders' shape: every top-level function in src/models stays within 80 lines (the builders are
 * composed of the block functions of unet_blocks*.ts), and a UNet config naming a block class the families do
 * not have is a clear error that lists the supported ones.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { buildDenoisingUNet } from "../src/models/denoising_unet.ts";
import { buildReferenceUNet } from "../src/models/reference_unet.ts";
import { HALLO_UNET_KWARGS, parseUNetConfig } from "../src/models/unet_config.ts";
import { GraphBuildError } from "../src/onnx/graph.ts";
import { fakeStore, fullKeys } from "./helpers/shared.ts";

const MODELS = fileURLToPath(new URL("../src/models/", import.meta.url));

/**
 * Lines of each top-level function (declaration or arrow const) of a file: from its first line through the last
 * indented or closing line before the next top-level statement.
 */
function functionLengths(source: string): { name: string; lines: number }[] {
  const lines = source.split("\n");
  const out: { name: string; lines: number }[] = [];
  lines.forEach((line, i) => {
    const m = line.match(/^(?:export )?(?:function (\w+)|const (\w+)\b[^=]*= (?:\(|\w+ =>))/);
    if (!m) return;
    let end = i;
    for (let j = i + 1; j < lines.length; j++) {
      if (lines[j] === "") continue;
      if (!/^\s|^[)\]}]/.test(lines[j])) break;
      end = j;
    }
    out.push({ name: m[1] ?? m[2], lines: end - i + 1 });
  });
  return out;
}

Deno.test("no function in src/models is longer than 80 lines", () => {
  const all: { at: string; lines: number }[] = [];
  for (const e of Deno.readDirSync(MODELS)) {
    if (!e.name.endsWith(".ts")) continue;
    for (const f of functionLengths(Deno.readTextFileSync(MODELS + e.name))) {
      all.push({ at: `${e.name} ${f.name}`, lines: f.lines });
    }
  }
  all.sort((a, b) => b.lines - a.lines);
  console.log(all.slice(0, 5).map((f) => `  ${f.lines} ${f.at}`).join("\n"));
  assert.ok(
    all.some((f) => f.at === "denoising_unet.ts buildDenoisingUNet"),
    "the measure finds the builders",
  );
  assert.deepEqual(all.filter((f) => f.lines > 80), []);
});

Deno.test("a UNet block class neither family has is a build error naming it and the supported ones", () => {
  const full = fullKeys();
  const net = fakeStore(full.files["hallo/net.pth"].keys);
  const raw = structuredClone(full.configs.sd15_unet) as Record<string, unknown>;
  raw.down_block_types = [
    "CrossAttnDownBlock2D",
    "CrossAttnDownBlock2D",
    "SimpleCrossAttnDownBlock2D",
    "DownBlock2D",
  ];
  const cfg = parseUNetConfig(raw);
  const geometry = { height: 16, width: 16, contextTokens: 4 };
  assert.throws(
    () => buildReferenceUNet(cfg, net, { batch: 3, contextBatch: 1, ...geometry }),
    (e) =>
      e instanceof GraphBuildError &&
      /down block type 'SimpleCrossAttnDownBlock2D' is not supported \(supported: CrossAttnDownBlock2D, DownBlock2D\)/
        .test(e.message),
  );
  assert.throws(
    () =>
      buildDenoisingUNet(cfg, HALLO_UNET_KWARGS, net, {
        batch: 1,
        frames: 2,
        audioTokens: 32,
        motionFrames: 2,
        ...geometry,
      }),
    /down block type 'SimpleCrossAttnDownBlock3D' is not supported \(supported: CrossAttnDownBlock3D, DownBlock3D\)/,
  );
});
