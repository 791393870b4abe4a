"""Stage 5, block: one pre-norm transformer block, attention then MLP, each added to the residual."""

from __future__ import annotations

import numpy as np

from minfer.attention import self_attention
from minfer.cost import Cost
from minfer.kvcache import BatchSlots, KVCache
from minfer.layers import layer_norm
from minfer.mlp import mlp
from minfer.weights import BlockWeights


def block(
    x: np.ndarray,
    w: BlockWeights,
    n_head: int,
    eps: float,
    cache: KVCache | BatchSlots | None = None,
    layer: int = 0,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """x: [n_rows, n_embd] -> [n_rows, n_embd]. `cache`, `layer` and `positions` as in `self_attention`."""
    h = layer_norm(x, w.ln_1.weight, w.ln_1.bias, eps)  # [n_rows, n_embd]
    x = x + self_attention(h, w.attn, n_head, cache, layer, positions)  # [n_rows, n_embd]
    return x + mlp(layer_norm(x, w.ln_2.weight, w.ln_2.bias, eps), w.mlp)  # [n_rows, n_embd]


def residual_cost(n_rows: int, n_embd: int, act_size: int = 4) -> Cost:
    """One residual add, `x + f(x)`: one FLOP per number, reads two arrays, writes one.
    A block has two (after attention, after the MLP)."""
    n = n_rows * n_embd
    return Cost(flops=n, act_read=2 * n * act_size, act_write=n * act_size)
