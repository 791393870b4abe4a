"""RoPE for the Llama family's compiled decode: the rotation table of a step's positions, and the
rotation of q or k by it (twins: minfer.rope's rope_tables and apply_rope, rotate-half layout).

The table is made once per step, [2, n_rows, d_head] (cos, then sin, of each row's angles), and
every layer's q and k are rotated by it. Computed per step rather than kept as a table of every
position up to the cache's max_seq: a step needs d_head / 2 cosines and sines per token (about a
microsecond, once for all layers), while a whole table (max_seq x d_head x 8 bytes, 128 MiB at
Llama 3's 128k context) would have to live on some shared object and be rebuilt per cache size.
The angles are position x inv_freq in float64, as the reference computes them, then rounded to
float32: the same table, to the last bit on most positions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from minfer.rope import apply_rope, rope_tables


# positions: [n_rows] int, inv_freq: [d_head // 2] float64 -> out: [2, n_rows, d_head] f32
@njit(cache=True)
def rope_table(positions, inv_freq, out):
    """out[0, r] = cos, out[1, r] = sin of position positions[r] times each pair's frequency,
    each pair's angle written twice (dimensions i and i + d_head / 2), as rope_tables lays it out."""
    half = inv_freq.shape[0]
    for r in range(positions.shape[0]):
        for i in range(half):
            angle = np.float64(positions[r]) * inv_freq[i]
            c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
            out[0, r, i], out[0, r, half + i] = c, c
            out[1, r, i], out[1, r, half + i] = s, s


def rope_table_numpy(positions: np.ndarray, inv_freq: np.ndarray) -> np.ndarray:
    """rope_table's twin: minfer.rope.rope_tables, cos and sin stacked. -> [2, n_rows, d_head]"""
    return np.stack(rope_tables(positions, inv_freq))  # [2, n_rows, d_head]


# x: [n_rows, n_heads, d_head] f32, table: [2, n_rows, d_head] (rope_table's) -> out: [n_rows, n_heads, d_head]
@njit(cache=True)
def rope(x, table, out):
    """Rotate each head's pairs (i, i + d_head / 2) of row r by row r's angles:
    out = x cos + rotate_half(x) sin, with rotate_half(x1, x2) = (-x2, x1). Each pair is read
    before either half is written, so out may be x. No fastmath: the same products and sums as
    the twin, in the same order."""
    n_rows, n_heads, d_head = x.shape
    half = d_head // 2
    for r in range(n_rows):
        cos, sin = table[0, r], table[1, r]  # [d_head] each
        for h in range(n_heads):
            xh, oh = x[r, h], out[r, h]  # [d_head] each
            for i in range(half):
                x1, x2 = xh[i], xh[half + i]
                oh[i] = x1 * cos[i] + -x2 * sin[i]
                oh[half + i] = x2 * cos[half + i] + x1 * sin[half + i]


def rope_numpy(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """rope's twin: minfer.rope.apply_rope with the rows as its positions.
    x: [n_rows, n_heads, d_head], table: [2, n_rows, d_head] -> [n_rows, n_heads, d_head]"""
    return apply_rope(x.transpose(1, 0, 2), table[0], table[1]).transpose(1, 0, 2)  # [n_rows, n_heads, d_head]
