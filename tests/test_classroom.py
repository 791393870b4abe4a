"""The shipped classroom models: weights/classroom (GPT-2, minfer's default model) and
weights/classroom-llama (the Llama architecture, same corpus and tokenizer).

transformers reads the same files and computes the same logits; minfer's held-out loss equals the
one the training recipe reported; greedy text is made of the corpus' own words; classroom-llama
beats the GPT-2 model on the held-out text by the margin issue 14 asks for.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import LOGIT_RTOL, reference, relative_diff

import minfer
from minfer.checkpoints.loading import bundled_model_dir
from minfer.checkpoints.store import CLASSROOM_DIR

CLASSROOMS = ["classroom", "classroom-llama"]


@pytest.fixture(scope="module")
def classroom() -> minfer.Model:
    return minfer.load_model(CLASSROOM_DIR)


@pytest.fixture(scope="module", params=CLASSROOMS)
def each_classroom(request) -> minfer.Model:
    """Each shipped classroom model, loaded by its name."""
    return minfer.load_model(request.param)


def model_dir(model: minfer.Model) -> Path:
    return bundled_model_dir(model.name)


@functools.cache
def heldout_loss(name: str) -> float:
    """minfer eval's loss of a bundled model on the classroom held-out text (a minute or two each)."""
    return minfer.perplexity(minfer.load_model(name), (CLASSROOM_DIR / "heldout.txt").read_text()).loss


def test_it_is_the_default_model(classroom, default_model):
    assert default_model.config == classroom.config
    np.testing.assert_array_equal(default_model.weights.wte, classroom.weights.wte)


def test_own_tokenizer_with_end_of_text(classroom):
    tok = classroom.tokenizer
    assert tok.n_vocab == classroom.config.n_vocab == 4096
    assert tok.eot_id == classroom.config.eos_token_id == 4095
    assert tok.encode("<|endoftext|>", allow_special=True) == [4095]
    assert 4095 not in tok.encode("<|endoftext|>")  # user text is only text


def test_logits_match_transformers(each_classroom):
    ref = reference(each_classroom.name)
    assert relative_diff(each_classroom.forward(ref["ids"]), ref["logits"]) < LOGIT_RTOL


@pytest.mark.slow
def test_heldout_loss_matches_the_training_recipe(each_classroom):
    folder = model_dir(each_classroom)
    recorded = json.loads((folder / "training.json").read_text())["heldout_loss_chunked"]
    assert (folder / "heldout.txt").read_text() == (CLASSROOM_DIR / "heldout.txt").read_text()
    assert heldout_loss(each_classroom.name) == pytest.approx(recorded, abs=0.01)


@pytest.mark.slow
def test_classroom_llama_is_at_least_0_2_nats_better_than_gpt2_on_the_same_text(classroom):
    llama = minfer.load_model("classroom-llama")
    text = (CLASSROOM_DIR / "heldout.txt").read_text()
    assert (bundled_model_dir("classroom-llama") / "heldout.txt").read_text() == text
    assert llama.tokenizer.encode(text) == classroom.tokenizer.encode(text)  # the same tokens, so losses compare
    assert heldout_loss("classroom") - heldout_loss("classroom-llama") >= 0.2


def test_classroom_llama_is_the_llama_architecture_with_grouped_kv_heads(each_classroom):
    c = each_classroom.config
    if each_classroom.name == "classroom-llama":
        assert (c.family, c.n_head, c.n_kv_head, c.n_ctx, c.n_vocab) == ("llama", 8, 2, 512, 4096)
        assert 10e6 <= each_classroom.n_params() <= 15e6
        assert (model_dir(each_classroom) / "model.safetensors").stat().st_size <= 32e6
    else:
        assert c.family == "gpt2"


def test_greedy_text_is_made_of_corpus_words(each_classroom):
    corpus_words = set(re.findall(r"[A-Za-z]+", (model_dir(each_classroom) / "heldout.txt").read_text()))
    g = minfer.generate(each_classroom, "And the king said", 60)
    words = re.findall(r"[A-Za-z]+", g.text)
    known = [w for w in words if w in corpus_words]
    assert len(words) >= 20
    assert len(known) / len(words) > 0.9, g.text
