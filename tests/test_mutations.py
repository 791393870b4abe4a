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


MUTATIONS = {
    "erf GELU instead of tanh": (minfer.mlp, "gelu", erf_gelu),
    "no causal mask": (minfer.attention, "position_mask", lambda pos, n_k: np.zeros((*pos.shape, n_k), np.float32)),
    "c_proj transposed": (minfer.checkpoints.loading, "build_weights", transposed_c_proj),
    "cache written one slot late": (minfer.kvcache.KVCache, "update", cache_write_off_by_one),
}


def fidelity_holds(name: str) -> bool:
    """Everything test_fidelity checks, as one verdict."""
    model, ref = minfer.load_model(FIXTURES / name), reference(name)
    forward_ok = relative_diff(model.forward(ref["ids"]), ref["logits"]) < LOGIT_RTOL
    cache = model.new_cache()
    rows = [model.prefill(ref["ids"][:5], cache)] + [model.decode(int(t), cache) for t in ref["ids"][5:]]
    cached_ok = relative_diff(np.stack(rows), ref["logits"][4:]) < LOGIT_RTOL
    g = minfer.generate(model, ref["greedy_prompt"], len(ref["greedy_tokens"]), stop_tokens=())
    return forward_ok and cached_ok and g.tokens == ref["greedy_tokens"].tolist()


def test_unmutated_model_passes():
    assert fidelity_holds("tiny-gpt2")


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_planted_bug_is_caught(mutation, monkeypatch):
    owner, attr, replacement = MUTATIONS[mutation]
    monkeypatch.setattr(owner, attr, replacement)
    assert not fidelity_holds("tiny-gpt2")
