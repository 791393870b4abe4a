"""The embedding gather: token rows plus position rows (twin: minfer.fast.kernels.quant.embed_numpy,
which is minfer.embed.embed on dequantized rows)."""

from __future__ import annotations

import numpy as np
from numba import njit


# ids: [n_rows] int, wte: [n_vocab, n_embd] f32 or int8, scale: [n_vocab] or [0],
# wpe: [n_ctx, n_embd] f32, positions: [n_rows] int -> out: [n_rows, n_embd]
@njit(cache=True)
def embed(ids, wte, scale, wpe, positions, out):
    """out[r] = wte[ids[r]] (times its row's scale when wte is int8) + wpe[positions[r]]: each
    row at its own absolute position. A gather: only the picked rows are read."""
    for r in range(ids.shape[0]):
        s = np.float32(1.0) if scale.shape[0] == 0 else scale[ids[r]]
        for i in range(wte.shape[1]):
            out[r, i] = np.float32(wte[ids[r], i]) * s + wpe[positions[r], i]
