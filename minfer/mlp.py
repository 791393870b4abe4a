"""Stage 4, MLP: the position-wise feed-forward network (lesson 02)."""

from __future__ import annotations

import numpy as np

from minfer.layers import gelu, linear
from minfer.weights import MLPWeights


def mlp(x: np.ndarray, w: MLPWeights) -> np.ndarray:
    """Expand to 4 * n_embd, GELU, contract back. x: [n_seq, n_embd] -> [n_seq, n_embd]"""
    hidden = gelu(linear(x, w.c_fc.weight, w.c_fc.bias))  # [n_seq, 4 * n_embd]
    return linear(hidden, w.c_proj.weight, w.c_proj.bias)  # [n_seq, n_embd]
