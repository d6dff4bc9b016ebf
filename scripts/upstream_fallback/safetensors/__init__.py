"""Fallback for `import safetensors` (see ../README.md): upstream's UNets import it, the check never loads one."""
