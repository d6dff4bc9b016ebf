"""Fallback for `xformers.ops` (see ../README.md): upstream calls it only with xformers attention enabled."""


def memory_efficient_attention(*args, **kwargs):
    raise RuntimeError("xformers is not installed: the GPU check runs upstream with xformers attention off")
