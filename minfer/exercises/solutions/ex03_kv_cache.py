"""Exercise 03, reference solution: the KV cache."""

import math

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (given: exercise 01's). x: [..., n] -> [..., n]"""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def append_kv(k_cache: np.ndarray, v_cache: np.ndarray, length: int, k_new: np.ndarray, v_new: np.ndarray) -> int:
    """Write k_new, v_new at [length, length + n_new) of the caches, in place; return the new length.

    k_cache, v_cache: [n_head, max_seq, d_head], k_new, v_new: [n_head, n_new, d_head] -> int
    """
    end = length + k_new.shape[1]
    k_cache[:, length:end] = k_new  # by index into the preallocated buffer: no copy of the old ones
    v_cache[:, length:end] = v_new
    return end


def cached_attention(q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, length: int) -> np.ndarray:
    """Causal attention of the n_new newest tokens over the first `length` cached positions.

    q: [n_head, n_new, d_head], k_cache, v_cache: [n_head, max_seq, d_head] -> [n_head, n_new, d_head]
    """
    n_new, d_head = q.shape[1], q.shape[2]
    k, v = k_cache[:, :length], v_cache[:, :length]  # [n_head, length, d_head]; beyond is stale
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d_head)  # [n_head, n_new, length]
    q_pos = np.arange(length - n_new, length)[:, None]  # [n_new, 1] the new tokens come last
    scores = np.where(np.arange(length)[None, :] > q_pos, -np.inf, scores)  # [n_head, n_new, length]
    return softmax(scores) @ v  # [n_head, n_new, d_head]
