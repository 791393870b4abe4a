"""The KV cache: keys and values of every token seen so far, so decode never recomputes them
(lesson 05).

Preallocated once, written by index at `length`, never grown by concatenation: the memory a
generation needs is known before it starts, and it is visible (`cache.nbytes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minfer.cost import Cost
from minfer.errors import ContextOverflowError


@dataclass
class KVCache:
    """Keys and values of `length` positions, for every layer and head."""

    k: np.ndarray  # [n_layer, n_head, max_seq, d_head]
    v: np.ndarray  # [n_layer, n_head, max_seq, d_head]
    length: int = 0  # positions filled; the next token is written at this index

    @classmethod
    def empty(cls, n_layer: int, n_head: int, max_seq: int, d_head: int) -> KVCache:
        """A zeroed cache with room for `max_seq` positions."""
        shape = (n_layer, n_head, max_seq, d_head)
        return cls(k=np.zeros(shape, np.float32), v=np.zeros(shape, np.float32))  # shape

    @property
    def max_seq(self) -> int:
        """Positions the buffers can hold."""
        return self.k.shape[2]

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

    def update(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write the new tokens' keys and values of one layer at [length, length + n_new) and
        return all keys and values so far. k, v: [n_head, n_new, d_head]
        -> ([n_head, length + n_new, d_head], same). `length` itself moves in `advance`, once
        every layer has written."""
        end = self.length + k.shape[1]
        self.k[layer, :, self.length : end] = k
        self.v[layer, :, self.length : end] = v
        return self.k[layer, :, :end], self.v[layer, :, :end]  # views, no copy

    def advance(self, n_new: int) -> None:
        """Mark `n_new` more positions as filled."""
        self.length += n_new

    def reset(self) -> None:
        """Forget every position (the buffers stay allocated)."""
        self.length = 0


def kv_write_cost(n_new: int, n_head: int, d_head: int, kv_size: int = 4, act_size: int = 4) -> Cost:
    """`KVCache.update`: the new tokens' keys and values (2 n_head n_new d_head numbers) are read
    from the activations and written into the cache. No FLOPs: it is a copy."""
    n = 2 * n_head * n_new * d_head
    return Cost(act_read=n * act_size, kv_write=n * kv_size)
