"""The embedding gather: token rows plus position rows (twin: minfer.embed.embed)."""

from __future__ import annotations

from numba import njit


# ids: [n_seq] int, wte: [n_vocab, n_embd] f32, wpe: [n_ctx, n_embd] f32, start -> out: [n_seq, n_embd]
@njit(cache=True)
def embed(ids, wte, wpe, start, out):
    """out[s] = wte[ids[s]] + wpe[start + s]: `start` is the absolute position of ids[0]
    (cache.length during decode). A gather: only the picked rows are read."""
    for s in range(ids.shape[0]):
        for i in range(wte.shape[1]):
            out[s, i] = wte[ids[s], i] + wpe[start + s, i]
