"""Weight-only int8 on the Numba backend: small accuracy cost, a quarter of the weight bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import FIXTURES, LLAMA_MODELS

import minfer
from minfer.checkpoints.store import CLASSROOM_DIR
from minfer.config import LlamaConfig
from minfer.errors import InvalidInputError
from minfer.perf.counts import Arch
from minfer.perf.profiler import Profiler, profile_generation
from minfer.weights import random_llama_weights

HELDOUT = (CLASSROOM_DIR / "heldout.txt").read_text(encoding="utf-8")
# classroom-llama's shape: GQA (8 query heads over 2 KV heads), SwiGLU, RMSNorm, a tied head
CLASSROOM_LLAMA = LlamaConfig(
    n_layer=6, n_head=8, n_kv_head=2, n_embd=384, n_ctx=512, n_vocab=4096, n_hidden=1024, tie_word_embeddings=True
)


@pytest.fixture(scope="module")
def pair():
    return minfer.load_model(backend="numba"), minfer.load_model(backend="numba", quantize="int8")


@pytest.fixture(scope="module")
def llama_pair():
    """A Llama of the classroom-llama's shape, random weights (float32 and int8). Not the tiny
    fixtures: 64 numbers wide, their nearly flat logits move by more than 5% under int8."""
    w = random_llama_weights(CLASSROOM_LLAMA, seed=0)
    return tuple(minfer.Model(CLASSROOM_LLAMA, w, backend="numba", quantize=q) for q in (None, "int8"))


def assert_int8_close(full: minfer.Model, int8: minfer.Model, ids) -> None:
    """The stated tolerance: logits within 5% of the largest, greedy choices above 90% the same."""
    a, b = full.forward(ids), int8.forward(ids)
    rel = np.abs(a - b).max() / np.abs(a).max()
    assert 1e-5 < rel < 0.05  # really quantized, and still close
    assert (a.argmax(-1) == b.argmax(-1)).mean() > 0.9


def test_int8_logits_stay_close_to_float32(pair):
    assert_int8_close(*pair, pair[0].tokenizer.encode(HELDOUT[:2000])[:200])


def test_llama_int8_logits_stay_close_to_float32(llama_pair):
    assert_int8_close(*llama_pair, np.random.default_rng(0).integers(0, CLASSROOM_LLAMA.n_vocab, 200))


@pytest.mark.parametrize("name", LLAMA_MODELS)
def test_llama_int8_decode_equals_its_own_prefill(name):
    """Biases (Qwen2), q/k norms (Qwen3), an untied head: int8 decode steps give what int8 prefill does."""
    model = minfer.load_model(FIXTURES / name, backend="numba", quantize="int8")
    ids = np.arange(3, 40, 3)  # [13]: prefill past FEW_ROWS, so BLAS on dequantized weights
    whole = model.prefill(ids, model.new_cache(), all_logits=True)
    cache = model.new_cache()
    steps = [model.prefill(ids[:1], cache)] + [model.decode(int(t), cache) for t in ids[1:]]
    np.testing.assert_allclose(np.stack(steps), whole, rtol=0, atol=1e-4 * np.abs(whole).max())
    assert model.weight_dtype == "int8" and model.fast.w.qkv_w.dtype == np.int8


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


def test_profiler_runs_on_a_llama_on_numba():
    """`minfer profile` on the Llama family's compiled backend: both phases timed, the counts the
    NumPy reference's, and int8 decode reading a quarter of float32's weight bytes."""
    phases = {}
    for backend, quantize in [("numpy", None), ("numba", None), ("numba", "int8")]:
        model = minfer.load_model(FIXTURES / "tiny-llama-mqa", backend=backend, quantize=quantize)
        prof, gens = profile_generation(model, [1, 2, 3, 4, 5], 4, ops=backend == "numba")
        phases[backend, quantize] = prof.phases()
        assert len(gens[0].tokens) == 4 and "decode" in prof.report(ceilings=None, file=io.StringIO())
    f32, int8 = phases["numba", None], phases["numba", "int8"]
    assert f32["prefill"]["tokens"] == 5 and f32["decode"]["tokens"] == 3 and f32["decode"]["seconds"] > 0
    assert f32["decode"]["flops"] == phases["numpy", None]["decode"]["flops"]
    assert int8["decode"]["weight_bytes"] == pytest.approx(f32["decode"]["weight_bytes"] / 4)


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
