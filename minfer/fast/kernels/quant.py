"""Weight-only int8: a quarter of the bytes, so a memory-bound matrix-vector product can run up to
4x faster. Weights are stored as int8 with one float32 scale per output channel (symmetric, no
zero point): w ~= w_q * scale. The kernels (linear_int8, and lm_head and embed given a scale per row)
dequantize on the fly: the sum runs over the raw int8 values (converted to float32 in registers)
and the scale multiplies once per output, since sum_i x_i (q_ij s_j) = s_j sum_i x_i q_ij.
Activations stay float32.

Here, in plain NumPy: the format (quantize_int8, dequantize_int8) and the kernels' twins.
"""

from __future__ import annotations

import numpy as np

import minfer.embed  # the stage the twins below mirror (a module: the profiler's op list stays the model's)

Q_MAX = 127  # symmetric: [-127, 127], so -w quantizes to -w_q (int8's -128 is never used)


def quantize_int8(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantization with one scale per channel. `axis` is the axis the scale is
    shared along (reduced over, as in np.max(axis=...)); the scale has w's shape without it.

    scale = max |w| / 127 over `axis` (1 for an all-zero channel, which then quantizes to 0),
    w_q = rint(w / scale) clipped to [-127, 127] (rint rounds halves to even), so every element's
    error |w - w_q * scale| is at most scale / 2.

    - linear's w [n_in, n_out]: axis=0 -> scale [n_out], one per output column;
    - stacked [n_layer, n_in, n_out]: axis=1 -> scale [n_layer, n_out];
    - lm_head's wte [n_vocab, n_embd]: axis=1 -> scale [n_vocab], one per vocabulary row.

    Example:
        >>> q, s = quantize_int8(np.array([[1.0, 0.0], [-0.5, 0.0]], np.float32), axis=0)
        >>> q.tolist(), s.tolist()
        ([[127, 0], [-64, 0]], [0.007874015718698502, 1.0])
    """
    w = np.asarray(w, dtype=np.float32)
    peak = np.abs(w).max(axis=axis, keepdims=True)  # like w, size 1 along axis
    scale = np.where(peak > 0, peak / np.float32(Q_MAX), np.float32(1.0)).astype(np.float32)
    w_q = np.clip(np.rint(w / scale), -Q_MAX, Q_MAX).astype(np.int8)  # like w
    return w_q, np.squeeze(scale, axis=axis)


def dequantize_int8(w_q: np.ndarray, scale: np.ndarray, axis: int) -> np.ndarray:
    """The inverse of quantize_int8 (up to its rounding): w_q * scale, float32, like w_q."""
    return w_q.astype(np.float32) * np.expand_dims(scale, axis)


def linear_int8_numpy(x: np.ndarray, w_q: np.ndarray, scale: np.ndarray, b: np.ndarray) -> np.ndarray:
    """linear_int8's twin: x @ (w_q * scale) + b, scaling the sums rather than the weights.
    x: [n_rows, n_in], w_q: [n_in, n_out] int8, scale, b: [n_out] -> [n_rows, n_out]"""
    return (x @ w_q.astype(np.float32)) * scale + b  # [n_rows, n_out]


def lm_head_numpy(x: np.ndarray, wte: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """lm_head's twin: x @ wte.T for float32 rows (an empty scale), x @ (wte_q * scale[:, None]).T
    for int8 ones, scaling the sums rather than the weights.
    x: [n_rows, n_embd], wte: [n_vocab, n_embd], scale: [n_vocab] or [0] -> [n_rows, n_vocab]"""
    if scale.size == 0:
        return minfer.embed.lm_head(x, wte)  # [n_rows, n_vocab]
    return (x @ wte.astype(np.float32).T) * scale  # [n_rows, n_vocab]


def embed_numpy(ids: np.ndarray, wte: np.ndarray, scale: np.ndarray, wpe: np.ndarray, positions) -> np.ndarray:
    """embed's twin: minfer.embed.embed on the picked rows, dequantized when wte is int8.
    ids: [n_rows], wte: [n_vocab, n_embd], scale: [n_vocab] or [0], positions: [n_rows] -> [n_rows, n_embd]"""
    rows = wte[ids].astype(np.float32) * (scale[ids, None] if scale.size else np.float32(1.0))  # [n_rows, n_embd]
    return minfer.embed.embed(np.arange(len(ids)), rows, wpe, positions)  # [n_rows, n_embd]
