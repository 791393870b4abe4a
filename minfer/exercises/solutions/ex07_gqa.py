"""Exercise 07, reference solution: grouped-query attention for one decode step."""

import math

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (given: exercise 01's). x: [..., n] -> [..., n]"""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def grouped_decode_attention(q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, length: int) -> np.ndarray:
    """One new token's attention over the first `length` cached positions, KV heads shared by groups.

    q: [n_head, d_head], k_cache, v_cache: [n_kv_head, max_seq, d_head] -> [n_head, d_head]
    """
    n_head, d_head = q.shape
    n_kv_head = k_cache.shape[0]
    k, v = k_cache[:, :length], v_cache[:, :length]  # [n_kv_head, length, d_head]; beyond is stale
    q = q.reshape(n_kv_head, n_head // n_kv_head, d_head)  # [n_kv_head, group, d_head]: head h in group h // group
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d_head)  # [n_kv_head, group, length]
    out = softmax(scores) @ v  # [n_kv_head, group, d_head]: each KV head read once for its whole group
    return out.reshape(n_head, d_head)  # [n_head, d_head]
