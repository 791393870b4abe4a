"""Where minfer's own checkpoints live, and writing checkpoints in Hugging Face GPT-2 format.

The default model is the classroom model shipped in `weights/classroom/`: a small GPT-2 trained
on the King James Bible with its own tokenizer (see its README.md and `weights/recipes/`).
`random_gpt2_dir()` writes a small GPT-2 with random weights and GPT-2's own 50,257-token
vocabulary: its text is noise, but it has GPT-2's tokenizer, for tests and demonstrations.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from minfer.config import Config
from minfer.tokenizer import GPT2_EOT_ID, WEIGHTS_DIR, bundled_weights_dir  # noqa: F401 (re-exported)
from minfer.weights import GPT2Weights, random_weights

CLASSROOM_DIR = WEIGHTS_DIR / "classroom"
RANDOM_GPT2_CONFIG = Config(
    n_layer=2, n_head=4, n_embd=64, n_ctx=256, n_vocab=GPT2_EOT_ID + 1, eos_token_id=GPT2_EOT_ID
)
RANDOM_GPT2_SEED = 1234


def cache_dir() -> Path:
    """Where minfer writes files it makes: $MINFER_HOME, else ~/.cache/minfer."""
    return Path(os.environ.get("MINFER_HOME", Path.home() / ".cache" / "minfer"))


def save_checkpoint(path: str | os.PathLike, config: Config, weights: GPT2Weights, dtype: type = np.float32) -> Path:
    """Write config.json and model.safetensors (float32 or float16) that both minfer and
    `transformers.GPT2LMHeadModel.from_pretrained` read."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"transformer.{name}": np.ascontiguousarray(a, dtype=dtype) for name, a in weights.arrays().items()}
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(config.to_hf(), indent=2) + "\n")
    return path


def default_model_dir() -> Path:
    """The default model's directory: the classroom model shipped with minfer."""
    from minfer.checkpoints.loading import bundled_model_dir

    return bundled_model_dir("default")


def random_gpt2_dir() -> Path:
    """A small random-weight GPT-2 with GPT-2's vocabulary, written once into the cache dir."""
    path = cache_dir() / f"random-gpt2-{RANDOM_GPT2_SEED}"
    if not (path / "model.safetensors").exists():
        tmp = path.with_suffix(".tmp")
        weights = random_weights(RANDOM_GPT2_CONFIG, RANDOM_GPT2_SEED)
        save_checkpoint(tmp, RANDOM_GPT2_CONFIG, weights, np.float16)
        shutil.rmtree(path, ignore_errors=True)
        tmp.replace(path)
    return path
