"""Exercise 02, reference solution: layer norm."""

import numpy as np


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Normalise each row to mean 0, variance 1, then scale and shift.

    x: [n_seq, n_embd], weight/bias: [n_embd] -> [n_seq, n_embd]
    """
    mean = x.mean(axis=-1, keepdims=True)  # [n_seq, 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [n_seq, 1] biased: divided by n_embd
    return (x - mean) / np.sqrt(var + eps) * weight + bias  # [n_seq, n_embd]
