"""Weight-only int8 on the Numba backend: small accuracy cost, a quarter of the weight bytes."""

from __future__ import annotations

import numpy as np
import pytest

import minfer
from minfer.checkpoints.store import CLASSROOM_DIR
from minfer.errors import InvalidInputError
from minfer.perf.counts import Arch
from minfer.perf.profiler import Profiler

HELDOUT = (CLASSROOM_DIR / "heldout.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pair():
    return minfer.load_model(backend="numba"), minfer.load_model(backend="numba", quantize="int8")


def test_int8_logits_stay_close_to_float32(pair):
    full, int8 = pair
    ids = full.tokenizer.encode(HELDOUT[:2000])[:200]
    a, b = full.forward(ids), int8.forward(ids)
    rel = np.abs(a - b).max() / np.abs(a).max()
    assert 1e-5 < rel < 0.05  # really quantized, and still close
    assert (a.argmax(-1) == b.argmax(-1)).mean() > 0.9


@pytest.mark.slow
def test_int8_perplexity_rises_by_less_than_one_percent(pair):
    full, int8 = pair
    text = HELDOUT[:40_000]
    p_full, p_int8 = minfer.perplexity(full, text), minfer.perplexity(int8, text)
    assert p_full.perplexity <= p_int8.perplexity * 1.001
    assert p_int8.perplexity < 1.01 * p_full.perplexity


def test_int8_decode_equals_its_own_prefill(pair):
    _, int8 = pair
    ids = int8.tokenizer.encode("And the king said unto him")
    whole = int8.prefill(ids, int8.new_cache(), all_logits=True)
    cache = int8.new_cache()
    steps = [int8.prefill(ids[:1], cache)] + [int8.decode(t, cache) for t in ids[1:]]
    np.testing.assert_allclose(np.stack(steps), whole, rtol=0, atol=1e-4 * np.abs(whole).max())


def test_profiler_counts_one_byte_weights(pair):
    full, int8 = pair
    assert Arch.from_model(int8).weight_size == 1 and int8.weight_dtype == "int8"
    per_token = []
    for model in pair:
        with Profiler(ops=False) as prof:
            minfer.generate(model, "And the king said", 4, stop_tokens=())
        d = prof.phases()["decode"]
        per_token.append(d["weight_bytes"] / d["tokens"])
    assert per_token[1] == pytest.approx(per_token[0] / 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quantize": "int8"}, "backend='numba'"),
        ({"backend": "numba", "quantize": "int4"}, "int4"),
    ],
)
def test_bad_quantize_requests_are_clear(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        minfer.load_model(**kwargs)
