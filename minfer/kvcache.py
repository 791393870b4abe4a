"""The KV cache: keys and values of every token seen so far, so decode never recomputes them
(lesson 05).

Preallocated once, written by index at `length`, never grown by concatenation: the memory a
generation needs is known before it starts, and it is visible (`cache.nbytes`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from minfer.checks import check_fits, is_whole, whole_number
from minfer.cost import Cost
from minfer.errors import ContextOverflowError, InvalidInputError


@dataclass
class KVCache:
    """Keys and values of `length` positions, for every layer and key/value head (GPT-2 has one
    per attention head; a Llama-family model with grouped-query attention has fewer)."""

    k: np.ndarray  # [n_layer, n_kv_head, max_seq, d_head]
    v: np.ndarray  # [n_layer, n_kv_head, max_seq, d_head]
    length: int = 0  # positions filled; the next token is written at this index

    @classmethod
    def empty(cls, n_layer: int, n_kv_head: int, max_seq: int, d_head: int) -> KVCache:
        """A zeroed cache with room for `max_seq` positions; an InsufficientMemoryError at once
        if its two buffers would not fit in the memory available now."""
        for name, value in (("n_layer", n_layer), ("n_kv_head", n_kv_head), ("max_seq", max_seq), ("d_head", d_head)):
            whole_number(value, name)
        shape = (int(n_layer), int(n_kv_head), int(max_seq), int(d_head))
        check_fits(
            2 * math.prod(shape) * 4,
            f"a KV cache of {max_seq:,} positions",
            "ask for fewer positions (model.new_cache(max_seq), or fewer new tokens)",
        )
        return cls(k=np.zeros(shape, np.float32), v=np.zeros(shape, np.float32))  # shape

    def check_shape(self, n_layer: int, n_kv_head: int, d_head: int) -> None:
        """Raise InvalidInputError unless both buffers are writable float32
        [n_layer, n_kv_head, max_seq, d_head] and 0 <= length <= max_seq: what a model writes into
        (the compiled kernels index without bounds checks, so this is checked first)."""
        for name in ("k", "v"):
            a = getattr(self, name)
            if (
                type(a) not in (np.ndarray, np.memmap)
                or a.dtype != np.float32
                or a.ndim != 4
                or (a.shape[0], a.shape[1], a.shape[3]) != (n_layer, n_kv_head, d_head)
                or not a.flags.writeable
            ):
                got = f"{a.dtype} {list(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__
                raise InvalidInputError(
                    f"cache.{name} is {got}; this model needs writable float32 [n_layer={n_layer}, "
                    f"n_kv_head={n_kv_head}, max_seq, d_head={d_head}]. Make the cache with model.new_cache()"
                )
        if self.k.shape != self.v.shape:
            raise InvalidInputError(f"cache.k {list(self.k.shape)} and cache.v {list(self.v.shape)} differ")
        if np.may_share_memory(self.k, self.v):
            raise InvalidInputError("cache.k and cache.v share memory: values would overwrite keys")
        if not is_whole(self.length) or not 0 <= self.length <= self.max_seq:
            raise InvalidInputError(f"cache.length={self.length!r} must be an integer in [0, {self.max_seq}]")

    @property
    def max_seq(self) -> int:
        """Positions the buffers can hold."""
        return self.k.shape[2]

    def __repr__(self) -> str:  # the shape, not the numbers
        n_layer, n_kv_head, max_seq, d_head = self.k.shape
        shape = f"[n_layer={n_layer}, n_kv_head={n_kv_head}, max_seq={max_seq}, d_head={d_head}]"
        return f"KVCache(k, v: {shape}, length={self.length})"

    @property
    def nbytes(self) -> int:
        """Bytes the keys and values occupy (both buffers, whole capacity)."""
        return self.k.nbytes + self.v.nbytes

    def check_room(self, n_new: int) -> None:
        """Raise ContextOverflowError unless `n_new` more positions fit."""
        if self.length + n_new > self.max_seq:
            raise ContextOverflowError(
                f"the KV cache holds {self.max_seq} positions and has {self.length} filled; "
                f"{n_new} more do not fit. Make a larger cache: model.new_cache(max_seq)"
            )

    def update(
        self, layer: int, k: np.ndarray, v: np.ndarray, positions: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Write the new tokens' keys and values of one layer at their positions (by default
        [length, length + n_new)) and return every key and value up to the last of them.
        k, v: [n_kv_head, n_new, d_head], positions: [n_new] -> ([n_kv_head, n_keys, d_head], same).
        `length` itself moves in `advance`, once every layer has written."""
        if positions is None:
            positions = np.arange(self.length, self.length + k.shape[1])  # [n_new]
        self.k[layer][:, positions] = k
        self.v[layer][:, positions] = v
        n_keys = int(positions.max()) + 1
        return self.k[layer, :, :n_keys], self.v[layer, :, :n_keys]  # views, no copy

    def advance(self, n_new: int) -> None:
        """Mark `n_new` more positions as filled."""
        self.length += n_new

    def reset(self) -> None:
        """Forget every position (the buffers stay allocated)."""
        self.length = 0


@dataclass
class BatchKVCache:
    """One KV cache slot per sequence of a batch; each sequence has its own length (lesson 07)."""

    k: np.ndarray  # [n_layer, n_batch, n_kv_head, max_seq, d_head]
    v: np.ndarray  # [n_layer, n_batch, n_kv_head, max_seq, d_head]
    lengths: np.ndarray  # [n_batch] int: positions filled in each slot

    @classmethod
    def empty(cls, model, n_batch: int, max_seq: int) -> BatchKVCache:
        """Zeroed slots of `max_seq` positions for `model`; an InsufficientMemoryError at once if
        they would not fit in the memory available now."""
        c = model.config
        if not is_whole(n_batch) or n_batch < 1:
            raise InvalidInputError(f"n_batch={n_batch!r} must be a whole number >= 1 (one slot per sequence)")
        check_max_seq(max_seq, c.n_ctx)
        shape = (c.n_layer, int(n_batch), c.n_kv_head, int(max_seq), c.d_head)
        check_fits(
            2 * math.prod(shape) * 4,
            f"the KV cache of a batch of {n_batch}",
            "generate fewer sequences or fewer tokens at once",
        )
        return cls(np.zeros(shape, np.float32), np.zeros(shape, np.float32), np.zeros(n_batch, np.int64))  # shape

    @property
    def max_seq(self) -> int:
        """Positions each slot can hold."""
        return self.k.shape[3]

    def __repr__(self) -> str:  # the shape, not the numbers
        n_layer, n_batch, n_kv_head, max_seq, d_head = self.k.shape
        shape = f"[n_layer={n_layer}, n_batch={n_batch}, n_kv_head={n_kv_head}, max_seq={max_seq}, d_head={d_head}]"
        return f"BatchKVCache(k, v: {shape}, lengths={self.lengths.tolist()})"

    def slot(self, b: int) -> KVCache:
        """Sequence b's part as an ordinary KVCache (a view: writes land in this batch cache)."""
        return KVCache(k=self.k[:, b], v=self.v[:, b], length=int(self.lengths[b]))

    def select(self, rows: np.ndarray) -> BatchSlots:
        """The slots one batched step writes: row i of the step is slot rows[i]."""
        return BatchSlots(self, rows)


@dataclass
class BatchSlots:
    """Some slots of a BatchKVCache, in the order of a step's rows: what `self_attention` writes
    a batch's new keys into and reads each sequence's own keys from."""

    cache: BatchKVCache
    rows: np.ndarray  # [n_rows] slot of each row

    def update(self, layer: int, k: np.ndarray, v: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write each row's new keys and values at its positions; return every row's keys and
        values up to the furthest position. Positions past a row's own are masked by attention.
        k, v: [n_rows, n_kv_head, n_q, d_head], positions: [n_rows, n_q] -> 2 x [n_rows, n_kv_head, n_keys, d_head]"""
        c, rows = self.cache, self.rows
        c.k[layer, rows[:, None], :, positions] = k.swapaxes(1, 2)  # [n_rows, n_q, n_kv_head, d_head]
        c.v[layer, rows[:, None], :, positions] = v.swapaxes(1, 2)
        n_keys = int(positions.max()) + 1
        if np.array_equal(rows, np.arange(c.k.shape[1])):  # every slot in order: a view, not a copy
            return c.k[layer, :, :, :n_keys], c.v[layer, :, :, :n_keys]  # [n_rows, n_kv_head, n_keys, d_head]
        return c.k[layer, rows, :, :n_keys], c.v[layer, rows, :, :n_keys]  # same, gathered


def check_max_seq(max_seq, n_ctx: int) -> None:
    """A cache's positions: a whole number in [1, n_ctx] (Model.new_cache, BatchKVCache.empty)."""
    if not is_whole(max_seq) or not 1 <= max_seq <= n_ctx:
        raise InvalidInputError(
            f"max_seq={max_seq!r} must be an integer in [1, n_ctx={n_ctx}]: "
            "positions past n_ctx have no position embedding"
        )


_IN_USE: dict[int, tuple[int, int]] = {}  # id() of a cache being written -> (thread, depth)
_IN_USE_LOCK = threading.Lock()


def check_cache(cache, n_layer: int, n_kv_head: int, d_head: int, n_new: int = 0, n_ctx: int | None = None) -> None:
    """What a model call needs of the cache it will write: a KVCache of the model's shape
    (`check_shape`) with room for `n_new` more positions, within the model's `n_ctx`."""
    if not isinstance(cache, KVCache):
        raise InvalidInputError(f"cache must be a KVCache (model.new_cache()), not {type(cache).__name__}")
    cache.check_shape(n_layer, n_kv_head, d_head)
    if n_ctx is not None and cache.length + n_new > n_ctx:
        raise ContextOverflowError(
            f"{cache.length} cached + {n_new} new positions exceed the context window "
            f"n_ctx={n_ctx}; shorten the prompt or generate fewer tokens"
        )
    cache.check_room(n_new)


@contextmanager
def in_use(cache) -> Iterator[None]:
    """Claim `cache` for one model call: a call from another thread on the same cache while this
    one runs (a cache shared between threads) is an error, not a race. Two calls that both checked
    the length before either advanced it would write past the end of the buffers. The thread
    holding the claim may claim again (Model.decode claims, then its backend does). (Whether it
    is a cache at all is `check_cache`'s to say, inside the claim.)"""
    me = threading.get_ident()
    with _IN_USE_LOCK:
        owner, depth = _IN_USE.get(id(cache), (me, 0))
        if owner != me:
            raise InvalidInputError(
                "this KV cache is in use by another call (from another thread?); "
                "a cache holds one sequence: give each thread its own, model.new_cache()"
            )
        _IN_USE[id(cache)] = (me, depth + 1)
    try:
        yield
    finally:
        with _IN_USE_LOCK:
            if depth:
                _IN_USE[id(cache)] = (me, depth)
            else:
                del _IN_USE[id(cache)]


def kv_bytes_per_token(n_layer: int, n_kv_head: int, d_head: int, kv_size: int = 4) -> int:
    """Bytes one position adds to a KV cache: a key and a value of d_head numbers, per layer and
    per KV head, kv_size bytes each: 2 n_layer n_kv_head d_head kv_size. The one formula the
    model (`new_cache`'s default size) and the counts (`Arch.kv_bytes_per_token`) both use.

    Grouped-query attention shrinks it by n_head / n_kv_head: Llama 3 8B caches 8 heads of 128
    for its 32 query heads, 131,072 bytes a token in bfloat16 instead of 524,288.

        >>> kv_bytes_per_token(n_layer=32, n_kv_head=8, d_head=128, kv_size=2)
        131072
    """
    return 2 * n_layer * n_kv_head * d_head * kv_size


def kv_write_cost(n_new: int, n_kv_head: int, d_head: int, kv_size: int = 4, act_size: int = 4) -> Cost:
    """`KVCache.update`: the new tokens' keys and values (2 n_kv_head n_new d_head numbers) are read
    from the activations and written into the cache. No FLOPs: it is a copy."""
    n = 2 * n_kv_head * n_new * d_head
    return Cost(act_read=n * act_size, kv_write=n * kv_size)
