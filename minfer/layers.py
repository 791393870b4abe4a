"""The small numeric building blocks every stage uses: linear, layer norm, GELU, softmax.

Each is a pure NumPy function on float32 arrays. Later, each gets a Numba twin that must equal it.
"""

from __future__ import annotations

import numpy as np

_SQRT_2_OVER_PI = np.float32(np.sqrt(2.0 / np.pi))


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x @ weight + bias.  x: [n_seq, n_in], weight: [n_in, n_out], bias: [n_out] -> [n_seq, n_out]"""
    return x @ weight + bias  # [n_seq, n_out]


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Normalise each row to mean 0, variance 1, then scale and shift.

    x: [n_seq, n_embd], weight/bias: [n_embd] -> [n_seq, n_embd]. The variance is the biased one
    (divide by n_embd), as PyTorch's LayerNorm computes it.
    """
    mean = x.mean(axis=-1, keepdims=True)  # [n_seq, 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [n_seq, 1]
    return (x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias  # [n_seq, n_embd]


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU in the tanh approximation GPT-2 was trained with (HF's "gelu_new"). Any shape."""
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))  # like x


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis. Subtracting the row max first keeps exp() from overflowing;
    a row of all -inf is not expected (causal attention always sees at least itself)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))  # like x
    return e / e.sum(axis=-1, keepdims=True)  # like x
