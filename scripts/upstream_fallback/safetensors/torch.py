"""Fallback for `safetensors.torch` (see ../README.md); gpu_check_upstream.py reads safetensors itself."""


def _missing(*args, **kwargs):
    raise RuntimeError("safetensors is not installed: gpu_check_upstream.py reads checkpoints with its own reader")


load_file = _missing
save_file = _missing
load = _missing
save = _missing
