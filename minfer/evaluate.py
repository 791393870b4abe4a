"""Evaluation: how surprised is the model by a text? Mean loss (nats per token) and perplexity.

The text is tokenized once and cut into consecutive chunks of n_ctx tokens (the last one may be
shorter). Inside a chunk, position i predicts token i + 1; the first token of each chunk is
context only. Training recipes report held-out loss the same way, so the numbers compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minfer.checks import token_id_array, whole_number
from minfer.errors import InvalidInputError, NonFiniteError
from minfer.generation import prompt_ids
from minfer.model import Model


@dataclass(frozen=True)
class Perplexity:
    """Loss over a text: `loss` is the mean negative log-likelihood in nats per predicted token."""

    loss: float
    tokens: int  # predicted tokens the mean is over
    chunks: int  # forward passes of at most n_ctx tokens

    @property
    def perplexity(self) -> float:
        """exp(loss): the model is as unsure as a uniform choice among this many tokens."""
        return math.exp(self.loss)


def token_losses(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] per row. logits: [n, n_vocab], targets: [n] -> [n]"""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)  # [n, n_vocab]
    log_z = np.log(np.exp(shifted).sum(axis=-1))  # [n]
    return log_z - shifted[np.arange(len(targets)), targets]  # [n]


def perplexity(model: Model, text_or_ids: str | list[int] | np.ndarray, chunk: int | None = None) -> Perplexity:
    """Mean loss and perplexity of `model` over a text (or token ids), in chunks of n_ctx.

    Example:
        >>> p = minfer.perplexity(model, open("heldout.txt").read())
        >>> p.loss, p.perplexity
    """
    if isinstance(text_or_ids, str):
        if model.tokenizer is None:
            raise InvalidInputError("this model has no tokenizer: pass token ids instead of text")
        ids = np.asarray(prompt_ids(model, text_or_ids), np.int64)  # [n_tokens], after the BOS token if it has one
    else:
        ids = token_id_array(text_or_ids, "text_or_ids (a str, or token ids)")  # [n_tokens]
    chunk = model.config.n_ctx if chunk is None else whole_number(chunk, "chunk", minimum=2)
    if len(ids) < 2:
        raise InvalidInputError(f"perplexity needs at least 2 tokens, got {ids.size}")
    total, count, n_chunks = 0.0, 0, 0
    for begin in range(0, len(ids), chunk):
        piece = ids[begin : begin + chunk]  # [<= chunk]
        if len(piece) < 2:
            continue
        total += token_losses(model.forward(piece[:-1]), piece[1:]).sum()
        count += len(piece) - 1
        n_chunks += 1
    if not math.isfinite(total):
        raise NonFiniteError(
            f"the loss over {count:,} tokens is {total}: the model's logits hold "
            "NaN or inf, so there is no loss or perplexity to report"
        )
    return Perplexity(loss=total / count, tokens=count, chunks=n_chunks)
