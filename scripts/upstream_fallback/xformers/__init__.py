"""Fallback for upstream's unconditional `import xformers` (see ../README.md): importable, never used."""
