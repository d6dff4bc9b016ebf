#!/usr/bin/env bash
# Runs on the device machine (see scripts/gpu_pack.ts, which writes the calls into .gpu/COMMANDS.md):
#   stage DIR   copy one call's payload chunks into /var/tmp/hallo-gpu/in (a warm machine keeps it between calls)
#   unpack      join the chunks, check them against MANIFEST.json, unpack deno, node_modules, upstream, libvulkan1
#   check ARGS  run scripts/gpu_check.ts on the GPU (WebGPU over Vulkan) with upstream's PyTorch half, JSON to $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
G=${HALLO_GPU_STAGE:-/var/tmp/hallo-gpu}  # a warm machine keeps it between calls
case "${1:-}" in
  stage)
    # the first call of a plan starts afresh: chunks left from an earlier plan would not join
    case "$2" in *call-1) rm -rf "$G/in" ;; esac
    mkdir -p "$G/in"
    cp "$2"/* "$G/in/"
    echo "staged $(ls "$2" | wc -l) files; $(du -sh "$G/in" | cut -f1) in $G/in"
    ;;
  unpack)
    cd "$G/in"
    python3 - <<'PY'
import hashlib, json, pathlib
for f in json.loads(pathlib.Path("MANIFEST.json").read_text()):
    parts = sorted(pathlib.Path(".").glob(f["name"] + ".[0-9][0-9][0-9]"))
    data = b"".join(p.read_bytes() for p in parts)
    assert len(data) == f["bytes"] and hashlib.sha256(data).hexdigest() == f["sha256"], f["name"]
    pathlib.Path("../" + f["name"]).write_bytes(data)
    print("ok", f["name"], len(parts), "chunks")
PY
    cd "$G"
    mkdir -p bin && xz -dc deno.xz >bin/deno && chmod +x bin/deno
    rm -rf node_modules upstream && mkdir node_modules
    tar -xJf node_modules.tar.xz -C node_modules && tar -xJf upstream.tar.xz
    if [ -f libvulkan1.deb ] && ! ldconfig -p | grep -q libvulkan.so.1; then dpkg -x libvulkan1.deb / && ldconfig; fi
    bin/deno --version | head -1
    ;;
  check)
    shift
    ln -sfn "$G/node_modules" node_modules
    f=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f "$f" ] && export VK_DRIVER_FILES="$f"
    export PYTHONUNBUFFERED=1
    "$G/bin/deno" run -A --cached-only --node-modules-dir=manual scripts/gpu_check.ts --work "$G/work" \
      --upstream "$G/upstream" --json "${OUT:-$G}/gpu_check-$(date +%s).json" "$@"
    ;;
  *)
    echo "usage: $0 stage DIR | unpack | check [gpu_check.ts options]" >&2
    exit 2
    ;;
esac
