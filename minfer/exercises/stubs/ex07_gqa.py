"""Exercise 07: grouped-query attention for one decode step (lesson 13, from GPT-2 to Llama).

Write `grouped_decode_attention` below in NumPy, then grade it:

    minfer exercises check 07

One layer, one new token. Its queries have n_head heads; the cache has only n_kv_head heads of
keys and values (n_kv_head divides n_head), each shared by a group of n_head / n_kv_head
consecutive query heads:

    q: [n_head, d_head]                        the new token's query, every head
    k_cache, v_cache: [n_kv_head, max_seq, d_head]
    length: positions filled (1 .. max_seq); the new token's own key and value are already
            in the cache, at index length - 1; positions from `length` on hold stale values
    -> [n_head, d_head]

    group = n_head // n_kv_head
    query head h reads KV head h // group  (heads 0 .. group-1 share KV head 0, and so on)

For each query head: scores = q[h] . k[h // group, j] / sqrt(d_head) over the first `length`
positions j, a softmax over those scores, and the scores' weighted sum of the values. The new
token is the last position, so it may see every cached key: there is nothing to mask. A
`softmax` helper is given below.

Hint: a group's queries can be stacked, q.reshape(n_kv_head, group, d_head), so each KV head
is multiplied once for its whole group (what makes GQA cheap to decode); copying each KV head
`group` times (np.repeat) gives the same numbers.

The checks try 3 and 4 query heads per KV head, one KV head for all (MQA), one per query head
(MHA), a cache of one position, a full cache, and a decode loop against minfer's attention.
"""

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (given: exercise 01's). x: [..., n] -> [..., n]"""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def grouped_decode_attention(q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, length: int) -> np.ndarray:
    """One new token's attention over the first `length` cached positions, KV heads shared by groups.

    q: [n_head, d_head], k_cache, v_cache: [n_kv_head, max_seq, d_head] -> [n_head, d_head]
    """
    raise NotImplementedError("write me: grouped_decode_attention")
