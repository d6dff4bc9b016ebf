/**
 * `deno task hallo <command>`: one entry, one file per subcommand in this folder.
 * Each command module exports `run(args): Promise<number>` (the exit code).
 */
const COMMANDS: Record<string, { file: string; help: string }> = {
  inspect: { file: "./inspect.ts", help: "list the tensors of a .pth or .safetensors checkpoint" },
  weights: { file: "./weights.ts", help: "download | check | clean the pretrained_models folder" },
  "prepare-image": {
    file: "./prepare_image.ts",
    help: "landmarks, masks, pyramids and embedding of a portrait",
  },
  "prepare-audio": { file: "./prepare_audio.ts", help: "vocals, wav2vec2 features and per-frame windows" },
  animate: { file: "./animate.ts", help: "image + audio -> talking-head mp4" },
  sweep: { file: "./sweep.ts", help: "grid over CFG and pose/face/lip weights" },
  replay: { file: "./replay.ts", help: "run one recorded step again, with probes and patches" },
  doctor: { file: "./doctor.ts", help: "which execution providers and GPU libraries are here, and fixes" },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(15)} ${v.help}`);
  return `usage: deno task hallo <command> [options]\n\ncommands:\n${rows.join("\n")}`;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    console.log(usage());
    return cmd ? 0 : 2;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    console.error(`hallo: unknown command '${cmd}'\n${usage()}`);
    return 2;
  }
  const mod = await import(entry.file) as { run(args: string[]): Promise<number> };
  return await mod.run(rest);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
