"""The model's boundary: shapes, the KV cache, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES

import minfer


@pytest.fixture(scope="module")
def model():
    return minfer.load_model(FIXTURES / "tiny-gpt2")  # n_ctx 64, n_vocab 512


def test_cache_is_preallocated_and_written_by_index(model):
    cache = model.new_cache(10)
    c = model.config
    assert cache.k.shape == cache.v.shape == (c.n_layer, c.n_head, 10, c.d_head)
    assert cache.length == 0 and cache.nbytes == 2 * c.n_layer * c.n_head * 10 * c.d_head * 4
    k_before = cache.k
    model.prefill([1, 2, 3], cache)
    model.decode(4, cache)
    assert cache.length == 4 and cache.k is k_before
    assert np.abs(cache.k[:, :, :4]).sum() > 0 and not cache.k[:, :, 4:].any()


def test_prefill_all_logits_shape(model):
    assert model.prefill([1, 2, 3], model.new_cache(), all_logits=True).shape == (3, 512)
    assert model.prefill([1, 2, 3], model.new_cache()).shape == (512,)


def test_forward_beyond_context_is_a_clear_error(model):
    with pytest.raises(minfer.ContextOverflowError, match="n_ctx=64"):
        model.forward(np.zeros(65, dtype=np.int64))


def test_decode_beyond_context(model):
    cache = model.new_cache()
    model.prefill(np.zeros(64, dtype=np.int64), cache)
    with pytest.raises(minfer.ContextOverflowError, match="64 cached"):
        model.decode(1, cache)


def test_prefill_beyond_cache_size(model):
    cache = model.new_cache(8)
    model.prefill(np.arange(6), cache)
    with pytest.raises(minfer.ContextOverflowError, match="holds 8 positions"):
        model.prefill(np.arange(3), cache)
    assert cache.length == 6  # the failed call changed nothing


@pytest.mark.parametrize("max_seq", [0, 65, 2.5])
def test_cache_size_outside_the_context(model, max_seq):
    with pytest.raises(minfer.InvalidInputError, match="max_seq"):
        model.new_cache(max_seq)


@pytest.mark.parametrize(
    "ids, message",
    [
        ([], "non-empty 1-D"),
        ([[1, 2]], "non-empty 1-D"),
        ([1.5, 2.0], "dtype float64"),
        ([1, 512], "token id 512"),
        ([-1], "token id -1"),
    ],
)
def test_bad_token_ids(model, ids, message):
    with pytest.raises(minfer.InvalidInputError, match=message):
        model.forward(ids)


def test_decode_takes_exactly_one_token(model):
    with pytest.raises(minfer.InvalidInputError, match="use prefill"):
        model.decode([1, 2], model.new_cache())


def test_an_unknown_backend_is_a_clear_error():
    with pytest.raises(minfer.InvalidInputError, match="backend 'cuda' is not available; choose one of numpy, numba"):
        minfer.load_model(FIXTURES / "tiny-gpt2", backend="cuda")


def test_parameter_count_matches_the_gpt2_formula(model):
    c = model.config
    e = c.n_embd
    per_block = 2 * 2 * e + (e * 3 * e + 3 * e) + (e * e + e) + (e * 4 * e + 4 * e) + (4 * e * e + e)
    assert model.n_params() == c.n_vocab * e + c.n_ctx * e + c.n_layer * per_block + 2 * e
