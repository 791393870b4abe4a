"""Kernels that touch each number once: layer norm, GELU, the residual add (twins in minfer.layers).

They are tiny next to the matrix products (a few thousand numbers per decode step), so they run
on one thread: starting Numba's thread pool costs a few microseconds, more than the work itself.
GELU alone, a libm call per number, splits a prefill's rows between threads.
Each reads its input before writing the same index of its output, so `out` may be `x` (in place).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Let LLVM reorder float sums (several vector accumulators instead of one serial chain) and fuse
# multiply-adds. Not fastmath=True: that also assumes no inf/NaN, which attention's -inf needs.
FAST = {"reassoc", "contract"}

_SQRT_2_OVER_PI = np.float32(math.sqrt(2.0 / math.pi))
# Numbers from which gelu splits its rows between threads (measured in benchmarks/kernels.py).
GELU_PARALLEL_MIN = 1 << 12  # a batch of 4 rows of GPT-2's 3072-wide MLP is past it; one row never


@njit(cache=True, fastmath=FAST)
def layer_norm(x, w, b, eps, out):  # x: [n_rows, n_embd] f32, w, b: [n_embd], eps -> out: [n_rows, n_embd]
    """Per row: subtract the mean, divide by sqrt(biased variance + eps), scale by w, shift by b.

    Two passes over the row, as the twin: the mean first, then the variance of the centred values
    (one pass of sum and sum of squares loses digits when the mean is large). out may be x.
    """
    n_rows, n_embd = x.shape
    for r in range(n_rows):
        total = np.float32(0.0)
        for i in range(n_embd):
            total += x[r, i]
        mean = total / np.float32(n_embd)
        sq = np.float32(0.0)
        for i in range(n_embd):
            d = x[r, i] - mean
            sq += d * d
        inv_std = np.float32(1.0) / np.sqrt(sq / np.float32(n_embd) + np.float32(eps))
        for i in range(n_embd):
            out[r, i] = (x[r, i] - mean) * inv_std * w[i] + b[i]


@njit(cache=True)
def _gelu_row(x, out):  # x: [n] f32 -> out: [n]
    for i in range(x.shape[0]):
        v = x[i]
        u = _SQRT_2_OVER_PI * (v + np.float32(0.044715) * (v * v * v))
        out[i] = v / (np.float32(1.0) + math.exp(np.float32(-2.0) * u))  # = 0.5 v (1 + tanh(u))


@njit(parallel=True, cache=True)
def _gelu_parallel(x, out):  # as gelu, rows split between threads
    for r in prange(x.shape[0]):
        _gelu_row(x[r], out[r])


@njit(cache=True)
def gelu(x, out):  # x: [n_rows, n] f32 -> out: [n_rows, n]
    """GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). out may be x.

    Written as x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3): the same function, since
    1 + tanh(u) = 2 / (1 + exp(-2u)), but one exp per number instead of a tanh, which libm
    computes about 3x slower (neither call vectorises without Intel's SVML). At the far tails
    exp overflows to inf and x / inf gives the -0 the twin gives.
    Parallel over rows for a prefill's or a batch's sizes; one row's few thousand numbers stay on
    one thread (waking the pool costs more than they do).
    """
    if x.shape[0] * x.shape[1] >= GELU_PARALLEL_MIN and x.shape[0] > 1:
        _gelu_parallel(x, out)
    else:
        for r in range(x.shape[0]):
            _gelu_row(x[r], out[r])


@njit(cache=True)
def add(a, b, out):  # a, b: [n_rows, n] f32 -> out: [n_rows, n]
    """out = a + b, the residual add. out may be a (x += f(x) without a temporary)."""
    for r in range(a.shape[0]):
        for i in range(a.shape[1]):
            out[r, i] = a[r, i] + b[r, i]


def add_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # [n_rows, n], [n_rows, n] -> [n_rows, n]
    """add's twin: the residual add as minfer.block writes it, `x + f(x)`."""
    return a + b
