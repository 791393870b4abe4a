"""The small numeric building blocks every stage uses: linear, layer norm, GELU, softmax, and
the Llama family's RMSNorm and SiLU (lesson 13).

Each is a pure NumPy function on float32 arrays. Later, each gets a Numba twin that must equal it.
Beside each op sits its count: `<op>_cost(...)`, the FLOPs and bytes it moves (conventions in
`minfer.cost`).
"""

from __future__ import annotations

import numpy as np

from minfer.cost import Cost

_SQRT_2_OVER_PI = np.float32(np.sqrt(2.0 / np.pi))


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """x @ weight + bias.  x: [n_seq, n_in], weight: [n_in, n_out], bias: [n_out] or None -> [n_seq, n_out]"""
    y = x @ weight  # [n_seq, n_out]
    return y if bias is None else y + bias  # [n_seq, n_out]


def linear_cost(n_rows: int, n_in: int, n_out: int, weight_size: int = 4, act_size: int = 4, bias: bool = True) -> Cost:
    """One multiply-add per weight per row (2 n_rows n_in n_out FLOPs) plus the bias add.

    The weights (and bias) are read once whatever n_rows is: a matrix product streams the matrix
    once for all its rows. That is why a batch of rows costs little more memory traffic than one
    row, and why decode (one row) is memory-bound. `weight_size`, `act_size`: bytes per number.
    """
    n_bias = n_out if bias else 0
    return Cost(
        flops=2 * n_rows * n_in * n_out + n_rows * n_bias,
        weight_bytes=(n_in * n_out + n_bias) * weight_size,
        act_read=n_rows * n_in * act_size,
        act_write=n_rows * n_out * act_size,
    )


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Normalise each row to mean 0, variance 1, then scale and shift.

    x: [n_seq, n_embd], weight/bias: [n_embd] -> [n_seq, n_embd]. The variance is the biased one
    (divide by n_embd), as PyTorch's LayerNorm computes it.
    """
    mean = x.mean(axis=-1, keepdims=True)  # [n_seq, 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [n_seq, 1]
    return (x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias  # [n_seq, n_embd]


def layer_norm_cost(n_rows: int, n_embd: int, weight_size: int = 4, act_size: int = 4) -> Cost:
    """7 FLOPs per number (sum for the mean, centre, square, sum for the variance, divide by the
    standard deviation, scale, shift) and 4 per row (two divisions by n_embd, + eps, sqrt).
    Reads x, weight and bias; writes y."""
    return Cost(
        flops=7 * n_rows * n_embd + 4 * n_rows,
        weight_bytes=2 * n_embd * weight_size,
        act_read=n_rows * n_embd * act_size,
        act_write=n_rows * n_embd * act_size,
    )


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Llama's norm: divide each row by its root mean square, then scale. No mean is subtracted
    and there is no shift, so it costs less than layer_norm and has one vector of weights.

    x: [..., n], weight: [n] -> [..., n] (n is n_embd, or d_head for Qwen3's per-head q/k norm).
    """
    ms = (x * x).mean(axis=-1, keepdims=True)  # [..., 1]
    return x / np.sqrt(ms + np.float32(eps)) * weight  # [..., n]


def rms_norm_cost(n_rows: int, n: int, weight_size: int = 4, act_size: int = 4) -> Cost:
    """4 FLOPs per number (square, sum, divide, scale) and 3 per row (divide by n, + eps, sqrt).
    Reads x and the gains; writes y."""
    return Cost(
        flops=4 * n_rows * n + 3 * n_rows,
        weight_bytes=n * weight_size,
        act_read=n_rows * n * act_size,
        act_write=n_rows * n * act_size,
    )


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU (swish): x * sigmoid(x), the activation of Llama's gated MLP. Any shape.
    sigmoid(x) is written 0.5 (1 + tanh(x / 2)), equal to 1 / (1 + exp(-x)) without the
    overflow of exp(-x) for very negative x."""
    return x * (0.5 + 0.5 * np.tanh(0.5 * x))  # like x


def silu_cost(n: int, act_size: int = 4) -> Cost:
    """5 FLOPs per number (halve, tanh, scale, + 0.5, times x). Reads and writes n numbers."""
    return Cost(flops=5 * n, act_read=n * act_size, act_write=n * act_size)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU in the tanh approximation GPT-2 was trained with (HF's "gelu_new"). Any shape."""
    cube = x * x * x  # like x; not x**3: NumPy's float power is 4x slower here (the profiler showed it)
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * cube)))  # like x


def gelu_cost(n: int, act_size: int = 4) -> Cost:
    """9 FLOPs per number: x**3 (2), * 0.044715, + x, * sqrt(2/pi), tanh, + 1, 0.5 * x, and the
    final product. Reads and writes n numbers."""
    return Cost(flops=9 * n, act_read=n * act_size, act_write=n * act_size)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis. Subtracting the row max first keeps exp() from overflowing;
    a row of all -inf is not expected (causal attention always sees at least itself)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))  # like x
    return e / e.sum(axis=-1, keepdims=True)  # like x
