"""
The upstream half of the GPU check: Hallo's own UNet2DConditionModel (reference UNet) and UNet3DConditionModel
(denoising UNet), in PyTorch, wired through upstream's ReferenceAttentionControl as hallo/animate/face_animate.py
wires them, timed forward by forward. scripts/gpu_check.ts runs it on the GPU machine beside the ONNX half.

    python3 scripts/gpu_check_upstream.py --upstream DIR --config2d unet.json --kwargs kwargs.json \
        [--device cuda] [--latent 64] [--frames 16] [--motion 2] [--steps 40] [--dtypes fp32,fp16] [--json OUT]
    python3 scripts/gpu_check_upstream.py --upstream DIR --reference tests/reference   # the dry run (CPU)

DIR is the folder scripts/gpu_pack.ts assembles from upstream's pinned sources (hallo/, diffusers/,
huggingface_hub/, einops/ and SOURCES.json): they go first on sys.path, so upstream runs with the versions the
reference set was made with, not the machine's (its huggingface_hub 1.x lacks what diffusers 0.27.2 imports).
scripts/upstream_fallback/ goes last: it only fills in xformers and safetensors where they are missing.

Timing mode builds both UNets from the configs on the device and loads the ONNX half's random checkpoints
(--reference-weights, --denoising-weights; without them PyTorch's default initialisation stays), feeds random inputs of the inference shapes (CFG: batch 2; the
reference UNet sees the reference and motion-frame latents, 2 * (1 + motion)), and for each precision reports
the reference forward, the denoising forward (best of --repeats after a warm-up), seconds per frame for
--steps steps ((reference + steps * denoising) / frames: the reference UNet runs once per clip, as in
face_animate.py) and the peak memory PyTorch allocated. Both modules run in eval mode: every dropout is 0
and no gradient is taken, so this computes what inference's training-mode, checkpointed modules compute.

Reference mode (--reference, the CPU dry run) loads the tiny checkpoint tiny_models/hallo/net.pth into the same
wiring, in the train/eval modes the reference set records, feeds the recorded inputs of reference_unet_write_cfg
and denoising_unet_read_cfg, and reports the relative L2 of noise_pred against the recorded one: the proof
that this script calls upstream the way the reference set did. With Debian's PyTorch 1.13.1 on the CPU that
forward pair, repeated in one process, gives NaN in some repeats (about a third in ours; not in our code: it
stays with mkldnn off, one thread, or the bank kept float32, and looks like a read of memory never written,
since fresh zeroed memory does not show it), so --repeats runs it several times and reports the best finite
result with the count of non-finite runs (`nonfinite_runs`).
"""
import argparse
import json
import math
import struct
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DTYPES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16"}
DOWN_3D = ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"]
UP_3D = ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"]


def use_upstream(upstream):
    """Puts upstream's carried sources first on sys.path and the fallbacks last; returns SOURCES.json."""
    root = Path(upstream).resolve()
    for name in ("hallo", "diffusers", "huggingface_hub", "einops"):
        if not (root / name / "__init__.py").is_file():
            sys.exit(f"gpu_check_upstream: {root / name} is missing (make it with scripts/gpu_pack.ts)")
    sys.path.insert(0, str(root))
    sys.path.append(str(HERE / "upstream_fallback"))
    sources = root / "SOURCES.json"
    return json.loads(sources.read_text()) if sources.is_file() else {}


def fallback_modules():
    """The modules that were imported from scripts/upstream_fallback/ (the real package was missing)."""
    fb = str(HERE / "upstream_fallback")
    return sorted(n for n, m in sys.modules.items() if (getattr(m, "__file__", None) or "").startswith(fb))


def read_safetensors(path, strip=""):
    """Every F32/F16 tensor of a safetensors file by name (`strip` removed from the front), read tensor by tensor
    with numpy: the format is an 8-byte header length, a JSON header and the raw little-endian bytes."""
    import numpy as np
    import torch

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    kinds = {"F32": np.float32, "F16": np.float16}
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        kind = kinds[h["dtype"]]
        count = (b - a) // np.dtype(kind).itemsize
        data = np.fromfile(path, dtype=kind, count=count, offset=8 + n + a)
        out[name[len(strip):] if name.startswith(strip) else name] = torch.from_numpy(data).reshape(h["shape"])
    return out


def load_weights(module, path, prefix):
    """The ONNX half's random checkpoint (keys as in net.pth, `prefix` first) into upstream's module: both halves
    then run the same weights. Returns the keys upstream has and the file lacks (the ONNX graphs leave unbound
    what upstream computes but never uses; those keep PyTorch's initialisation)."""
    result = module.load_state_dict(read_safetensors(path, prefix), strict=False)
    if result.unexpected_keys:
        sys.exit(f"gpu_check_upstream: {path}: keys upstream's module lacks: {result.unexpected_keys[:5]}")
    return result.missing_keys


def config_3d(config2d):
    """What UNet3DConditionModel.from_pretrained_2d makes of the SD-1.5 config (use_landmark=False, as inference)."""
    c = dict(config2d)
    c.update(_class_name="UNet3DConditionModel", down_block_types=DOWN_3D, up_block_types=UP_3D)
    c["mid_block_type"] = "UNetMidBlock3DCrossAttn"
    return c


def build(config2d, kwargs):
    from hallo.models.unet_2d_condition import UNet2DConditionModel
    from hallo.models.unet_3d import UNet3DConditionModel

    reference = UNet2DConditionModel.from_config(dict(config2d))
    denoising = UNet3DConditionModel.from_config(config_3d(config2d), **kwargs)
    return reference, denoising


def wire(reference, denoising):
    """The writer/reader pair of face_animate.py (CFG, batch 1, fusion_blocks="full")."""
    from hallo.models.mutual_self_attention import ReferenceAttentionControl

    writer = ReferenceAttentionControl(reference, do_classifier_free_guidance=True, mode="write", batch_size=1,
                                       fusion_blocks="full")
    reader = ReferenceAttentionControl(denoising, do_classifier_free_guidance=True, mode="read", batch_size=1,
                                       fusion_blocks="full")
    return writer, reader


def shapes(config2d, kwargs, latent, frames, motion, audio_tokens):
    """Input shapes of one CFG step at a latent size (b = 2: [uncond, cond])."""
    b, ch = 2, config2d["in_channels"]
    levels = len(config2d["block_out_channels"])
    return {
        "ref_sample": (b * (1 + motion), ch, latent, latent),
        "sample": (b, ch, frames, latent, latent),
        "encoder_hidden_states": (b, 4, config2d["cross_attention_dim"]),  # ImageProjModel's 4 tokens
        "audio_embedding": (b, frames, audio_tokens, kwargs["audio_attention_dim"]),  # AudioProjModel's tokens
        "mask_cond_fea": (b, config2d["block_out_channels"][0], frames, latent, latent),
        "masks": [(b * frames, (latent >> i) ** 2) for i in range(levels)],
    }


def random_inputs(s, device, dtype, seed=0):
    import torch

    g = torch.Generator(device="cpu").manual_seed(seed)
    r = lambda shape: torch.randn(shape, generator=g).to(device=device, dtype=dtype)  # noqa: E731
    u = lambda shape: torch.rand(shape, generator=g).to(device=device, dtype=dtype)  # noqa: E731
    return {
        "ref_sample": r(s["ref_sample"]) * 0.18215,
        "sample": r(s["sample"]),
        "timestep": torch.tensor(874, device=device),
        "encoder_hidden_states": r(s["encoder_hidden_states"]),
        "audio_embedding": r(s["audio_embedding"]),
        "mask_cond_fea": r(s["mask_cond_fea"]) * 0.1,
        "full_mask": [u(m) for m in s["masks"]],
        "face_mask": [u(m) for m in s["masks"]],
        "lip_mask": [u(m) for m in s["masks"]],
        "motion_scale": [1.0, 1.0, 1.0],
    }


def reference_forward(reference, writer, reader, x):
    """face_animate.py's first step: the reference UNet writes the bank, the reader takes a copy of it (update's
    default dtype, float16, as face_animate.py calls it: the bank is half precision in fp32 runs too)."""
    import torch

    reference(x["ref_sample"], torch.zeros_like(x["timestep"]), encoder_hidden_states=x["encoder_hidden_states"],
              return_dict=False)
    reader.update(writer)


def denoising_forward(denoising, x):
    return denoising(x["sample"], x["timestep"], encoder_hidden_states=x["encoder_hidden_states"],
                     mask_cond_fea=x["mask_cond_fea"], full_mask=x["full_mask"], face_mask=x["face_mask"],
                     lip_mask=x["lip_mask"], audio_embedding=x["audio_embedding"],
                     motion_scale=x["motion_scale"], return_dict=False)[0]


class Clock:
    """Seconds of a callable: CUDA events on the GPU (queued work included), a wall clock on the CPU."""

    def __init__(self, device):
        import torch

        self.cuda = device.startswith("cuda")
        self.torch = torch

    def __call__(self, fn):
        if not self.cuda:
            t0 = time.perf_counter()
            out = fn()
            return out, time.perf_counter() - t0
        start, end = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        end.synchronize()
        return out, start.elapsed_time(end) / 1000


def timing(args, config2d, kwargs):
    import torch

    device = args.device
    if hasattr(torch, "set_default_device"):  # build the weights where they run: seconds, not minutes, at full size
        torch.set_default_device(device)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    reference, denoising = build(config2d, kwargs)
    missing = {}
    if args.reference_weights:
        missing["reference_unet"] = load_weights(reference, args.reference_weights, "reference_unet.")
    if args.denoising_weights:
        missing["denoising_unet"] = load_weights(denoising, args.denoising_weights, "denoising_unet.")
    reference.to(device).eval()
    denoising.to(device).eval()
    build_s = time.perf_counter() - t0
    if hasattr(torch, "set_default_device"):
        torch.set_default_device("cpu")
    writer, reader = wire(reference, denoising)
    clock = Clock(device)
    s = shapes(config2d, kwargs, args.latent, args.frames, args.motion, args.audio_tokens)
    rows = []
    for name in args.dtypes.split(","):
        dtype = getattr(torch, DTYPES[name])
        reference.to(dtype=dtype)
        denoising.to(dtype=dtype)
        x = random_inputs(s, device, dtype)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            writer.clear()
            reader.clear()
            _, ref_first = clock(lambda: reference_forward(reference, writer, reader, x))
            out, den_first = clock(lambda: denoising_forward(denoising, x))
            den_warm = min(clock(lambda: denoising_forward(denoising, x))[1] for _ in range(args.repeats))
            writer.clear()
            _, ref_warm = clock(lambda: reference_forward(reference, writer, reader, x))
        row = {
            "dtype": DTYPES[name],
            "reference_unet_s": ref_warm,
            "reference_unet_first_s": ref_first,
            "denoising_unet_s": den_warm,
            "denoising_unet_first_s": den_first,
            "seconds_per_frame": (ref_warm + args.steps * den_warm) / args.frames,
            "noise_pred_shape": list(out.shape),
            "noise_pred_finite": bool(torch.isfinite(out).all()),
            "peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None,
        }
        rows.append(row)
        print(f"gpu_check_upstream: {row['dtype']}: reference {ref_warm:.4f} s, denoising {den_warm:.4f} s, "
              f"{row['seconds_per_frame']:.4f} s/frame", file=sys.stderr)
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in
              (("reference_unet", reference), ("denoising_unet", denoising))}
    return {"build_s": build_s, "parameters": params, "weights_not_in_file": {k: len(v) for k, v in missing.items()},
            "rows": rows}


def rel_l2(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    return float(((a - b) ** 2).sum().sqrt() / max(float((b**2).sum().sqrt()), 1e-30))


def reference_parity(reference_dir, repeats=1):
    """The tiny checkpoint and the recorded inputs of the reference set through this script's wiring."""
    import torch

    ref = Path(reference_dir)
    common = json.loads((ref / "index.json").read_text())["common"]
    config2d, kwargs = common["configs"]["unet2d"], common["configs"]["unet_additional_kwargs"]
    reference, denoising = build(config2d, kwargs)
    state = torch.load(ref / "tiny_models" / "hallo" / "net.pth", map_location="cpu")
    for prefix, module in (("reference_unet.", reference), ("denoising_unet.", denoising)):
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    modes = common["module_modes"]
    for name, module in (("reference_unet", reference), ("denoising_unet", denoising)):
        module.train(modes[name]["training"])
        if modes[name]["gradient_checkpointing"]:
            module.enable_gradient_checkpointing()
    writer, reader = wire(reference, denoising)
    w = read_safetensors(ref / "reference_unet_write_cfg.safetensors")
    r = read_safetensors(ref / "denoising_unet_read_cfg.safetensors")
    x = {
        "ref_sample": w["sample"],
        "sample": r["sample"],
        "timestep": torch.tensor(int(r["timestep"].item())),
        "encoder_hidden_states": r["encoder_hidden_states"],
        "audio_embedding": r["audio_embedding"],
        "mask_cond_fea": r["mask_cond_fea"],
        "motion_scale": [float(v) for v in r["motion_scale"]],
    }
    for kind in ("full_mask", "face_mask", "lip_mask"):
        x[kind] = [r[f"{kind}.{i}"] for i in range(4)]
    # the write case records its own encoder states: the reference forward must see those
    x_ref = dict(x, encoder_hidden_states=w["encoder_hidden_states"])
    errors = []
    for _ in range(repeats):
        with torch.no_grad():
            writer.clear()
            reader.clear()
            reference_forward(reference, writer, reader, x_ref)
            noise_pred = denoising_forward(denoising, x)
        errors.append(rel_l2(noise_pred, r["noise_pred"]))
    finite = [e for e in errors if math.isfinite(e)]
    return {
        "noise_pred_rel_l2": min(finite) if finite else float("nan"),
        "runs": repeats,
        "nonfinite_runs": repeats - len(finite),
        "noise_pred_shape": list(noise_pred.shape),
        "bank_entries": sum(1 for m in denoising.modules() if getattr(m, "bank", None)),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--reference")
    p.add_argument("--config2d")
    p.add_argument("--kwargs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--motion", type=int, default=2)
    p.add_argument("--audio-tokens", type=int, default=32)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=2, help="warm denoising forwards timed; reference-mode runs")
    p.add_argument("--dtypes", default="fp32,fp16")
    p.add_argument("--reference-weights", help="safetensors with reference_unet.* keys (else random init)")
    p.add_argument("--denoising-weights", help="safetensors with denoising_unet.* keys (else random init)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    sources = use_upstream(args.upstream)
    import torch

    result = {"torch": torch.__version__, "python": sys.version.split()[0], "sources": sources}
    if torch.cuda.is_available():
        result["gpu"] = torch.cuda.get_device_name(0)
    if args.reference:
        result["reference_parity"] = reference_parity(args.reference, args.repeats)
    else:
        if not (args.config2d and args.kwargs):
            p.error("timing mode needs --config2d and --kwargs (or --reference for the dry run)")
        config2d = json.loads(Path(args.config2d).read_text())
        kwargs = json.loads(Path(args.kwargs).read_text())
        result["options"] = {k: getattr(args, k) for k in ("device", "latent", "frames", "motion", "steps")}
        result["timing"] = timing(args, config2d, kwargs)
    import diffusers

    result["diffusers"] = diffusers.__version__
    result["fallback_modules"] = fallback_modules()
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0 if all(math.isfinite(v) for v in _numbers(result)) else 1


def _numbers(obj):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield float(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)


if __name__ == "__main__":
    sys.exit(main())
