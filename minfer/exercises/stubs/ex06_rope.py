"""Exercise 06: rotary position embedding, RoPE (lesson 13, from GPT-2 to Llama).

Write `apply_rope` below in NumPy, then grade it:

    minfer exercises check 06

    x: [n_head, n_seq, d_head]   the queries (or keys) of n_seq tokens, every head
    positions: [n_seq]           each token's absolute position (after a KV cache they do not
                                 start at 0)
    theta: float                 RoPE's base (10000 in Llama 2, 500000 in Llama 3)
    -> [n_head, n_seq, d_head]

RoPE turns each pair of dimensions of a query or key by an angle that grows with the token's
position, every head alike. Pair i turns by `inv_freq[i]` radians per position:

    inv_freq[i] = theta ** (-2 i / d_head)        i = 0 .. d_head/2 - 1
    angle[p, i] = positions[p] * inv_freq[i]      (in float64, NumPy's default)

The pairs are laid out as Hugging Face checkpoints store them ("rotate-half"): dimension i is
paired with dimension i + d_head/2, not with its neighbour i + 1. With x1 = x[..., :d_head/2]
and x2 = x[..., d_head/2:], each pair (x1[i], x2[i]) turns by angle[p, i]:

    first half:   x1 cos(angle) - x2 sin(angle)
    second half:  x2 cos(angle) + x1 sin(angle)

In one line, as minfer and Hugging Face write it: x * cos + rotate_half(x) * sin, where
rotate_half(x) = concatenate(-x2, x1) and cos, sin hold each pair's angle twice,
[n_seq, d_head] (both halves). Return float32; do not modify x.

The checks try odd shapes (3 heads of 20 dimensions, one token, one pair), positions that start
after a cache, another theta, and positions near 4,000.
"""

import numpy as np


def apply_rope(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """Rotate each pair (i, i + d_head/2) of every head's vectors by its position's angle.

    x: [n_head, n_seq, d_head], positions: [n_seq], theta: float -> [n_head, n_seq, d_head]
    """
    raise NotImplementedError("write me: apply_rope")
