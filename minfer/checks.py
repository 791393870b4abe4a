"""Argument checks shared by the public functions: whole numbers and token ids.

Python counts `True` as the integer 1 and truncates `int(2.9)` to 2 without a word, so a layer
count of `True` or a token id of `2.9` would otherwise pass for valid. These checks accept
Python and NumPy integers, and refuse bools, floats and strings, naming the value.
"""

from __future__ import annotations

import numbers
import os
import stat
from pathlib import Path

import numpy as np

from minfer.errors import InsufficientMemoryError, InvalidInputError


def is_whole(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def whole_number(value, name: str, minimum: int = 1) -> int:
    """`value` as an int if it is a whole number >= minimum; an InvalidInputError otherwise."""
    if not is_whole(value) or value < minimum:
        raise InvalidInputError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def token_id_array(ids, what: str = "token ids", error: type[Exception] = InvalidInputError) -> np.ndarray:
    """ids as an int64 array [n], if they are a 1-D sequence of integers (NumPy's welcome).

    A string, floats (even 3.0), bools or a nested list raise `error` naming what was given;
    an empty sequence gives an empty array, and the range is the caller's to check (it knows
    the vocabulary)."""
    expected = f"{what} must be a non-empty 1-D sequence of integers"
    if isinstance(ids, (str, bytes)):
        raise error(f"{expected}, not a {type(ids).__name__} (encode text with the tokenizer first)")
    if is_whole(ids):
        raise error(f"{expected}; wrap the single id {ids!r} in a list")
    try:
        listed = ids if isinstance(ids, np.ndarray) else list(ids)
        arr = np.asarray(listed)
    except (TypeError, ValueError):  # not iterable, or ragged
        raise error(f"{expected}, got {type(ids).__name__}") from None
    if arr.size == 0:
        return np.zeros(0, np.int64)  # [0]
    if arr.dtype == object and all(is_whole(i) for i in listed):  # Python ints too big for int64
        raise error(f"{what}: {max(listed, key=abs)} is far outside any vocabulary")
    if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
        raise error(f"{what}: {arr.max()} is far outside any vocabulary")
    odd = []  # a bool among Python ints: NumPy would quietly make [1, True] two integers
    if not isinstance(listed, np.ndarray) and arr.dtype != object:
        odd = [i for i in listed if isinstance(i, (bool, np.bool_))][:1]
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer) or odd:
        raise error(
            f"{expected}, got {type(ids).__name__} with shape {arr.shape} and dtype "
            f"{arr.dtype}{f' holding {odd[0]!r}' if odd else ''} (floats and bools are not token ids)"
        )
    return arr.astype(np.int64)  # [n]


def available_memory() -> int | None:
    """Bytes of memory the system can give now without swapping (Linux's MemAvailable), or None
    where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(n_bytes: int, what: str, fix: str) -> None:
    """Raise InsufficientMemoryError if `n_bytes` more would not fit in the memory available now.

    NumPy's zeros are lazily backed on Linux: an oversized buffer is not refused when it is made
    but fails (or swaps the machine to a halt) while it is being filled. So buffers are checked
    against what is available before they are made."""
    free = available_memory()
    if free is not None and n_bytes > free:
        raise InsufficientMemoryError(
            f"{what} needs {n_bytes / 2**30:,.2f} GiB, but only {free / 2**30:,.2f} GiB of memory is available; {fix}"
        )


def open_regular_file(path: Path, error: type[Exception]):
    """Open `path` for reading in binary only if it is a regular file: a FIFO, a device or
    /dev/stdin would block or read forever. O_NONBLOCK makes even opening a FIFO return at once."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise error(f"cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise error(
            f"{path} is not a regular file (a FIFO, device or directory); a model's files must be ordinary files"
        )
    return os.fdopen(fd, "rb")
