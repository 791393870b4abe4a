"""Writing checkpoints in Hugging Face GPT-2 format, and minfer's default model.

Until the trained classroom model ships, the default model is a small GPT-2 with random weights
and GPT-2's tokenizer, written on first use into minfer's cache directory. Its output is noise;
it exists so that the whole pipeline (load, prefill, decode, report) runs offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from minfer.config import Config
from minfer.tokenizer import GPT2_EOT_ID
from minfer.weights import GPT2Weights, random_weights

DEFAULT_CONFIG = Config(n_layer=2, n_head=4, n_embd=64, n_ctx=256, n_vocab=GPT2_EOT_ID + 1,
                        eos_token_id=GPT2_EOT_ID)
DEFAULT_SEED = 1234


def cache_dir() -> Path:
    """Where minfer writes files it makes: $MINFER_HOME, else ~/.cache/minfer."""
    return Path(os.environ.get("MINFER_HOME", Path.home() / ".cache" / "minfer"))


def save_checkpoint(path: str | os.PathLike, config: Config, weights: GPT2Weights,
                    dtype: type = np.float32) -> Path:
    """Write config.json and model.safetensors (float32 or float16) that both minfer and
    `transformers.GPT2LMHeadModel.from_pretrained` read."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"transformer.{name}": np.ascontiguousarray(a, dtype=dtype)
               for name, a in weights.arrays().items()}
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(config.to_hf(), indent=2) + "\n")
    return path


def default_model_dir() -> Path:
    """The default model's directory, written on first use (random weights, see module doc)."""
    path = cache_dir() / f"random-gpt2-{DEFAULT_SEED}"
    if not (path / "model.safetensors").exists():
        tmp = path.with_suffix(".tmp")
        save_checkpoint(tmp, DEFAULT_CONFIG, random_weights(DEFAULT_CONFIG, DEFAULT_SEED), np.float16)
        tmp.replace(path)
    return path
