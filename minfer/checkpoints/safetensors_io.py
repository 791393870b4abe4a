"""Read `.safetensors` files as memory-mapped NumPy arrays, float32, float16 and bfloat16 alike.

The format is simple enough to read in a few lines, and reading it ourselves lets us memory-map
every dtype, bfloat16 included (NumPy has no bfloat16, so the `safetensors` package's NumPy loader
refuses such files). Layout: 8 bytes little-endian header length N, N bytes of JSON
`{name: {"dtype", "shape", "data_offsets": [begin, end]}}`, then the raw tensor bytes.

A checkpoint is untrusted input, so the header is checked before a byte of data is touched, at
least as strictly as the `safetensors` library does: a bounded header that is a JSON object;
each entry a known dtype, a shape of whole numbers and two whole offsets; the tensors laid end
to end from offset 0 to the end of the file, without gaps or overlaps, each exactly
prod(shape) x item size bytes. Every failure is a `ModelLoadError` naming the file, the tensor
and what is wrong. Nothing here executes code from the file: it is plain data, unlike a pickle.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from minfer import checks
from minfer.errors import ModelLoadError

# safetensors dtype -> how NumPy holds its bytes. bfloat16 is kept as raw uint16 until
# `to_float32` widens it (a bfloat16 is the top half of a float32).
DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
# The safetensors library's own limit: a real header is kilobytes, even for 1,000 tensors.
MAX_HEADER_BYTES = 100_000_000
CHUNK = 1 << 22  # numbers checked at a time for NaN and inf


def open_regular_file(path: Path):
    """`minfer.checks.open_regular_file`, failing with a ModelLoadError."""
    return checks.open_regular_file(path, ModelLoadError)


def read_header(path: Path) -> tuple[dict, int, int]:
    """The parsed JSON header, where the data starts, and how many data bytes follow."""
    with open_regular_file(path) as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ModelLoadError(f"{path} is {size} bytes long: too short to be a .safetensors file")
        n_header = int.from_bytes(prefix, "little")
        if n_header > min(MAX_HEADER_BYTES, size - 8):
            raise ModelLoadError(
                f"{path} declares a {n_header:,}-byte header, but the file has {size - 8:,} bytes "
                f"after the length (and headers are at most {MAX_HEADER_BYTES:,}): it is truncated "
                "or not a .safetensors file"
            )
        text = f.read(n_header)
    try:
        header = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise ModelLoadError(f"{path}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path}: the header is a JSON {type(header).__name__}, not an object of tensors")
    return header, 8 + n_header, size - 8 - n_header


def no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the key {twice!r} appears twice (which one counts is a guess)")
    return dict(pairs)


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_entry(path: Path, name: str, info) -> tuple[str, tuple[int, ...], int, int]:
    """(dtype, shape, begin, end) of one header entry, or a ModelLoadError saying what is wrong."""
    where = f"{path}: tensor {name!r}"
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise ModelLoadError(f"{where} must be an object with dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPES:
        raise ModelLoadError(f"{where} has unsupported dtype {dtype!r} (minfer reads {', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(_is_whole(n) and n >= 0 for n in shape):
        raise ModelLoadError(f"{where} has shape {shape!r}; a shape is a list of whole numbers >= 0")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_whole(o) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise ModelLoadError(f"{where} has data_offsets {offsets!r}; expected [begin, end] with 0 <= begin <= end")
    want = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
    if offsets[1] - offsets[0] != want:
        raise ModelLoadError(
            f"{where}: shape {shape} of {dtype} needs {want:,} bytes, but its "
            f"data_offsets {offsets} span {offsets[1] - offsets[0]:,}"
        )
    return dtype, tuple(shape), offsets[0], offsets[1]


def check_layout(path: Path, entries: dict[str, tuple[str, tuple, int, int]], n_data: int) -> None:
    """The tensors must tile the data section exactly: no overlap (one tensor's bytes read as
    another's), no gap, nothing past the end of the file."""
    ordered = sorted(entries.items(), key=lambda e: (e[1][2], e[1][3]))  # by begin offset
    for (before, (_, _, _, end)), (name, (_, _, begin, _)) in zip(ordered, ordered[1:]):
        if begin < end:
            raise ModelLoadError(
                f"{path}: tensor {name!r} starts at byte {begin:,}, inside {before!r} "
                f"(which ends at {end:,}): their bytes overlap, so one would be read "
                "as the other; the file is corrupt or was tampered with"
            )
    end = 0
    for name, (_, _, begin, stop) in ordered:
        if begin != end:
            raise ModelLoadError(
                f"{path}: tensor {name!r} starts at byte {begin:,}, leaving a gap "
                f"after byte {end:,}; the file is corrupt or was tampered with"
            )
        end = stop
    if end != n_data:
        raise ModelLoadError(
            f"{path}: the tensors end at byte {end:,} of the data section, which has {n_data:,} "
            f"bytes; the file is {'truncated' if end > n_data else 'padded with unknown bytes'}"
        )


def read_safetensors(path: Path) -> dict[str, tuple[str, np.ndarray]]:
    """{name: (safetensors dtype, memory-mapped array)} for every tensor in the file."""
    path = Path(path)
    header, data_start, n_data = read_header(path)
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelLoadError(f"{path}: __metadata__ must be an object of strings")
    entries = {name: check_entry(path, name, info) for name, info in header.items()}
    check_layout(path, entries, n_data)
    if n_data == 0:
        data = np.zeros(0, np.uint8)  # np.memmap cannot map zero bytes
    else:
        try:
            data = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start)  # [n_bytes]
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"{path} cannot be memory-mapped: {e}") from None
    return {
        name: (dtype, data[begin:end].view(DTYPES[dtype]).reshape(shape))  # shape as stored
        for name, (dtype, shape, begin, end) in entries.items()
    }


def non_finite_count(dtype: str, array: np.ndarray) -> int:
    """How many NaN or infinite numbers a stored float tensor holds (0 for integer dtypes),
    counted in slices of CHUNK numbers so a large tensor needs no large mask."""
    if dtype not in ("F32", "F64", "F16", "BF16"):
        return 0
    flat = array.reshape(-1)  # [n]
    with np.errstate(over="ignore"):
        return sum(int(np.count_nonzero(_not_finite(dtype, flat[i : i + CHUNK]))) for i in range(0, flat.size, CHUNK))


def _not_finite(dtype: str, piece: np.ndarray) -> np.ndarray:
    """A mask of the non-finite numbers of a slice. float16 and bfloat16 are read on their stored
    bits (not finite: every exponent bit set); float64 as it will be computed, in float32, where a
    huge float64 is inf."""
    if dtype == "F16":
        return (np.asarray(piece).view(np.uint16) & 0x7C00) == 0x7C00
    if dtype == "BF16":
        return (np.asarray(piece) & 0x7F80) == 0x7F80
    return ~np.isfinite(piece.astype(np.float32, copy=False))


def to_float32(dtype: str, array: np.ndarray) -> np.ndarray:
    """Widen a stored tensor to float32; a float32 one is returned as is (still memory-mapped)."""
    if dtype == "F32":
        return array
    if dtype == "BF16":
        return (np.asarray(array).astype(np.uint32) << 16).view(np.float32)  # like array, in memory
    if dtype in ("F16", "F64"):
        return np.asarray(array).astype(np.float32)  # like array; a copy in memory, not a memmap
    raise ModelLoadError(f"a {dtype} tensor cannot be used as a weight (expected F32, F16 or BF16)")
