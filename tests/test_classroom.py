"""The shipped classroom model (weights/classroom): the default model of minfer.

transformers reads the same files and computes the same logits; minfer's held-out loss equals the
one the training recipe reported; greedy text is made of the corpus' own words.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import LOGIT_RTOL, reference, relative_diff

import minfer
from minfer.checkpoints.store import CLASSROOM_DIR


@pytest.fixture(scope="module")
def classroom() -> minfer.Model:
    return minfer.load_model(CLASSROOM_DIR)


def test_it_is_the_default_model(classroom, default_model):
    assert default_model.config == classroom.config
    np.testing.assert_array_equal(default_model.weights.wte, classroom.weights.wte)


def test_own_tokenizer_with_end_of_text(classroom):
    tok = classroom.tokenizer
    assert tok.n_vocab == classroom.config.n_vocab == 4096
    assert tok.eot_id == classroom.config.eos_token_id == 4095
    assert tok.encode("<|endoftext|>") == [4095]


def test_logits_match_transformers(classroom):
    ref = reference("classroom")
    assert relative_diff(classroom.forward(ref["ids"]), ref["logits"]) < LOGIT_RTOL


@pytest.mark.slow
def test_heldout_loss_matches_the_training_recipe(classroom):
    recorded = json.loads((CLASSROOM_DIR / "training.json").read_text())["heldout_loss_chunked"]
    measured = minfer.perplexity(classroom, (CLASSROOM_DIR / "heldout.txt").read_text())
    assert measured.loss == pytest.approx(recorded, abs=0.01)


def test_greedy_text_is_made_of_corpus_words(classroom):
    corpus_words = set(re.findall(r"[A-Za-z]+", (CLASSROOM_DIR / "heldout.txt").read_text()))
    g = minfer.generate(classroom, "And the king said", 60)
    words = re.findall(r"[A-Za-z]+", g.text)
    known = [w for w in words if w in corpus_words]
    assert len(words) >= 20
    assert len(known) / len(words) > 0.9, g.text
