"""Exercise 01: softmax and causal attention (lesson 03, attention and the causal mask).

Write the two functions below in NumPy, then grade them:

    minfer exercises check 01

1. `softmax(x)`: softmax over the last axis. x: [..., n] -> [..., n]; every row sums to 1.
   It must stay finite for large logits (1000 and more) and give 0 where x is -inf.

2. `causal_attention(q, k, v)`: scaled dot-product attention with a causal mask, every head
   at once.
       q: [n_head, n_q, d_head], k, v: [n_head, n_k, d_head], n_k >= n_q
       -> [n_head, n_q, d_head]
   scores = q k^T / sqrt(d_head)                  [n_head, n_q, n_k]
   The n_q queries are the LAST n_q of the n_k positions (the first n_k - n_q keys come from
   a KV cache): query i sits at position n_k - n_q + i and may see keys j <= that position
   only. Set the other scores to -inf, take the softmax over the keys, and weight v with it.

The checks try odd shapes: 3 heads of 20 dimensions, a single query, n_q < n_k.
"""

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis. x: [..., n] -> [..., n]"""
    raise NotImplementedError("write me: softmax over the last axis")


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(d_head) + causal mask) v.

    q: [n_head, n_q, d_head], k, v: [n_head, n_k, d_head] with n_k >= n_q -> [n_head, n_q, d_head]
    """
    raise NotImplementedError("write me: causal attention")
