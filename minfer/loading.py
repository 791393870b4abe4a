"""Loading a checkpoint: a Hugging Face-format directory (or Hub name) -> a `Model`.

A directory holds `config.json` and the weights as `model.safetensors`, or as shards listed in
`model.safetensors.index.json`. Pickle files (`pytorch_model.bin`) are never opened: unpickling
runs arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from minfer.config import Config
from minfer.errors import ModelLoadError
from minfer.model import Model
from minfer.safetensors_io import read_safetensors, to_float32
from minfer.tokenizer import load_tokenizer
from minfer.weights import GPT2Weights, build_weights, expected_shapes

# Short names accepted by load_model and the Hub repositories they download from.
HUB_NAMES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "distilgpt2": "distilbert/distilgpt2",
}
_HUB_FILES = ["config.json", "model.safetensors", "model.safetensors.index.json",
              "model-*.safetensors", "tokenizer.tiktoken"]
# Keys some GPT-2 checkpoints carry that are not parameters: the causal-mask buffers of old
# transformers versions. The LM head is tied to wte (checked when present).
_NOT_PARAMETERS = (".attn.bias", ".attn.masked_bias")


def load_model(path_or_name: str | os.PathLike | None = None, backend: str = "numpy",
               quantize: str | None = None) -> Model:
    """Load a GPT-2 checkpoint.

    `path_or_name` is a local Hugging Face-format directory, a short name from `HUB_NAMES`
    ("gpt2", "gpt2-medium", ...) or a Hub repository id ("owner/name"), downloaded once into
    the Hugging Face cache. None loads minfer's default model. Weights stored as float32,
    float16 or bfloat16 are computed in float32.

    `backend`: "numpy" (the readable reference) or "numba" (compiled kernels, `minfer.fast`).
    `quantize="int8"` (Numba backend only) stores the matrices as int8 with a float32 scale per
    output column: a quarter of the bytes for decode to read.

    Example:
        >>> model = load_model("tests/fixtures/tiny-gpt2")
        >>> model.forward([1, 2, 3]).shape
        (3, 512)
    """
    name = "default" if path_or_name is None else str(path_or_name)
    if path_or_name is None:
        from minfer.checkpoint import default_model_dir
        path_or_name = default_model_dir()
    model_dir = resolve_model_dir(path_or_name)
    verify_checksums(model_dir)
    hf_config = read_config(model_dir)
    config = Config.from_hf(hf_config)
    weights = read_weights(model_dir, config)
    tokenizer = load_tokenizer(model_dir, hf_config, config.n_vocab)
    return Model(config, weights, tokenizer, backend=backend, name=name, quantize=quantize)


def resolve_model_dir(path_or_name: str | os.PathLike) -> Path:
    """A local directory as is; a Hub name downloaded (or found in the Hub cache)."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return path
    name = str(path_or_name)
    if name in HUB_NAMES or (name.count("/") == 1 and not path.exists() and not name.startswith((".", "/"))):
        return download(name)
    raise ModelLoadError(
        f"no model directory at {name!r}; pass a directory holding config.json and "
        f"model.safetensors, or a Hub name such as {', '.join(HUB_NAMES)}"
    )


def download(name: str) -> Path:
    """Fetch a checkpoint's config and safetensors files from the Hugging Face Hub (with a
    progress bar) into its cache, and return the local directory."""
    from huggingface_hub import snapshot_download

    repo_id = HUB_NAMES.get(name, name)
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES))
    except Exception as e:  # network, auth, missing repo: all mean "cannot get it from here"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelLoadError(
            f"could not download {name!r} ({repo_id}) from the Hugging Face Hub ({reason}). "
            "Without network access, pass a local directory in Hugging Face format instead: "
            "load_model('path/to/dir') or --model path/to/dir"
        ) from None


def verify_checksums(model_dir: Path) -> None:
    """If the directory has a SHA256SUMS file (`sha256sum` format), check every file it lists."""
    sums = model_dir / "SHA256SUMS"
    if not sums.exists():
        return
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        want, name = line.split(maxsplit=1)
        path = model_dir / name.lstrip("*")
        digest = hashlib.sha256()
        try:
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError as e:
            raise ModelLoadError(f"{path} is listed in SHA256SUMS but cannot be read: {e.strerror}") from None
        if digest.hexdigest() != want:
            raise ModelLoadError(
                f"{path} does not match its sha256 in SHA256SUMS: the file is corrupt or was "
                "changed; restore it (git checkout weights/) or regenerate it with its recipe"
            )


def read_config(model_dir: Path) -> dict:
    """The parsed config.json of a model directory."""
    path = model_dir / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"{model_dir} has no config.json; is it a Hugging Face model directory?") from None
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path} is not valid JSON: {e}") from None


def weight_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a checkpoint: one file, or the shards its index lists."""
    single = model_dir / "model.safetensors"
    index = model_dir / "model.safetensors.index.json"
    if single.exists():
        return [single]
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        return [model_dir / f for f in sorted(set(weight_map.values()))]
    pickles = [p.name for p in model_dir.glob("*.bin")] + [p.name for p in model_dir.glob("*.pt*")]
    hint = (f" It has {', '.join(pickles)}: pickle files, which minfer never opens because "
            "unpickling can run arbitrary code. Convert with transformers: "
            "model.save_pretrained(dir, safe_serialization=True).") if pickles else ""
    raise ModelLoadError(f"{model_dir} has no model.safetensors or model.safetensors.index.json.{hint}")


def read_weights(model_dir: Path, config: Config) -> GPT2Weights:
    """Read every tensor, check it against the config's shapes, widen it to float32."""
    stored: dict[str, tuple[str, np.ndarray]] = {}
    for path in weight_files(model_dir):
        for name, tensor in read_safetensors(path).items():
            stored[name.removeprefix("transformer.")] = tensor
    stored = {k: t for k, t in stored.items() if not k.endswith(_NOT_PARAMETERS)}
    head = stored.pop("lm_head.weight", None)
    shapes = expected_shapes(config)
    check_names(model_dir, set(stored), set(shapes))

    def get(name: str) -> np.ndarray:
        dtype, array = stored[name]
        if tuple(array.shape) != shapes[name]:
            raise ModelLoadError(
                f"tensor {name} in {model_dir} has shape {tuple(array.shape)}, but config.json "
                f"implies {shapes[name]}; the config and the weights do not belong together"
            )
        return to_float32(dtype, array)

    weights = build_weights(config, get)
    if head is not None and not np.array_equal(to_float32(*head), weights.wte):
        raise ModelLoadError(
            f"{model_dir} has an lm_head.weight different from wte.weight; minfer implements "
            "GPT-2 with the LM head tied to the token embedding"
        )
    return weights


def check_names(model_dir: Path, found: set[str], wanted: set[str]) -> None:
    """Raise if the checkpoint lacks a tensor the config needs, or holds one minfer would ignore."""
    missing, extra = sorted(wanted - found), sorted(found - wanted)
    if missing:
        raise ModelLoadError(
            f"{model_dir} lacks {len(missing)} tensor(s) the config needs, e.g. {missing[0]}"
        )
    if extra:
        raise ModelLoadError(
            f"{model_dir} has {len(extra)} tensor(s) GPT-2 does not use, e.g. {extra[0]}; "
            "is it another architecture?"
        )
