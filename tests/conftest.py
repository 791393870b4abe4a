"""Shared test helpers: the fixture checkpoints and transformers' reference outputs for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import minfer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GPT2_MODELS = ["tiny-gpt2", "odd-gpt2-sharded", "tiny-gpt2-fp16", "tiny-gpt2-bf16"]
# the Llama family: MQA + llama3 RoPE + tied head; Qwen2 biases + GQA (bf16); Qwen3 q/k norms + head_dim 24
LLAMA_MODELS = ["tiny-llama-mqa", "tiny-qwen2", "tiny-qwen3"]
MODELS = GPT2_MODELS + LLAMA_MODELS
# forward logits must match transformers' within this, relative to the largest |logit|
LOGIT_RTOL = 1e-4
# text that byte-level BPE must round-trip: accents, CJK, emoji with joiners, whitespace runs
UNICODE_TEXTS = [
    "Hello, my dog is cute",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\n\n\r\n",
    "naïve café, Ærøskøbing, Straße",
    "日本語のテキスト、中文文本, 한국어",
    "emoji: 🦙🔥👩‍👩‍👧‍👦 🇫🇷 ❤️",
    "math: ∑ x² ≤ ∞ and code: def f(x): return x**2  # ok",
    "don't we'll they've I'm 'quoted' 12345 3.14",
    "<|endoftext|>special in the middle<|endoftext|>",
    "",
]


def reference(name: str) -> dict[str, np.ndarray]:
    """transformers' outputs saved by tests/fixtures/make_fixtures.py."""
    return load_file(str(FIXTURES / f"{name}.reference.safetensors"))


def relative_diff(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| relative to the largest |want|."""
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.fixture(autouse=True, scope="session")
def _minfer_home(tmp_path_factory):
    """Keep the checkpoints the tests write out of the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MINFER_HOME", str(tmp_path_factory.mktemp("minfer-home")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def default_model() -> minfer.Model:
    """minfer's default model: the classroom model in weights/classroom."""
    return minfer.load_model()


@pytest.fixture(scope="session")
def gpt2_vocab_model() -> minfer.Model:
    """A small random-weight GPT-2 with GPT-2's own tokenizer (50,257 tokens)."""
    from minfer.checkpoints.store import random_gpt2_dir

    return minfer.load_model(random_gpt2_dir())


PAIRS = [(m, b) for b in minfer.model.BACKENDS for m in MODELS]


@pytest.fixture(params=PAIRS, ids=lambda p: f"{p[0]}-{p[1]}")
def model_and_ref(request):
    """Each fixture checkpoint on each backend, with transformers' outputs for it."""
    name, backend = request.param
    return minfer.load_model(FIXTURES / name, backend=backend), reference(name)
