"""The fidelity tests must be able to fail: each classic bug below, planted on purpose, has to
push the logits or greedy tokens outside what test_fidelity accepts."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, LOGIT_RTOL, reference, relative_diff

import minfer
import minfer.attention
import minfer.checkpoints.loading
import minfer.layers
import minfer.mlp
import minfer.model
import minfer.rope
from minfer.weights import build_weights


def erf_gelu(x):
    """The exact GELU, x * Phi(x): close to GPT-2's tanh form, but not what it was trained with."""
    from math import erf, sqrt

    return 0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0))).astype(np.float32)


def transposed_c_proj(cfg, get):
    """Loading bug: the square attention output projection used as [out, in]."""

    def get_t(name):
        w = get(name)
        return w.T if name.endswith("attn.c_proj.weight") else w

    return build_weights(cfg, get_t)


def cache_write_off_by_one(self, layer, k, v, positions=None):
    """KV-cache bug: new keys written one slot late, so decode reads a stale zero slot."""
    end = self.length + k.shape[1]
    self.k[layer, :, self.length + 1 : end + 1] = k
    self.v[layer, :, self.length + 1 : end + 1] = v
    return self.k[layer, :, :end], self.v[layer, :, :end]


def rotate_neighbours(x):
    """RoPE bug: pairs (i, i + 1), the paper's layout, on checkpoints trained for rotate-half's (i, i + d/2)."""
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = -x[..., 1::2], x[..., 0::2]
    return out


def skip_qk_norms(model):
    """Numba backend bug: Qwen3's per-head q/k norms left out of the stacked weights."""
    w = model.runner.w
    model.runner.w = w._replace(q_norm=w.q_norm[:, :0], k_norm=w.k_norm[:, :0])


MUTATIONS = {
    "erf GELU instead of tanh": (minfer.mlp, "gelu", erf_gelu),
    "no causal mask": (minfer.attention, "position_mask", lambda pos, n_k: np.zeros((*pos.shape, n_k), np.float32)),
    "c_proj transposed": (minfer.checkpoints.loading, "build_weights", transposed_c_proj),
    "cache written one slot late": (minfer.kvcache.KVCache, "update", cache_write_off_by_one),
}


# the Llama family's: (fixture, backends, patch as in MUTATIONS); one patch reaches both backends'
# shared code (the RoPE frequencies), the other the reference's rotation
LLAMA_MUTATIONS = {
    "llama3 RoPE scaling ignored": (
        "tiny-llama-mqa",
        minfer.model.BACKENDS,
        (minfer.rope, "llama3_frequencies", lambda f, s: f),
    ),
    "RoPE on neighbouring pairs": ("tiny-llama-mqa", ("numpy",), (minfer.rope, "rotate_half", rotate_neighbours)),
}


def fidelity_holds(name: str, backend: str = "numpy", mutate=None) -> bool:
    """Everything test_fidelity checks, as one verdict (`mutate(model)` plants a bug after loading)."""
    model, ref = minfer.load_model(FIXTURES / name, backend=backend), reference(name)
    if mutate is not None:
        mutate(model)
    forward_ok = relative_diff(model.forward(ref["ids"]), ref["logits"]) < LOGIT_RTOL
    cache = model.new_cache()
    rows = [model.prefill(ref["ids"][:5], cache)] + [model.decode(int(t), cache) for t in ref["ids"][5:]]
    cached_ok = relative_diff(np.stack(rows), ref["logits"][4:]) < LOGIT_RTOL
    g = minfer.generate(model, ref["greedy_prompt"], len(ref["greedy_tokens"]), stop_tokens=())
    return forward_ok and cached_ok and g.tokens == ref["greedy_tokens"].tolist()


@pytest.mark.parametrize(
    "name, backend", [("tiny-gpt2", "numpy"), ("tiny-llama-mqa", "numba"), ("tiny-qwen3", "numba")]
)
def test_unmutated_model_passes(name, backend):
    assert fidelity_holds(name, backend)


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_planted_bug_is_caught(mutation, monkeypatch):
    owner, attr, replacement = MUTATIONS[mutation]
    monkeypatch.setattr(owner, attr, replacement)
    assert not fidelity_holds("tiny-gpt2")


@pytest.mark.parametrize(
    "mutation, backend", [(m, b) for m, (_, backends, _) in LLAMA_MUTATIONS.items() for b in backends]
)
def test_planted_llama_bug_is_caught(mutation, backend, monkeypatch):
    name, _, (owner, attr, replacement) = LLAMA_MUTATIONS[mutation]
    monkeypatch.setattr(owner, attr, replacement)
    assert not fidelity_holds(name, backend)


def test_a_bug_in_the_compiled_path_is_caught():
    assert not fidelity_holds("tiny-qwen3", "numba", skip_qk_norms)
