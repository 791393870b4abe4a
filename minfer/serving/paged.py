"""The paged KV cache: keys and values in fixed-size blocks shared by every sequence (lesson 14).

A contiguous cache reserves `max_seq` positions per sequence up front, most of which a short
answer never fills. vLLM's PagedAttention (Kwon et al., 2023) stores the cache as a pool of
blocks of `block_size` positions instead, as an operating system pages memory: a sequence owns
a *block table*, the physical block of each of its logical blocks, and gets a new block only
when the last one is full. Nothing is reserved that is not used, except the unfilled tail of
each sequence's last block; and two sequences with the same prefix can point at the same
blocks (prefix caching, `minfer.serving.blocks`).

Position p of a sequence lives in physical block table[p // block_size], at offset
p % block_size (`slot_of`). Attention reads keys through the table:
- `PagedSequence` and `PagedBatch` here are the readable reference: they *gather* a
  sequence's blocks into a contiguous array and attend over it as over any cache (so the
  block loops of `minfer.model` and `minfer.llama` run unchanged);
- the Numba backend's decode step reads the blocks in place, no gather
  (`minfer.fast.kernels.paged_decode_attention`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minfer.checks import check_fits, whole_number
from minfer.errors import ContextOverflowError, InvalidInputError

BLOCK_SIZE = 16  # positions per block: vLLM's default, small enough that a tail wastes little


@dataclass
class PagedKVCache:
    """The pool: `n_blocks` blocks of `block_size` positions, for every layer and KV head.

    The same 5-D layout as a `BatchKVCache` with blocks in place of sequences, so a contiguous
    batch cache is the special case of one block of max_seq positions per sequence."""

    k: np.ndarray  # [n_layer, n_blocks, n_kv_head, block_size, d_head]
    v: np.ndarray  # [n_layer, n_blocks, n_kv_head, block_size, d_head]

    @classmethod
    def empty(cls, config, n_blocks: int, block_size: int = BLOCK_SIZE) -> PagedKVCache:
        """A zeroed pool for a model's config; an InsufficientMemoryError at once if it would not fit."""
        n_blocks, block_size = whole_number(n_blocks, "kv_blocks"), whole_number(block_size, "block_size")
        shape = (config.n_layer, n_blocks, config.n_kv_head, block_size, config.d_head)
        check_fits(2 * math.prod(shape) * 4, f"a paged KV cache of {n_blocks:,} blocks", "ask for fewer kv_blocks")
        return cls(np.zeros(shape, np.float32), np.zeros(shape, np.float32))  # shape

    @property
    def n_blocks(self) -> int:
        return self.k.shape[1]

    @property
    def block_size(self) -> int:
        return self.k.shape[3]

    @property
    def nbytes(self) -> int:
        """Bytes of keys and values in the whole pool."""
        return self.k.nbytes + self.v.nbytes

    def __repr__(self) -> str:  # the shape, not the numbers
        n_layer, n_blocks, n_kv_head, block_size, d_head = self.k.shape
        return (
            f"PagedKVCache(k, v: [n_layer={n_layer}, n_blocks={n_blocks}, n_kv_head={n_kv_head}, "
            f"block_size={block_size}, d_head={d_head}])"
        )


def slot_of(table: np.ndarray, position: int, block_size: int) -> tuple[int, int]:
    """The block-table lookup: where a sequence's position lives in the pool.
    -> (physical block, offset in it). table: [n_table] physical block of each logical block.

        >>> slot_of(np.array([7, 2, 9]), position=20, block_size=16)   # logical block 1, offset 4
        (2, 4)
    """
    return int(table[position // block_size]), position % block_size


def write(cache: PagedKVCache, layer: int, table: np.ndarray, k: np.ndarray, v: np.ndarray, positions: np.ndarray):
    """Store new keys and values of one sequence at their positions, through its block table.
    k, v: [n_kv_head, n_new, d_head], positions: [n_new]"""
    blocks, offsets = table[positions // cache.block_size], positions % cache.block_size  # [n_new] each
    cache.k[layer, blocks, :, offsets] = k.swapaxes(0, 1)  # [n_new, n_kv_head, d_head]
    cache.v[layer, blocks, :, offsets] = v.swapaxes(0, 1)


def gather(pool: np.ndarray, table: np.ndarray, n_keys: int) -> np.ndarray:
    """A sequence's first n_keys positions, copied out of its blocks into one contiguous array.
    pool: [n_blocks, n_kv_head, block_size, d_head] (one layer), table: [n_table] -> [n_kv_head, n_keys, d_head]"""
    n_blocks, (_, n_kv_head, block_size, d_head) = -(-n_keys // pool.shape[2]), pool.shape
    blocks = pool[table[:n_blocks]].swapaxes(0, 1)  # [n_kv_head, n_blocks, block_size, d_head], a copy
    return blocks.reshape(n_kv_head, n_blocks * block_size, d_head)[:, :n_keys]  # [n_kv_head, n_keys, d_head]


@dataclass
class PagedSequence:
    """One sequence's view of the pool, used like a `KVCache` (`length`, `update`, `advance`):
    what a prefill chunk writes into. Keys come back gathered, so the model's ordinary block
    loop (and the Numba backend's BLAS prefill) attend over them unchanged."""

    cache: PagedKVCache
    table: np.ndarray  # [n_table] int: physical block of each logical block; room for every position written
    length: int = 0  # positions already in the cache (computed, or shared from the prefix cache)

    def update(self, layer: int, k: np.ndarray, v: np.ndarray, positions: np.ndarray | None = None):
        """Write the new positions' keys and values of one layer; return every key and value
        up to the last of them. k, v: [n_kv_head, n_new, d_head] -> 2 x [n_kv_head, n_keys, d_head]"""
        if positions is None:
            positions = np.arange(self.length, self.length + k.shape[1])  # [n_new]
        write(self.cache, layer, self.table, k, v, positions)
        n_keys = int(positions.max()) + 1
        return gather(self.cache.k[layer], self.table, n_keys), gather(self.cache.v[layer], self.table, n_keys)

    def advance(self, n_new: int) -> None:
        """Mark n_new more positions as computed (after every layer has written them)."""
        self.length += n_new


@dataclass
class PagedBatch:
    """Several sequences' views for one batched decode step (the paged `BatchSlots`): row i
    reads and writes through tables[i]."""

    cache: PagedKVCache
    tables: np.ndarray  # [n_rows, n_table] int: each row's block table, padded past its blocks

    def update(self, layer: int, k: np.ndarray, v: np.ndarray, positions: np.ndarray):
        """Write each row's new keys and values at its positions; return every row's keys and
        values gathered up to the furthest position (positions past a row's own are masked by
        attention). k, v: [n_rows, n_kv_head, n_q, d_head], positions: [n_rows, n_q]
        -> 2 x [n_rows, n_kv_head, n_keys, d_head]"""
        for table, k_row, v_row, pos in zip(self.tables, k, v, positions):
            write(self.cache, layer, table, k_row, v_row, pos)
        n_keys = int(positions.max()) + 1
        k_pool, v_pool = self.cache.k[layer], self.cache.v[layer]  # [n_blocks, n_kv_head, block_size, d_head]
        keys = np.stack([gather(k_pool, t, n_keys) for t in self.tables])  # [n_rows, n_kv_head, n_keys, d_head]
        values = np.stack([gather(v_pool, t, n_keys) for t in self.tables])  # same
        return keys, values


def check_paged_step(config, tokens, positions, cache: PagedKVCache, tables) -> tuple[np.ndarray, ...]:
    """What a paged decode step indexes by must fit (the compiled kernels do not check bounds):
    the pool's shape against the config, one token per row in the vocabulary, each row's
    position within n_ctx and within its table, every table entry a block of the pool.
    -> (tokens, positions, tables) as int64 [n_rows], int64 [n_rows], int32 [n_rows, n_table]"""
    c = config
    shape = (c.n_layer, None, c.n_kv_head, None, c.d_head)
    for a in (cache.k, cache.v):
        if a.dtype != np.float32 or a.ndim != 5 or any(n is not None and n != m for n, m in zip(shape, a.shape)):
            raise InvalidInputError(
                f"the paged cache is {a.dtype} {list(a.shape)}; this model needs float32 [n_layer={c.n_layer}, "
                f"n_blocks, n_kv_head={c.n_kv_head}, block_size, d_head={c.d_head}]: make it with PagedKVCache.empty"
            )
    if cache.v.shape != cache.k.shape or not (cache.k.flags.c_contiguous and cache.v.flags.c_contiguous):
        raise InvalidInputError("the paged cache's k and v must be C-contiguous pools of one shape: PagedKVCache.empty")
    tokens, positions = np.asarray(tokens, np.int64), np.asarray(positions, np.int64)  # [n_rows] each
    given = np.asarray(tables)  # [n_rows, n_table]
    if given.size and not np.issubdtype(given.dtype, np.integer):
        raise InvalidInputError(f"block tables must hold integers (block numbers), not {given.dtype}")
    tables = np.ascontiguousarray(given, np.int32)  # [n_rows, n_table]
    if (tables != given).any():  # the cast wrapped a number past int32's range: no block of any pool
        raise InvalidInputError(f"block tables must name blocks in [0, {cache.n_blocks})")
    if tokens.ndim != 1 or tokens.shape != positions.shape or tables.ndim != 2 or len(tables) != len(tokens):
        raise InvalidInputError("a paged step takes one token, one position and one block table per row")
    if len(tokens) and (tokens.min() < 0 or tokens.max() >= c.n_vocab):
        raise InvalidInputError(f"token ids must be in the vocabulary [0, {c.n_vocab})")
    if len(tokens) and (positions.min() < 0 or positions.max() >= min(c.n_ctx, tables.shape[1] * cache.block_size)):
        raise ContextOverflowError(
            f"a position in {positions.tolist()} is past the context window n_ctx={c.n_ctx} or its block table"
        )
    used = tables[np.arange(tables.shape[1])[None, :] <= (positions // cache.block_size)[:, None]]  # blocks read
    if used.size and (used.min() < 0 or used.max() >= cache.n_blocks):
        raise InvalidInputError(f"block tables must name blocks in [0, {cache.n_blocks})")
    return tokens, positions, tables
