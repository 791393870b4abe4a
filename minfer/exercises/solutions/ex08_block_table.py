"""Exercise 08, reference solution: the block table of a paged KV cache."""

import numpy as np


def slot_of(table: np.ndarray, position: int, block_size: int) -> tuple[int, int]:
    """The physical block and the offset in it of a sequence's `position`.

    table: [n_table] int -> (block, offset)
    """
    return int(table[position // block_size]), position % block_size  # logical block -> physical


def write_kv(
    k_pool: np.ndarray, v_pool: np.ndarray, table: np.ndarray, position: int, k: np.ndarray, v: np.ndarray
) -> None:
    """Write one position's key and value into the pools, in place, through the block table.

    k_pool, v_pool: [n_blocks, n_kv_head, block_size, d_head], table: [n_table], k, v: [n_kv_head, d_head]
    """
    block, offset = slot_of(table, position, k_pool.shape[2])
    k_pool[block, :, offset] = k  # [n_kv_head, d_head]: the offset indexes axis 2, after the heads
    v_pool[block, :, offset] = v


def read_kv(pool: np.ndarray, table: np.ndarray, n_keys: int) -> np.ndarray:
    """A sequence's first n_keys positions, gathered from its blocks in position order.

    pool: [n_blocks, n_kv_head, block_size, d_head], table: [n_table] -> [n_kv_head, n_keys, d_head]
    """
    n_blocks, n_kv_head, block_size, d_head = pool.shape
    used = -(-n_keys // block_size)  # blocks holding the first n_keys positions (the last maybe partly)
    blocks = pool[table[:used]]  # [used, n_kv_head, block_size, d_head], in logical order
    keys = blocks.transpose(1, 0, 2, 3).reshape(n_kv_head, used * block_size, d_head)  # [n_kv_head, used * bs, d_head]
    return keys[:, :n_keys]  # [n_kv_head, n_keys, d_head]: the last block's unfilled tail dropped
