"""Rotary position embedding (RoPE), the Llama family's positions (lesson 13).

GPT-2 adds a learned vector per position to the token embedding. Llama adds nothing: inside
attention it rotates each query and key by an angle proportional to its position, a different
frequency for each pair of dimensions. The dot product of a query rotated by angle a and a key
rotated by b depends only on a - b, so attention sees how far apart two tokens are, not where
they sit, and no position table limits the context.

Pairs are laid out as Hugging Face checkpoints store them ("rotate-half"): dimension i is paired
with i + d_head / 2, not with its neighbour i + 1 as in the RoPE paper. A checkpoint's q and k
projections were trained (or permuted on conversion) for this layout, so it must match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minfer.cost import Cost


@dataclass(frozen=True)
class RopeScaling:
    """How a checkpoint stretches RoPE past the context it was pre-trained on (config.json's
    `rope_scaling`, or transformers 5's `rope_parameters`)."""

    rope_type: str  # "linear" or "llama3"
    factor: float  # how many times longer the context is than in pre-training
    low_freq_factor: float = 1.0  # llama3: wavelengths above original / low_freq_factor are scaled fully
    high_freq_factor: float = 4.0  # llama3: wavelengths below original / high_freq_factor are kept
    original_max_position_embeddings: int = 8192  # llama3: the pre-training context


def inverse_frequencies(d_head: int, theta: float, scaling: RopeScaling | None = None) -> np.ndarray:
    """The angle per position of each dimension pair: theta^(-2i / d_head). -> float64 [d_head // 2]

    Pair 0 turns by one radian per position, the last pair by about 1/theta: fast pairs tell
    neighbours apart, slow ones still change over thousands of positions.
    """
    inv_freq = 1.0 / theta ** (np.arange(0, d_head, 2) / d_head)  # [d_head // 2]
    if scaling is None:
        return inv_freq
    if scaling.rope_type == "linear":  # positions squeezed by `factor`: every angle turns slower
        return inv_freq / scaling.factor
    return llama3_frequencies(inv_freq, scaling)  # [d_head // 2]


def llama3_frequencies(inv_freq: np.ndarray, s: RopeScaling) -> np.ndarray:
    """Llama 3.1's scaling: pairs whose wavelength is short (below original / high_freq_factor)
    are kept, long ones (above original / low_freq_factor) are slowed by `factor`, and those in
    between are blended smoothly. inv_freq: [n_pair] -> [n_pair]"""
    wavelength = 2 * np.pi / inv_freq  # [n_pair] positions per full turn
    low_wavelength = s.original_max_position_embeddings / s.high_freq_factor
    high_wavelength = s.original_max_position_embeddings / s.low_freq_factor
    smooth = (s.original_max_position_embeddings / wavelength - s.low_freq_factor) / (
        s.high_freq_factor - s.low_freq_factor
    )  # [n_pair] 0 at high_wavelength, 1 at low_wavelength
    blended = (1 - smooth) * inv_freq / s.factor + smooth * inv_freq  # [n_pair]
    scaled = np.where(wavelength > high_wavelength, inv_freq / s.factor, inv_freq)  # [n_pair]
    middle = (wavelength >= low_wavelength) & (wavelength <= high_wavelength)  # [n_pair]
    return np.where(middle, blended, scaled)  # [n_pair]


def rope_tables(positions: np.ndarray, inv_freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of every position's angles, each pair's angle written twice (both halves).
    positions: [..., n_q], inv_freq: [d_head // 2] -> (cos, sin), float32 [..., n_q, d_head]"""
    angles = positions[..., None] * inv_freq  # [..., n_q, d_head // 2], in float64
    angles = np.concatenate([angles, angles], axis=-1)  # [..., n_q, d_head]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)  # [..., n_q, d_head]


def rotate_half(x: np.ndarray) -> np.ndarray:
    """(x1, x2) -> (-x2, x1) on the two halves of the last axis: a 90-degree turn of each pair
    (i, i + d_head / 2). x: [..., d_head] -> [..., d_head]"""
    x1, x2 = np.split(x, 2, axis=-1)  # [..., d_head // 2] each
    return np.concatenate([-x2, x1], axis=-1)  # [..., d_head]


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate each pair of x by its position's angle: x cos + rotate_half(x) sin.

    x: [..., n_head, n_q, d_head], cos, sin: [..., n_q, d_head] -> [..., n_head, n_q, d_head]
    """
    cos, sin = cos[..., None, :, :], sin[..., None, :, :]  # [..., 1, n_q, d_head]: every head alike
    return x * cos + rotate_half(x) * sin  # [..., n_head, n_q, d_head]


def rope_cost(n_rows: int, n_head: int, d_head: int, act_size: int = 4) -> Cost:
    """Rotating q or k of n_rows tokens: 3 FLOPs per number (two products, one add); the cos
    and sin tables are computed once per step for all layers and not counted here."""
    n = n_rows * n_head * d_head
    return Cost(flops=3 * n, act_read=n * act_size, act_write=n * act_size)
