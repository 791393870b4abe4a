"""Matrix-vector (and few-row) products that stream each weight from memory exactly once.

Decoding one token multiplies a single row by every weight matrix: 2 FLOPs per 4-byte weight, far
below what the cores could do, so the time is the time to read the weights (memory-bound). The
loops here are arranged around that read.

`linear` (w: [n_in, n_out], GPT-2's Conv1D layout, x @ w) cuts w into N_SLABS slabs of whole
rows. Each slab is one contiguous run of memory, read front to back like `stream_sum` (the
bandwidth ceiling of minfer.perf.calibrate), and adds x[:, i] * w[i, :] into its own partial sums,
[n_rows, n_out]; the partials are added up at the end. The inner loop runs along a row of w,
contiguous, so it vectorises. The obvious alternative, each thread owning a chunk of output
columns (no partial sums to combine), reads w in runs of only n_out / n_threads floats before
jumping to the next row; on this machine it reached 65-80% of the streaming bandwidth where the
slabs reach 85-100% (benchmarks/kernels.py). The partial sums are the one allocation:
N_SLABS x n_rows x n_out floats (48 KiB for GPT-2's c_fc at one row), ~0.1 us next to the
hundreds of microseconds the weights take to stream.

Every inner loop indexes a row view from 0 (`p[j]`, not `part[r, j0 + j]`): Numba then can drop
its check for negative indices, which otherwise keeps LLVM from vectorising the loop at all.

With n_rows > 1, each w[i, j] loaded is used for every row while it is in a register: w is still
read once, which is what batching buys. As rows are added the FLOPs catch up with the bytes, and
somewhere between 8 and 16 rows BLAS's blocked matrix product (NumPy @) becomes faster.

int8 weights (`linear_int8`, and `lm_head` given a scale per row): the same loops over a quarter of the bytes, each
weight converted to float32 in a register (see minfer.fast.kernels.quant for the format).

`lm_head` (wte: [n_vocab, n_embd], x @ wte.T): a dot product per vocabulary row, the rows split
between threads, so each thread again streams one contiguous run and nothing needs combining.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from minfer.fast.kernels.elementwise import FAST

# Slabs of rows of w, read in parallel. Numba gives each thread a contiguous range of them, so
# with 1, 2 or 4 threads every thread streams one contiguous run. A constant, not the thread
# count: asking Numba for that inside a kernel would stop cache=True from caching it.
N_SLABS = 4


@njit(cache=True, fastmath=FAST)
def _add_4_rows(x, i, w0, w1, w2, w3, part):  # x: [n_rows, n_in], w0..w3: [n_out] -> part: [n_rows, n_out]
    """part[r] += x[r, i] w0 + x[r, i+1] w1 + x[r, i+2] w2 + x[r, i+3] w3, for every row r.

    Four rows of w per pass over part: a quarter of the loads and stores of part per weight.
    The w's may be int8: np.float32() converts them in a register (a no-op for float32).
    """
    for r in range(part.shape[0]):
        p = part[r]  # [n_out]; indices from 0, so Numba need not check for negative ones
        x0, x1, x2, x3 = x[r, i], x[r, i + 1], x[r, i + 2], x[r, i + 3]
        for j in range(p.shape[0]):
            p[j] += x0 * np.float32(w0[j]) + x1 * np.float32(w1[j]) + x2 * np.float32(w2[j]) + x3 * np.float32(w3[j])


@njit(cache=True, fastmath=FAST)
def _add_row(x, i, wi, part):  # x: [n_rows, n_in], wi: [n_out] -> part: [n_rows, n_out]
    """part[r] += x[r, i] wi for every row r: the n_in % 4 rows _add_4_rows leaves."""
    for r in range(part.shape[0]):
        p, xi = part[r], x[r, i]
        for j in range(p.shape[0]):
            p[j] += xi * np.float32(wi[j])


@njit(cache=True, fastmath=FAST)
def _slab(x, w, i0, i1, part):  # x: [n_rows, n_in], w: [n_in, n_out] f32 -> part: [n_rows, n_out]
    """part = x[:, i0:i1] @ w[i0:i1]: one slab, rows i0..i1-1 of w read front to back."""
    part[:] = 0
    i = i0
    while i + 4 <= i1:
        _add_4_rows(x, i, w[i], w[i + 1], w[i + 2], w[i + 3], part)
        i += 4
    for i in range(i, i1):  # noqa: B020 (the n_in % 4 rows left after the loop above)
        _add_row(x, i, w[i], part)


@njit(cache=True, fastmath=FAST)
def _slab_int8(x, w_q, i0, i1, part, buf):  # as _slab with w_q: [n_in, n_out] int8; buf: [4, n_out] f32
    """_slab for int8 weights. With several rows of x, four rows of w_q are first converted into
    buf, so each weight is converted once rather than once per row."""
    part[:] = 0
    i = i0
    while i + 4 <= i1:
        if part.shape[0] == 1:
            _add_4_rows(x, i, w_q[i], w_q[i + 1], w_q[i + 2], w_q[i + 3], part)
        else:
            for k in range(4):
                src, dst = w_q[i + k], buf[k]
                for j in range(dst.shape[0]):
                    dst[j] = np.float32(src[j])
            _add_4_rows(x, i, buf[0], buf[1], buf[2], buf[3], part)
        i += 4
    for i in range(i, i1):  # noqa: B020 (the n_in % 4 rows left after the loop above)
        _add_row(x, i, w_q[i], part)


# x: [n_rows, n_in] f32, w: [n_in, n_out] f32, b: [n_out] f32 -> out: [n_rows, n_out]
@njit(parallel=True, cache=True, fastmath=FAST)
def linear(x, w, b, out):
    """out = x @ w + b, reading w once, in N_SLABS contiguous slabs (see the module docstring)."""
    n_rows, n_in = x.shape
    part = np.empty((N_SLABS, n_rows, w.shape[1]), np.float32)  # each slab's partial sums
    rows = (n_in + N_SLABS - 1) // N_SLABS
    for s in prange(N_SLABS):
        _slab(x, w, min(s * rows, n_in), min((s + 1) * rows, n_in), part[s])
    for r in range(n_rows):
        for j in range(w.shape[1]):
            total = b[j]
            for s in range(N_SLABS):
                total += part[s, r, j]
            out[r, j] = total


# x: [n_rows, n_in] f32, w_q: [n_in, n_out] int8, scale, b: [n_out] f32 -> out: [n_rows, n_out]
@njit(parallel=True, cache=True, fastmath=FAST)
def linear_int8(x, w_q, scale, b, out):
    """out[r, j] = scale[j] * sum_i x[r, i] w_q[i, j] + b[j]: linear with w = w_q * scale[None, :],
    reading the int8 weights once. The scale multiplies each column's sum once, at the end."""
    n_rows, n_in = x.shape
    n_out = w_q.shape[1]
    part = np.empty((N_SLABS, n_rows, n_out), np.float32)
    buf = np.empty((N_SLABS, 4, n_out), np.float32)  # each slab's converted rows (n_rows > 1)
    rows = (n_in + N_SLABS - 1) // N_SLABS
    for s in prange(N_SLABS):
        _slab_int8(x, w_q, min(s * rows, n_in), min((s + 1) * rows, n_in), part[s], buf[s])
    for r in range(n_rows):
        for j in range(n_out):
            total = np.float32(0.0)
            for s in range(N_SLABS):
                total += part[s, r, j]
            out[r, j] = scale[j] * total + b[j]


# x: [n_rows, n_embd] f32, wte: [n_vocab, n_embd] f32 or int8, scale: [n_vocab] or [0] -> out: [n_rows, n_vocab]
@njit(parallel=True, cache=True, fastmath=FAST)
def lm_head(x, wte, scale, out):
    """Logits with the tied embedding, out = x @ wte.T: a dot product per vocabulary row.

    Each row of wte is read once for all rows of x. fastmath's reassociation lets LLVM keep
    several vector accumulators per dot product (one serial chain would wait on every add).
    int8 rows (a scale per row; float32 weights pass an empty scale) are converted in a register
    and the row's scale multiplies each finished dot product: out[r, v] = scale[v] dot(x[r], wte[v]).
    """
    n_rows, n_embd = x.shape
    scaled = scale.shape[0] > 0
    for v in prange(wte.shape[0]):
        row = wte[v]
        for r in range(n_rows):
            acc = np.float32(0.0)
            for i in range(n_embd):
                acc += x[r, i] * np.float32(row[i])
            out[r, v] = acc * scale[v] if scaled else acc
