"""Exercise 06, reference solution: rotary position embedding (RoPE), rotate-half layout."""

import numpy as np


def apply_rope(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """Rotate each pair (i, i + d_head/2) of every head's vectors by its position's angle.

    x: [n_head, n_seq, d_head], positions: [n_seq], theta: float -> [n_head, n_seq, d_head]
    """
    half = x.shape[-1] // 2
    inv_freq = 1.0 / theta ** (np.arange(half) / half)  # [half]: theta^(-2i / d_head) radians per position
    angles = np.asarray(positions)[:, None] * inv_freq  # [n_seq, half], float64: precise at large positions
    cos = np.concatenate([np.cos(angles), np.cos(angles)], axis=-1)  # [n_seq, d_head]: each pair's angle twice
    sin = np.concatenate([np.sin(angles), np.sin(angles)], axis=-1)  # [n_seq, d_head]
    x1, x2 = x[..., :half], x[..., half:]  # [n_head, n_seq, half] each: dimension i pairs with i + half
    rotated = np.concatenate([-x2, x1], axis=-1)  # [n_head, n_seq, d_head]: every pair turned by 90 degrees
    return (x * cos + rotated * sin).astype(np.float32)  # [n_head, n_seq, d_head], cos and sin shared by heads
