"""Batched generation: ragged prompts in one batched KV cache give what each gives alone."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES

import minfer
from minfer.batch import BatchKVCache, decode_batch, prefill_slot
from minfer.checkpoints.store import CLASSROOM_DIR

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


CASES = [  # (checkpoint, backend, quantize): the batched step of each backend, int8 included
    ("tiny-gpt2", "numpy", None),
    ("odd-gpt2-sharded", "numpy", None),
    ("classroom", "numpy", None),
    ("tiny-gpt2", "numba", None),
    ("odd-gpt2-sharded", "numba", None),
    ("classroom", "numba", None),
    ("classroom", "numba", "int8"),
    ("tiny-llama-mqa", "numba", None),  # the Llama family's compiled step: MQA,
    ("tiny-qwen2", "numba", None),  # GQA with biases and an untied head,
    ("tiny-qwen3", "numba", None),  # q/k norms and d_head 24,
    ("tiny-qwen3", "numba", "int8"),
]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: "-".join(filter(None, c)))
def model(request):
    name, backend, quantize = request.param
    path = CLASSROOM_DIR if name == "classroom" else FIXTURES / name
    return minfer.load_model(path, backend=backend, quantize=quantize)


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


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_batched_generation_honours_stop_strings_as_generate_does(backend):
    """One stopping rule for both: each sequence ends at the stop string with the text, tokens
    and finish reason it gets alone."""
    model = minfer.load_model(backend=backend)
    prompts = ["And the king said", "In the beginning", "And it came to pass", "Blessed are"]
    for stop in [",", ["LORD", "\n"], "xyz"]:
        gens = minfer.generate_batch(model, prompts, 24, stop_strings=stop)
        for prompt, g in zip(prompts, gens):
            alone = minfer.generate(model, prompt, 24, stop_strings=stop)
            assert (g.tokens, g.text, g.finish_reason) == (alone.tokens, alone.text, alone.finish_reason)
    assert {g.finish_reason for g in minfer.generate_batch(model, prompts, 24, stop_strings=",")} == {"stop_string"}


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-qwen2"])
def test_numba_batches_run_compiled_not_through_the_reference(monkeypatch, name):
    """On backend="numba" a batched step is one compiled call: the NumPy block loop never runs."""
    model = minfer.load_model(FIXTURES / name, backend="numba")
    want = [minfer.generate(model, p, 8, stop_tokens=()).tokens for p in RAGGED[:3]]

    def refuse(*args, **kwargs):
        raise AssertionError("the NumPy reference ran")

    monkeypatch.setattr(minfer.model, "hidden_states", refuse)
    monkeypatch.setattr(minfer.block, "block", refuse)
    monkeypatch.setitem(minfer.model.HIDDEN_STATES, "llama", refuse)
    monkeypatch.setattr(minfer.llama, "llama_block", refuse)
    assert [g.tokens for g in minfer.generate_batch(model, RAGGED[:3], 8, stop_tokens=())] == want


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_bad_batched_step_is_refused_before_anything_is_written(backend):
    model = minfer.load_model(FIXTURES / "tiny-gpt2", backend=backend)
    cache = BatchKVCache.empty(model, 3, 8)
    cache.lengths[:] = [2, 8, 0]  # slot 1 is full
    before = cache.k.copy()
    bad = [
        ([1, 2], [0, 0], "distinct slots"),
        ([1, 2], [0, 3], "distinct slots"),
        ([1], [0, 2], "one token per row"),
        ([model.config.n_vocab], [0], "vocabulary"),
        ([1], [1], "slot 1 holds 8 positions: no room"),
        ([1.5], [0], "integers"),
    ]
    for tokens, rows, message in bad:
        error = minfer.ContextOverflowError if "no room" in message else minfer.InvalidInputError
        with pytest.raises(error, match=message):
            decode_batch(model, tokens, cache, rows)
    small = minfer.load_model(FIXTURES / "odd-gpt2-sharded")  # another shape
    with pytest.raises(minfer.InvalidInputError, match="BatchKVCache.empty"):
        decode_batch(model, [1], BatchKVCache.empty(small, 1, 8), [0])
    with pytest.raises(minfer.InvalidInputError, match="BatchKVCache"):
        decode_batch(model, [1], model.new_cache(8), [0])
    np.testing.assert_array_equal(cache.k, before)
    assert cache.lengths.tolist() == [2, 8, 0]


def test_a_batch_cache_is_made_and_filled_within_its_bounds():
    model = minfer.load_model(FIXTURES / "tiny-gpt2")
    bad = [(0, 8, "n_batch=0"), (2, 0, "max_seq=0"), (2, 65, "n_ctx=64"), (1.5, 8, "n_batch")]
    for n_batch, max_seq, message in bad:
        with pytest.raises(minfer.InvalidInputError, match=message):
            BatchKVCache.empty(model, n_batch, max_seq)
    cache = BatchKVCache.empty(model, 2, 8)
    for b in (2, -1, 1.0):
        with pytest.raises(minfer.InvalidInputError, match=r"slot b=.* must be an integer in \[0, 2\)"):
            prefill_slot(model, [1, 2], cache, b)
    want = "BatchKVCache(k, v: [n_layer=2, n_batch=2, n_kv_head=4, max_seq=8, d_head=16], lengths=[0, 0])"
    assert repr(cache) == want
