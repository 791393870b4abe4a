"""Stage 2, embed: token ids -> the residual stream (lesson 02)."""

from __future__ import annotations

import numpy as np


def embed(ids: np.ndarray, wte: np.ndarray, wpe: np.ndarray, start: int = 0) -> np.ndarray:
    """Token embedding plus learned position embedding.

    ids: [n_seq] int, wte: [n_vocab, n_embd], wpe: [n_ctx, n_embd] -> x: [n_seq, n_embd].
    `start` is the absolute position of ids[0]: during decode the single new token sits at
    position `cache.length`, not 0.
    """
    return wte[ids] + wpe[start : start + len(ids)]  # [n_seq, n_embd]


def lm_head(x: np.ndarray, wte: np.ndarray) -> np.ndarray:
    """Hidden states -> logits with the tied embedding. x: [n_seq, n_embd] -> [n_seq, n_vocab]"""
    return x @ wte.T  # [n_seq, n_vocab]
