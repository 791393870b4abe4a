"""Kernels that touch each number once: layer norm, GELU, the residual add, and the Llama family's
RMSNorm and SwiGLU (twins in minfer.layers, swiglu's here).

They are tiny next to the matrix products (a few thousand numbers per decode step), so they run
on one thread: starting Numba's thread pool costs a few microseconds, more than the work itself.
GELU and SwiGLU, a libm call per number, split a prefill's rows between threads.
Each reads its input before writing the same index of its output, so `out` may be `x` (in place).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from minfer.layers import silu

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


@njit(cache=True, fastmath=FAST)
def rms_norm(x, w, eps, out):  # x: [n_rows, n] f32, w: [n], eps -> out: [n_rows, n]
    """Per row: divide by sqrt(mean of squares + eps), scale by w (Llama's norm; n is n_embd, or
    d_head for Qwen3's per-head q/k norm, called on [n_rows * n_head, d_head]). One pass for the
    sum of squares, one to scale: nothing is subtracted, so no digits are lost. out may be x."""
    n_rows, n = x.shape
    for r in range(n_rows):
        sq = np.float32(0.0)
        for i in range(n):
            sq += x[r, i] * x[r, i]
        inv_rms = np.float32(1.0) / np.sqrt(sq / np.float32(n) + np.float32(eps))
        for i in range(n):
            out[r, i] = x[r, i] * inv_rms * w[i]


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
def _swiglu_row(gate_up, out):  # gate_up: [2 n_hidden] f32 -> out: [n_hidden]
    n_hidden = out.shape[0]
    for i in range(n_hidden):
        g = gate_up[i]
        out[i] = g / (np.float32(1.0) + math.exp(-g)) * gate_up[n_hidden + i]  # silu(g) * up


@njit(parallel=True, cache=True)
def _swiglu_parallel(gate_up, out):  # as swiglu, rows split between threads
    for r in prange(gate_up.shape[0]):
        _swiglu_row(gate_up[r], out[r])


@njit(cache=True)
def swiglu(gate_up, out):  # gate_up: [n_rows, 2 n_hidden] f32 -> out: [n_rows, n_hidden]
    """The gated MLP's middle: silu(gate) * up, where gate and up are the two halves of each row
    (the Numba backend computes both projections as one [n_embd, 2 n_hidden] matrix, so the
    weights are streamed in one pass). Fused: the gate never goes back to memory as silu(gate).

    silu(g) = g sigmoid(g) is written g / (1 + exp(-g)), one exp per number (the twin's tanh
    form is the same function). For g below about -88, exp(-g) overflows to inf and g / inf
    gives the -0 the twin gives. Parallel over rows for a prefill's or a batch's sizes, like gelu.
    """
    if out.shape[0] * out.shape[1] >= GELU_PARALLEL_MIN and out.shape[0] > 1:
        _swiglu_parallel(gate_up, out)
    else:
        for r in range(out.shape[0]):
            _swiglu_row(gate_up[r], out[r])


def swiglu_numpy(gate_up: np.ndarray) -> np.ndarray:  # [n_rows, 2 n_hidden] -> [n_rows, n_hidden]
    """swiglu's twin: minfer.llama.swiglu_mlp's middle, silu(gate) * up, on the halves of gate_up."""
    gate, up = np.split(gate_up, 2, axis=-1)  # [n_rows, n_hidden] each
    return silu(gate) * up  # [n_rows, n_hidden]


@njit(cache=True)
def add(a, b, out):  # a, b: [n_rows, n] f32 -> out: [n_rows, n]
    """out = a + b, the residual add. out may be a (x += f(x) without a temporary)."""
    for r in range(a.shape[0]):
        for i in range(a.shape[1]):
            out[r, i] = a[r, i] + b[r, i]


def add_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # [n_rows, n], [n_rows, n] -> [n_rows, n]
    """add's twin: the residual add as minfer.block writes it, `x + f(x)`."""
    return a + b
