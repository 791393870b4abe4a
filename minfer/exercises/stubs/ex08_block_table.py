"""Exercise 08: the block table of a paged KV cache (lesson 14, paged attention and prefix caching).

Write the three functions below in NumPy, then grade them:

    minfer exercises check 08

A paged cache keeps every sequence's keys and values in one pool of fixed-size blocks, for one
layer:

    k_pool, v_pool: [n_blocks, n_kv_head, block_size, d_head]

A sequence owns a *block table*, `table: [n_table]` of ints: table[i] is the physical block (a
row of the pool) that holds its logical block i, that is its positions
i * block_size .. (i + 1) * block_size - 1. The blocks of one sequence are anywhere in the pool,
in any order (the table [7, 2, 9] puts positions 0-15 in block 7, 16-31 in block 2, ...).

1. `slot_of(table, position, block_size) -> (block, offset)`
   Where a position lives: the physical block of its logical block, and its offset inside that
   block. slot_of([7, 2, 9], 20, 16) == (2, 4).

2. `write_kv(k_pool, v_pool, table, position, k, v) -> None`
   k, v: [n_kv_head, d_head], the key and value of ONE position (every KV head). Write them IN
   PLACE into the pools at that position's slot; leave every other slot as it is.

3. `read_kv(pool, table, n_keys) -> [n_kv_head, n_keys, d_head]`
   Gather a sequence's first n_keys positions out of its blocks into one contiguous array, in
   position order, as attention reads them (the block size is pool.shape[2]). The last block may
   be only partly filled: return exactly n_keys positions.

The checks use shuffled tables, block size 1, positions at the edges of blocks, pools full of
other sequences' values, and a round trip: positions written one by one through a table must
read back as the contiguous keys they were.
"""

import numpy as np


def slot_of(table: np.ndarray, position: int, block_size: int) -> tuple[int, int]:
    """The physical block and the offset in it of a sequence's `position`.

    table: [n_table] int -> (block, offset)
    """
    raise NotImplementedError("write me: slot_of")


def write_kv(
    k_pool: np.ndarray, v_pool: np.ndarray, table: np.ndarray, position: int, k: np.ndarray, v: np.ndarray
) -> None:
    """Write one position's key and value into the pools, in place, through the block table.

    k_pool, v_pool: [n_blocks, n_kv_head, block_size, d_head], table: [n_table], k, v: [n_kv_head, d_head]
    """
    raise NotImplementedError("write me: write_kv")


def read_kv(pool: np.ndarray, table: np.ndarray, n_keys: int) -> np.ndarray:
    """A sequence's first n_keys positions, gathered from its blocks in position order.

    pool: [n_blocks, n_kv_head, block_size, d_head], table: [n_table] -> [n_kv_head, n_keys, d_head]
    """
    raise NotImplementedError("write me: read_kv")
