"""minfer against transformers: the same checkpoint must give the same logits and tokens.

References come from tests/fixtures/make_fixtures.py (transformers 5.x, torch CPU).
"""

from __future__ import annotations

import numpy as np
from conftest import LOGIT_RTOL, relative_diff

import minfer


def test_forward_logits_match_transformers(model_and_ref):
    model, ref = model_and_ref
    logits = model.forward(ref["ids"])
    assert logits.dtype == np.float32
    assert logits.shape == ref["logits"].shape
    assert relative_diff(logits, ref["logits"]) < LOGIT_RTOL


def test_prefill_then_teacher_forced_decode_match_transformers(model_and_ref):
    model, ref = model_and_ref
    ids, want = ref["ids"], ref["logits"]  # [n], [n, n_vocab]
    n_prompt = 5
    cache = model.new_cache()
    rows = [model.prefill(ids[:n_prompt], cache)]
    assert cache.length == n_prompt
    for token in ids[n_prompt:]:
        rows.append(model.decode(int(token), cache))
    assert cache.length == len(ids)
    assert relative_diff(np.stack(rows), want[n_prompt - 1 :]) < LOGIT_RTOL


def test_greedy_continuation_identical_to_transformers(model_and_ref):
    model, ref = model_and_ref
    g = minfer.generate(model, ref["greedy_prompt"], len(ref["greedy_tokens"]), stop_tokens=())
    assert g.tokens == ref["greedy_tokens"].tolist()
    assert g.finish_reason == "length"


def test_cached_decode_equals_uncached_forward(model_and_ref):
    model, ref = model_and_ref
    ids = ref["ids"]
    full = model.forward(ids)  # [n, n_vocab], no cache anywhere
    cache = model.new_cache(len(ids))
    cached = np.stack([model.prefill(ids[:1], cache)] + [model.decode(int(t), cache) for t in ids[1:]])
    np.testing.assert_allclose(cached, full, rtol=0, atol=1e-5 * np.abs(full).max())


def test_prefill_in_chunks_equals_one_prefill(model_and_ref):
    model, ref = model_and_ref
    ids = ref["ids"]
    whole = model.prefill(ids, model.new_cache(), all_logits=True)
    cache = model.new_cache()
    parts = [model.prefill(ids[:7], cache, all_logits=True), model.prefill(ids[7:], cache, all_logits=True)]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-5 * np.abs(whole).max())
    last_only = model.prefill(ids, model.new_cache())  # the LM head on the last row only
    np.testing.assert_allclose(last_only, whole[-1], rtol=0, atol=1e-5 * np.abs(whole).max())
