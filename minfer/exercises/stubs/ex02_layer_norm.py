"""Exercise 02: layer norm (lesson 02, one forward pass).

Write `layer_norm` below in NumPy, then grade it:

    minfer exercises check 02

    x: [n_seq, n_embd], weight: [n_embd], bias: [n_embd] -> [n_seq, n_embd]

Normalise each row of x (each token's vector) to mean 0 and variance 1, then scale by
`weight` and shift by `bias`:

    y = (x - mean) / sqrt(var + eps) * weight + bias

`mean` and `var` are taken over the last axis (n_embd numbers per row). The variance is the
biased one, as PyTorch's LayerNorm (and so GPT-2) computes it. `eps` keeps a constant row
(variance 0) from dividing by zero.

The checks try several shapes, constant rows, rows with a tiny variance and another eps.
"""

import numpy as np


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Normalise each row to mean 0, variance 1, then scale and shift.

    x: [n_seq, n_embd], weight/bias: [n_embd] -> [n_seq, n_embd]
    """
    raise NotImplementedError("write me: layer norm")
