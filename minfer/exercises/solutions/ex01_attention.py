"""Exercise 01, reference solution: softmax and causal attention."""

import math

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis. x: [..., n] -> [..., n]"""
    e = np.exp(x - x.max(axis=-1, keepdims=True))  # like x; the max subtracted: exp(<= 0) cannot overflow
    return e / e.sum(axis=-1, keepdims=True)  # like x


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(d_head) + causal mask) v.

    q: [n_head, n_q, d_head], k, v: [n_head, n_k, d_head] with n_k >= n_q -> [n_head, n_q, d_head]
    """
    n_q, n_k, d_head = q.shape[1], k.shape[1], q.shape[2]
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d_head)  # [n_head, n_q, n_k]
    q_pos = np.arange(n_k - n_q, n_k)[:, None]  # [n_q, 1] the queries are the last n_q positions
    future = np.arange(n_k)[None, :] > q_pos  # [n_q, n_k] True where key j is after query i
    scores = np.where(future, -np.inf, scores)  # [n_head, n_q, n_k]
    return softmax(scores) @ v  # [n_head, n_q, d_head]
