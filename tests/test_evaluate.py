"""perplexity(): the loss of the model over a text, checked against transformers' logits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import FIXTURES, reference

import minfer
from minfer.cli import main
from minfer.evaluate import token_losses


def reference_loss(logits: np.ndarray, ids: np.ndarray) -> float:
    """Cross-entropy from transformers' logits, written out independently of minfer."""
    logits = logits.astype(np.float64)
    log_probs = (
        logits
        - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - logits.max(-1, keepdims=True)
    )
    return float(-np.mean([log_probs[i, ids[i + 1]] for i in range(len(ids) - 1)]))


def test_loss_matches_transformers_logits():
    model, ref = minfer.load_model(FIXTURES / "tiny-gpt2"), reference("tiny-gpt2")
    p = minfer.perplexity(model, ref["ids"])
    assert p.tokens == len(ref["ids"]) - 1 and p.chunks == 1
    assert p.loss == pytest.approx(reference_loss(ref["logits"], ref["ids"]), abs=1e-5)
    assert p.perplexity == pytest.approx(math.exp(p.loss))


def test_chunks_of_the_context_length():
    model = minfer.load_model(FIXTURES / "tiny-gpt2")  # n_ctx 64
    ids = np.random.default_rng(1).integers(0, 512, 150)
    p = minfer.perplexity(model, ids)
    assert p.chunks == 3 and p.tokens == 63 + 63 + 21
    by_hand = sum(token_losses(model.forward(ids[b : b + 64][:-1]), ids[b : b + 64][1:]).sum() for b in (0, 64, 128))
    assert p.loss == pytest.approx(by_hand / p.tokens, rel=1e-9)


def test_uniform_logits_give_perplexity_n_vocab():
    losses = token_losses(np.zeros((3, 10), np.float32), np.array([0, 4, 9]))
    np.testing.assert_allclose(losses, math.log(10))


def test_too_short_text_is_an_error():
    with pytest.raises(minfer.InvalidInputError, match="at least 2 tokens"):
        minfer.perplexity(minfer.load_model(FIXTURES / "tiny-gpt2"), [5])


def test_cli_eval(tmp_path, capsys, default_model):
    text = tmp_path / "t.txt"
    text.write_text("In the beginning was the word, and the word was with the model.")
    assert main(["eval", str(text)]) == 0
    out = capsys.readouterr().out
    want = minfer.perplexity(default_model, text.read_text())
    assert f"loss {want.loss:.4f}" in out
    assert main(["eval", str(tmp_path / "missing.txt")]) == 2
