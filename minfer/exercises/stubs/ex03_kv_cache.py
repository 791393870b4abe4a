"""Exercise 03: the KV cache (lesson 05, the KV cache and decode).

Write the two functions below in NumPy, then grade them:

    minfer exercises check 03

One layer's cache is two preallocated buffers, written by index, never grown:

    k_cache, v_cache: [n_head, max_seq, d_head]
    length: how many positions are filled (0 .. max_seq); the next token goes at index `length`

1. `append_kv(k_cache, v_cache, length, k_new, v_new) -> new_length`
   k_new, v_new: [n_head, n_new, d_head], the keys and values of n_new new tokens. Write them
   IN PLACE into positions length .. length + n_new - 1 of the caches (leave every other
   position as it is) and return the new length, length + n_new.

2. `cached_attention(q, k_cache, v_cache, length) -> [n_head, n_new, d_head]`
   q: [n_head, n_new, d_head], the queries of the n_new newest tokens, whose keys and values
   are already in the cache: they are the last n_new of the first `length` positions.
   Attend over the first `length` cached positions only (what lies beyond is stale), causally:
   new query i sits at position length - n_new + i and sees keys j <= that position.
   scores = q k^T / sqrt(d_head); a `softmax` helper is given below.

The checks fill the buffers with stale values, try a prefill, single decode tokens, the last
free slot, and run a whole decode loop against attention without a cache.
"""

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (given: exercise 01's). x: [..., n] -> [..., n]"""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def append_kv(k_cache: np.ndarray, v_cache: np.ndarray, length: int, k_new: np.ndarray, v_new: np.ndarray) -> int:
    """Write k_new, v_new at [length, length + n_new) of the caches, in place; return the new length.

    k_cache, v_cache: [n_head, max_seq, d_head], k_new, v_new: [n_head, n_new, d_head] -> int
    """
    raise NotImplementedError("write me: append_kv")


def cached_attention(q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, length: int) -> np.ndarray:
    """Causal attention of the n_new newest tokens over the first `length` cached positions.

    q: [n_head, n_new, d_head], k_cache, v_cache: [n_head, max_seq, d_head] -> [n_head, n_new, d_head]
    """
    raise NotImplementedError("write me: cached_attention")
