"""Stage 3, attention: causal multi-head self-attention, with or without a KV cache (lessons 03 and 05).

Every query attends to the keys at its own position and before. With a KV cache the keys and
values of earlier tokens are read from the cache instead of being recomputed; the queries are
only those of the new tokens, so a query's absolute position is offset by the cached length.
"""

from __future__ import annotations

import numpy as np

from minfer.cost import Cost
from minfer.kvcache import BatchSlots, KVCache
from minfer.layers import linear, softmax
from minfer.weights import AttentionWeights


def split_heads(x: np.ndarray, n_head: int) -> np.ndarray:
    """[..., n_seq, n_embd] -> [..., n_head, n_seq, d_head]: head h owns columns h*d_head:(h+1)*d_head."""
    *lead, n_seq, n_embd = x.shape
    return x.reshape(*lead, n_seq, n_head, n_embd // n_head).swapaxes(-3, -2)  # [..., n_head, n_seq, d_head]


def merge_heads(x: np.ndarray) -> np.ndarray:
    """[..., n_head, n_seq, d_head] -> [..., n_seq, n_embd], the inverse of split_heads."""
    *lead, n_head, n_seq, d_head = x.shape
    return x.swapaxes(-3, -2).reshape(*lead, n_seq, n_head * d_head)  # [..., n_seq, n_embd]


def position_mask(positions: np.ndarray, n_k: int) -> np.ndarray:
    """Additive mask from the queries' absolute positions: 0 where query i may see key j (j <=
    positions[i]), -inf where j is in its future. positions: [..., n_q] -> [..., n_q, n_k]

    Keys are numbered by position (key j is the token at position j), so one rule covers a fresh
    prompt, a chunk after cached tokens, and a batch whose sequences sit at different lengths:
    only the positions change.
    """
    k_pos = np.arange(n_k)  # [n_k]
    return np.where(k_pos <= positions[..., None], 0.0, -np.inf).astype(np.float32)  # [..., n_q, n_k]


def causal_mask(n_q: int, n_k: int) -> np.ndarray:
    """position_mask for n_q queries that are the *last* n_q of n_k positions (n_k - n_q of them
    are cached): query i sits at absolute position n_k - n_q + i and sees keys j <= that. -> [n_q, n_k]"""
    return position_mask(np.arange(n_k - n_q, n_k), n_k)  # [n_q, n_k]


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
    """softmax(q k^T / sqrt(d_head) + mask) v, for every head at once.

    q: [n_head, n_q, d_head], k, v: [n_kv_head, n_k, d_head] with n_k >= n_q -> [n_head, n_q, d_head].
    `positions` ([n_q]) are the queries' absolute positions; by default the last n_q of the n_k.
    Leading axes batch: q [n_batch, n_head, n_q, d_head] with k, v [n_batch, n_kv_head, n_k, d_head]
    and positions [n_batch, n_q] attends each sequence over its own keys.

    Grouped-query attention (Llama family): when n_kv_head < n_head, each key/value head serves
    a group of n_head / n_kv_head consecutive query heads (GPT-2 is the group of one). The
    group's queries are stacked as if they were more tokens, so each key and value head is
    read once for its whole group, which is what makes GQA cheap at decode.
    """
    *lead, n_head, n_q, d_head = q.shape
    n_kv_head, n_k = k.shape[-3], k.shape[-2]
    group = n_head // n_kv_head
    if positions is None:
        positions = np.arange(n_k - n_q, n_k)  # [n_q]
    q = q.reshape(*lead, n_kv_head, group * n_q, d_head)  # a group's queries side by side
    positions = np.tile(positions, group)  # [..., group * n_q]: each stacked query keeps its position
    scores = q @ k.swapaxes(-1, -2) / np.float32(np.sqrt(d_head))  # [..., n_kv_head, group * n_q, n_k]
    weights = softmax(scores + position_mask(positions, n_k)[..., None, :, :])  # [..., n_kv_head, group * n_q, n_k]
    return (weights @ v).reshape(*lead, n_head, n_q, d_head)  # [..., n_head, n_q, d_head]


def attention_cost(
    n_q: int,
    n_k: int,
    n_head: int,
    d_head: int,
    n_kv_head: int | None = None,
    kv_size: int = 4,
    act_size: int = 4,
    cached: bool = True,
) -> Cost:
    """Per head, query and key: 4 d_head + 7 FLOPs (q.k is 2 d_head, scale 1, mask 1, softmax 5:
    max, subtract, exp, sum, divide; weights @ v is 2 d_head). The whole n_q x n_k rectangle is
    counted, as the reference computes it; a causal kernel could skip the masked half in prefill.

    Bytes: q read and the output written once; the n_k keys and values read once (from the KV
    cache when `cached`, else they are activations). The scores are not counted: a fused kernel
    keeps them on chip. During decode n_q = 1, so every step reads the whole cache for 4 d_head
    FLOPs per key: attention is even more memory-bound than the weight matmuls.
    """
    n_kv_head = n_head if n_kv_head is None else n_kv_head
    kv = 2 * n_kv_head * n_k * d_head
    return Cost(
        flops=n_head * n_q * n_k * (4 * d_head + 7),
        kv_read=kv * kv_size if cached else 0,
        act_read=n_head * n_q * d_head * act_size + (0 if cached else kv * act_size),
        act_write=n_head * n_q * d_head * act_size,
    )


def self_attention(
    x: np.ndarray,
    w: AttentionWeights,
    n_head: int,
    cache: KVCache | BatchSlots | None = None,
    layer: int = 0,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """Multi-head causal self-attention of the new tokens x. x: [n_rows, n_embd] -> [n_rows, n_embd]

    Without a cache, x is the whole sequence. With one, x holds only the new tokens: their keys
    and values are written into layer `layer` of the cache at their positions, and the queries
    attend over everything cached so far. `positions` are the rows' absolute positions: [n_seq]
    for one sequence (by default the ones after `cache.length`), or [n_batch, n_q] for a batch,
    x's rows then being each sequence's n_q tokens in turn (batched decode: n_q = 1, and the
    cache is a `minfer.kvcache.BatchSlots`, which returns each sequence's own keys).
    """
    if positions is None:
        start = cache.length if isinstance(cache, KVCache) else 0
        positions = np.arange(start, start + len(x))  # [n_seq]
    qkv = linear(x, w.c_attn.weight, w.c_attn.bias)  # [n_rows, 3 * n_embd]
    qkv = qkv.reshape(*positions.shape, qkv.shape[-1])  # [n_seq, 3 n_embd], or [n_batch, n_q, 3 n_embd]
    q, k, v = (split_heads(part, n_head) for part in np.split(qkv, 3, axis=-1))  # [..., n_head, n_q, d_head]
    if cache is not None:
        k, v = cache.update(layer, k, v, positions)  # [..., n_head, n_keys, d_head]
    out = merge_heads(causal_attention(q, k, v, positions))  # [..., n_q, n_embd]
    return linear(out.reshape(len(x), -1), w.c_proj.weight, w.c_proj.bias)  # [n_rows, n_embd]
