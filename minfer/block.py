"""Stage 5, block: one pre-norm transformer block, attention then MLP, each added to the residual."""

from __future__ import annotations

import numpy as np

from minfer.attention import self_attention
from minfer.kvcache import KVCache
from minfer.layers import layer_norm
from minfer.mlp import mlp
from minfer.weights import BlockWeights


def block(x: np.ndarray, w: BlockWeights, n_head: int, eps: float,
          cache: KVCache | None = None, layer: int = 0) -> np.ndarray:
    """x: [n_seq, n_embd] -> [n_seq, n_embd]. `cache` and `layer` as in `self_attention`."""
    h = layer_norm(x, w.ln_1.weight, w.ln_1.bias, eps)  # [n_seq, n_embd]
    x = x + self_attention(h, w.attn, n_head, cache, layer)  # [n_seq, n_embd]
    return x + mlp(layer_norm(x, w.ln_2.weight, w.ln_2.bias, eps), w.mlp)  # [n_seq, n_embd]
