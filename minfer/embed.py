"""Stage 2, embed: token ids -> the residual stream (lesson 02)."""

from __future__ import annotations

import numpy as np

from minfer.cost import Cost


def embed(ids: np.ndarray, wte: np.ndarray, wpe: np.ndarray, positions: np.ndarray | int = 0) -> np.ndarray:
    """Token embedding plus learned position embedding.

    ids: [n_seq] int, wte: [n_vocab, n_embd], wpe: [n_ctx, n_embd] -> x: [n_seq, n_embd].
    `positions` ([n_seq]) are the tokens' absolute positions: during decode the single new
    token sits at position `cache.length`, not 0, and in a batch each row at its own sequence's
    length. An int is the first position, the rest following it.
    """
    if not isinstance(positions, np.ndarray):
        positions = np.arange(int(positions), int(positions) + len(ids))  # [n_seq]
    return wte[ids] + wpe[positions]  # [n_seq, n_embd]


def embed_cost(n_rows: int, n_embd: int, weight_size: int = 4, act_size: int = 4, positions: bool = True) -> Cost:
    """A gather, not a product: only the n_rows rows of wte (and of wpe) that the ids pick are
    read, plus the ids (8-byte integers); one add per number when positions are learned."""
    tables = 2 if positions else 1
    return Cost(
        flops=n_rows * n_embd * (tables - 1),
        weight_bytes=tables * n_rows * n_embd * weight_size,
        act_read=8 * n_rows,
        act_write=n_rows * n_embd * act_size,
    )


def lm_head(x: np.ndarray, wte: np.ndarray) -> np.ndarray:
    """Hidden states -> logits with the tied embedding. x: [n_seq, n_embd] -> [n_seq, n_vocab]"""
    return x @ wte.T  # [n_seq, n_vocab]


def lm_head_cost(n_rows: int, n_embd: int, n_vocab: int, weight_size: int = 4, act_size: int = 4) -> Cost:
    """A linear layer without bias: 2 n_rows n_embd n_vocab FLOPs, and the whole embedding
    matrix read again (tied weights are read twice per step: a few rows by `embed`, all of it here).
    Usually the largest single matrix of a small model."""
    return Cost(
        flops=2 * n_rows * n_embd * n_vocab,
        weight_bytes=n_vocab * n_embd * weight_size,
        act_read=n_rows * n_embd * act_size,
        act_write=n_rows * n_vocab * act_size,
    )
