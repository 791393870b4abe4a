"""The Llama family against independent references: hand-derived properties of RoPE and
grouped-query attention, and transformers' configs (the logits themselves are compared in
test_fidelity.py, over every fixture and backend)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import FIXTURES, LOGIT_RTOL, reference, relative_diff

import minfer
from minfer.attention import causal_attention
from minfer.config import LlamaConfig
from minfer.rope import RopeScaling, apply_rope, inverse_frequencies, rope_tables


def test_rope_rotates_pairs_i_and_i_plus_half_by_position_times_frequency():
    """rotate-half layout: pair (i, i + d/2) is the complex number x_i + j x_{i+d/2}, multiplied by e^{j p f_i}."""
    d, p = 8, 5
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 1, d)).astype(np.float32)  # [n_head, n_q, d_head]
    inv_freq = inverse_frequencies(d, 10000.0)
    cos, sin = rope_tables(np.array([p]), inv_freq)
    got = apply_rope(x, cos, sin)[0, 0]
    z = (x[0, 0, : d // 2] + 1j * x[0, 0, d // 2 :]) * np.exp(1j * p * inv_freq)
    np.testing.assert_allclose(got, np.concatenate([z.real, z.imag]), atol=1e-5)


def test_rope_makes_q_dot_k_depend_only_on_distance():
    d = 16
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(2, 1, 1, d)).astype(np.float32)
    inv_freq = inverse_frequencies(d, 500.0)

    def score(pq: int, pk: int) -> float:
        cq, sq = rope_tables(np.array([pq]), inv_freq)
        ck, sk = rope_tables(np.array([pk]), inv_freq)
        return float((apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum())

    assert score(7, 3) == pytest.approx(score(104, 100), abs=1e-4)
    assert score(7, 3) != pytest.approx(score(7, 4), abs=1e-3)


def test_llama3_scaling_keeps_short_wavelengths_and_slows_long_ones():
    s = RopeScaling(
        "llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192
    )
    plain = inverse_frequencies(128, 500000.0)
    scaled = inverse_frequencies(128, 500000.0, s)
    wavelength = 2 * np.pi / plain
    short, long = wavelength < 8192 / 4, wavelength > 8192
    np.testing.assert_array_equal(scaled[short], plain[short])
    np.testing.assert_allclose(scaled[long], plain[long] / 8)
    middle = ~short & ~long
    assert middle.any() and np.all((scaled[middle] < plain[middle]) & (scaled[middle] > plain[middle] / 8))
    linear = inverse_frequencies(16, 1e4, RopeScaling("linear", 2.0))
    np.testing.assert_allclose(linear, inverse_frequencies(16, 1e4) / 2)


@pytest.mark.parametrize("n_head, n_kv_head, n_q", [(8, 2, 1), (8, 1, 5), (6, 3, 4), (4, 4, 3)])
def test_grouped_attention_equals_attention_over_repeated_kv_heads(n_head, n_kv_head, n_q):
    """transformers' repeat_kv: KV head i serves query heads i*g .. i*g + g - 1."""
    rng = np.random.default_rng(n_head + n_q)
    n_k, d = 9, 12
    q = rng.normal(size=(n_head, n_q, d)).astype(np.float32)
    k, v = rng.normal(size=(2, n_kv_head, n_k, d)).astype(np.float32)
    group = n_head // n_kv_head
    want = causal_attention(q, np.repeat(k, group, axis=0), np.repeat(v, group, axis=0))
    np.testing.assert_allclose(causal_attention(q, k, v), want, atol=1e-6)
    batched = causal_attention(q[None], k[None], v[None], np.arange(n_k - n_q, n_k)[None])
    np.testing.assert_allclose(batched[0], want, atol=1e-6)


def test_the_kv_cache_holds_only_the_kv_heads():
    model = minfer.load_model(FIXTURES / "tiny-llama-mqa")
    c = model.config
    assert (c.n_head, c.n_kv_head, c.d_head) == (4, 1, 16)
    cache = model.new_cache(32)
    assert cache.k.shape == (c.n_layer, 1, 32, c.d_head)
    assert cache.nbytes == 2 * c.n_layer * c.n_kv_head * 32 * c.d_head * 4


def test_qwen3_head_dim_need_not_be_hidden_over_heads():
    c = minfer.load_model(FIXTURES / "tiny-qwen3").config
    assert (c.n_embd // c.n_head, c.d_head, c.qk_norm, c.tie_word_embeddings) == (16, 24, True, True)


def rewritten(tmp_path, name: str, edit) -> minfer.Model:
    """Load a copy of a fixture whose config.json `edit(cfg)` changed."""
    shutil.copytree(FIXTURES / name, tmp_path / name)
    path = tmp_path / name / "config.json"
    cfg = json.loads(path.read_text())
    edit(cfg)
    path.write_text(json.dumps(cfg))
    return minfer.load_model(tmp_path / name)


def test_hub_rope_spelling_reads_the_same_as_transformers_5(tmp_path):
    """Hub Llama 3.x configs write rope_theta + rope_scaling; transformers 5 writes rope_parameters."""

    def hub_style(cfg):
        params = cfg.pop("rope_parameters")
        cfg["rope_theta"] = params.pop("rope_theta")
        cfg["rope_scaling"] = params

    model, ref = rewritten(tmp_path, "tiny-llama-mqa", hub_style), reference("tiny-llama-mqa")
    assert model.config.rope_scaling == RopeScaling("llama3", 4.0, 1.0, 4.0, 32)
    assert relative_diff(model.forward(ref["ids"]), ref["logits"]) < LOGIT_RTOL


def test_mistral_without_a_sliding_window_is_a_llama(tmp_path):
    model = rewritten(tmp_path, "tiny-llama-mqa", lambda c: c.update(model_type="mistral", sliding_window=None))
    ref = reference("tiny-llama-mqa")
    assert relative_diff(model.forward(ref["ids"]), ref["logits"]) < LOGIT_RTOL


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(model_type="mistral", sliding_window=4096), "sliding-window attention"),
        (lambda c: c.update(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}), "'yarn'"),
        (lambda c: c.update(hidden_act="gelu"), "hidden_act='gelu'"),
        (lambda c: c.update(num_key_value_heads=3), "not a multiple of num_key_value_heads=3"),
        (lambda c: c.update(model_type="gemma"), "minfer runs gpt2, llama, qwen2, qwen3, mistral"),
        (lambda c: c.update(head_dim=15), "odd"),
        (lambda c: c.update(num_key_value_heads=2), "shape"),
        (lambda c: c.update(tie_word_embeddings=False), "lacks 1 tensor"),
        (lambda c: c.update(attention_bias=True), "lacks"),
        (lambda c: c.update(rope_parameters={"rope_type": "llama3", "factor": 8.0}), "lacks low_freq_factor"),
    ],
)
def test_config_problems_are_named(tmp_path, edit, message):
    with pytest.raises(minfer.ModelLoadError, match=message):
        rewritten(tmp_path, "tiny-llama-mqa", edit)


def test_a_tied_head_that_differs_from_the_embedding_is_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    shutil.copytree(FIXTURES / "tiny-llama-mqa", tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    tensors = load_file(str(path))
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"] + 1
    save_file(tensors, str(path))
    with pytest.raises(minfer.ModelLoadError, match="different from the token embedding"):
        minfer.load_model(tmp_path / "m")


def test_llama_config_round_trips_through_to_hf():
    c = minfer.load_model(FIXTURES / "tiny-llama-mqa").config
    assert LlamaConfig.from_hf(c.to_hf()) == c


def test_batched_decode_equals_one_by_one():
    model = minfer.load_model(FIXTURES / "tiny-qwen2")
    prompts = [[1, 2, 3], [7, 8, 9, 10, 11], [42]]
    batch = minfer.generate_batch(model, prompts, 6, stop_tokens=())
    for prompt, g in zip(prompts, batch, strict=True):
        assert g.tokens == minfer.generate(model, prompt, 6, stop_tokens=()).tokens


def test_the_compiled_llama_step_is_found_in_numbas_cache():
    """`minfer generate --backend numba` warns before a first compilation; it must see the Llama step's cache."""
    from minfer.fast import is_compiled

    model = minfer.load_model(FIXTURES / "tiny-llama-mqa", backend="numba")
    model.decode(1, model.new_cache(4))
    assert is_compiled("llama")
