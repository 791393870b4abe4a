"""Read `.safetensors` files as memory-mapped NumPy arrays, float32, float16 and bfloat16 alike.

The format is simple enough to read in a few lines, and reading it ourselves lets us memory-map
every dtype, bfloat16 included (NumPy has no bfloat16, so the `safetensors` package's NumPy loader
refuses such files). Layout: 8 bytes little-endian header length N, N bytes of JSON
`{name: {"dtype", "shape", "data_offsets": [begin, end]}}`, then the raw tensor bytes.
Nothing here executes code from the file: it is plain data, unlike a pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from minfer.errors import ModelLoadError

# safetensors dtype -> how NumPy holds its bytes. bfloat16 is kept as raw uint16 until
# `to_float32` widens it (a bfloat16 is the top half of a float32).
DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64,
          "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path: Path) -> dict[str, tuple[str, np.ndarray]]:
    """{name: (safetensors dtype, memory-mapped array)} for every tensor in the file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            n_header = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n_header))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n_header)  # [n_bytes]
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path} is not a readable .safetensors file: {e}") from None
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            raise ModelLoadError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        raw = data[begin:end].view(DTYPES[info["dtype"]])  # [n_elements]
        tensors[name] = (info["dtype"], raw.reshape(info["shape"]))  # shape as stored
    return tensors


def to_float32(dtype: str, array: np.ndarray) -> np.ndarray:
    """Widen a stored tensor to float32; a float32 one is returned as is (still memory-mapped)."""
    if dtype == "F32":
        return array
    if dtype == "BF16":
        return (np.asarray(array).astype(np.uint32) << 16).view(np.float32)  # like array, in memory
    if dtype in ("F16", "F64"):
        return np.asarray(array).astype(np.float32)  # like array; a copy in memory, not a memmap
    raise ModelLoadError(f"a {dtype} tensor cannot be used as a weight (expected F32, F16 or BF16)")
