"""Batched generation: ragged prompts in one batched KV cache give what each gives alone."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES

import minfer
from minfer.batch import BatchKVCache, decode_batch, prefill_slot
from minfer.checkpoint import CLASSROOM_DIR

RAGGED = [
    [5],
    [17, 42, 9],
    list(range(1, 12)),
    [100, 3],
    [7] * 6,
    [250, 251, 252, 253],
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
    [300, 200, 100, 50, 25],
]


@pytest.fixture(scope="module", params=["tiny-gpt2", "odd-gpt2-sharded", "classroom"])
def model(request):
    return minfer.load_model(CLASSROOM_DIR if request.param == "classroom" else FIXTURES / request.param)


def test_batched_greedy_equals_one_by_one(model):
    gens = minfer.generate_batch(model, RAGGED, 20, stop_tokens=())
    for prompt, g in zip(RAGGED, gens):
        alone = minfer.generate(model, prompt, 20, stop_tokens=())
        assert g.tokens == alone.tokens and g.finish_reason == "length"


def test_one_decode_step_matches_single_sequence_logits(model):
    cache = BatchKVCache.empty(model, len(RAGGED), 32)
    for b, ids in enumerate(RAGGED):
        prefill_slot(model, ids, cache, b)
    tokens = np.arange(len(RAGGED)) + 10  # [n_batch]
    batched = decode_batch(model, tokens, cache, np.arange(len(RAGGED)))  # [n_batch, n_vocab]
    for b, ids in enumerate(RAGGED):
        single = model.forward(ids + [int(tokens[b])])[-1]
        np.testing.assert_allclose(batched[b], single, rtol=0, atol=1e-5 * np.abs(single).max())
    assert cache.lengths.tolist() == [len(ids) + 1 for ids in RAGGED]


def test_sequences_finish_independently(model):
    alone = [minfer.generate(model, p, 12, stop_tokens=()).tokens for p in RAGGED[:4]]
    stop = alone[1][3]  # the 4th token of sequence 1 becomes a stop token
    gens = minfer.generate_batch(model, RAGGED[:4], 12, stop_tokens=[stop])
    for g, want in zip(gens, alone):
        cut = want.index(stop) + 1 if stop in want else len(want)
        assert g.tokens == want[:cut]
        assert g.finish_reason == ("stop" if stop in want else "length")


def test_seeded_sampling_in_a_batch_equals_alone(model):
    gens = minfer.generate_batch(model, RAGGED[:3], 10, temperature=1.0, seed=5, stop_tokens=())
    for prompt, g in zip(RAGGED[:3], gens):
        assert g.tokens == minfer.generate(model, prompt, 10, temperature=1.0, seed=5, stop_tokens=()).tokens


def test_empty_batch_is_an_error(model):
    with pytest.raises(minfer.InvalidInputError, match="at least one prompt"):
        minfer.generate_batch(model, [], 4)


def test_batched_generation_honours_stop_strings_as_generate_does():
    """One stopping rule for both: each sequence ends at the stop string with the text, tokens
    and finish reason it gets alone."""
    model = minfer.load_model()
    prompts = ["And the king said", "In the beginning", "And it came to pass", "Blessed are"]
    for stop in [",", ["LORD", "\n"], "xyz"]:
        gens = minfer.generate_batch(model, prompts, 24, stop_strings=stop)
        for prompt, g in zip(prompts, gens):
            alone = minfer.generate(model, prompt, 24, stop_strings=stop)
            assert (g.tokens, g.text, g.finish_reason) == (alone.tokens, alone.text, alone.finish_reason)
    assert {g.finish_reason for g in minfer.generate_batch(model, prompts, 24, stop_strings=",")} == {"stop_string"}
