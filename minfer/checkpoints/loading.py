"""Loading a checkpoint: a Hugging Face-format directory (or Hub name) -> a `Model`.

A directory holds `config.json` and the weights as `model.safetensors`, or as shards listed in
`model.safetensors.index.json`. Pickle files (`pytorch_model.bin`) are never opened: unpickling
runs arbitrary code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from minfer.checkpoints.safetensors_io import (
    no_duplicate_keys,
    non_finite_count,
    open_regular_file,
    read_safetensors,
    to_float32,
)
from minfer.checkpoints.tokenizer_files import SIDE_FILES, TOKENIZER_FILES, model_tokenizer, stop_token_ids
from minfer.config import LlamaConfig, ModelConfig, config_from_hf
from minfer.errors import ModelLoadError
from minfer.model import Model
from minfer.weights import (
    GPT2Weights,
    LlamaWeights,
    build_llama_weights,
    build_weights,
    expected_shapes,
    llama_expected_shapes,
)

# Short names accepted by load_model and the Hub repositories they download from.
HUB_NAMES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "distilgpt2": "distilbert/distilgpt2",
    # the Llama family (any owner/name works too; these are the ones the docs use)
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M",
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "qwen2.5-0.5b-instruct": "Qwen/Qwen2.5-0.5B-Instruct",
    "qwen3-0.6b": "Qwen/Qwen3-0.6B",
    "llama-3.2-1b-instruct": "meta-llama/Llama-3.2-1B-Instruct",
}
_HUB_FILES = [
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*.safetensors",
    *TOKENIZER_FILES,  # tokenizer.json, tokenizer.model, tokenizer.tiktoken
    *SIDE_FILES,  # tokenizer_config.json, special_tokens_map.json, chat_template.jinja, generation_config.json
]
# Keys some checkpoints carry that are not parameters: GPT-2's causal-mask buffers and Llama's
# RoPE frequencies, saved by old transformers versions. A tied LM head is checked when present.
_NOT_PARAMETERS = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")
MAX_TEXT_BYTES = 50_000_000  # config.json, an index or SHA256SUMS: kilobytes in a real checkpoint
_FINITE_FILES: set[tuple[int, int, int, int]] = set()  # weight files already scanned for NaN/inf


# Models that ship inside minfer (name -> folder of the bundled weights); "default" is the first.
BUNDLED = {"classroom": "classroom", "classroom-llama": "classroom-llama"}
DEFAULT_MODEL = "classroom"
# A Hub repository id: owner/name, letters, digits, '-', '_' and '.'.
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def load_model(
    path_or_name: str | os.PathLike | None = None, backend: str = "numpy", quantize: str | None = None
) -> Model:
    """Load a checkpoint: GPT-2, or the Llama family (Llama 3.x, Qwen2/2.5, Qwen3, SmolLM2,
    Mistral without a sliding window), chosen by config.json's `model_type`.

    `path_or_name` is, in this order of precedence:
    - None or "default": minfer's default model; the name of a bundled model ("classroom");
    - a local Hugging Face-format directory: a path object, a name starting with `./`, `../`,
      `/` or `~`, or a name whose first component exists here (a mistyped local path is
      reported as missing, never sent to the Hub);
    - a short name from `HUB_NAMES` ("gpt2", "gpt2-medium", ...) or a Hub repository id
      ("owner/name"), downloaded once into the Hugging Face cache.
    Weights stored as float32, float16 or bfloat16 are computed in float32. Every file is
    checked before it is used (see `minfer.checkpoints.safetensors_io` and docs/safety.md): a malformed or
    lying checkpoint, or one holding NaN or inf, is a `ModelLoadError` naming the problem.

    `backend`: "numpy" (the readable reference) or "numba" (compiled kernels, `minfer.fast`).
    `quantize="int8"` (Numba backend only) stores the matrices as int8 with a float32 scale per
    output column: a quarter of the bytes for decode to read.

    Example:
        >>> model = load_model("tests/fixtures/tiny-gpt2")
        >>> model.forward([1, 2, 3]).shape
        (3, 512)
    """
    name = "default" if path_or_name is None else str(path_or_name)
    model_dir = resolve_model_dir("default" if path_or_name is None else path_or_name)
    for known in ("config.json", "model.safetensors", "model.safetensors.index.json", *TOKENIZER_FILES, *SIDE_FILES):
        if os.path.lexists(model_dir / known):
            model_file(model_dir, known, known)  # no link out of the directory
    verify_checksums(model_dir)
    hf_config = read_config(model_dir)
    config = config_from_hf(hf_config)
    if isinstance(config, LlamaConfig):  # an instruct model ends a turn with its own token(s)
        config = dataclasses.replace(config, eos_token_ids=stop_token_ids(model_dir, hf_config))
    weights = read_weights(model_dir, config)
    tokenizer = model_tokenizer(model_dir, hf_config, config.n_vocab)
    return Model(config, weights, tokenizer, backend=backend, name=name, quantize=quantize)


def bundled_model_dir(name: str) -> Path:
    """The installed copy of a model that ships with minfer ("default" is DEFAULT_MODEL)."""
    from minfer.checkpoints.store import bundled_weights_dir

    return bundled_weights_dir() / BUNDLED[DEFAULT_MODEL if name == "default" else name]


def is_local_name(name: str) -> bool:
    """Whether a model name means a local path: it starts with ./ ../ / or ~, or its first
    component exists here (so "weights/clasroom", a typo, is a missing directory, not a Hub id)."""
    if name.startswith(("./", "../", "/", "~")) or name in (".", ".."):
        return True
    first = name.replace("\\", "/").split("/")[0]
    return bool(first) and os.path.lexists(first)


def resolve_model_dir(path_or_name: str | os.PathLike) -> Path:
    """A bundled model's installed directory, a local directory as is, or a Hub name downloaded
    (or found in the Hub cache). See `load_model` for the order."""
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise ModelLoadError(f"a model is named by a path or a string, not {type(path_or_name).__name__}")
    name = os.fspath(path_or_name)
    if isinstance(path_or_name, str) and (name == "default" or name in BUNDLED):
        return bundled_model_dir(name)
    if not isinstance(path_or_name, str) or is_local_name(name):
        path = Path(name).expanduser()
        if path.is_dir():
            return path
        what = "is not a directory" if path.exists() else "does not exist"
        raise ModelLoadError(
            f"no model directory at {name!r}: {path.absolute()} {what}; pass a "
            "directory holding config.json and model.safetensors"
        )
    if name in HUB_NAMES or _REPO_ID.fullmatch(name):
        return download(name)
    raise ModelLoadError(
        f"no model directory or model named {name!r}; pass a directory holding config.json and "
        f"model.safetensors (./{name} if it is one), a bundled model ({', '.join(['default', *BUNDLED])}), "
        f"a Hub name ({', '.join(HUB_NAMES)}) or a Hub id owner/name"
    )


def download(name: str) -> Path:
    """Fetch a checkpoint's config and safetensors files from the Hugging Face Hub (with a
    progress bar) into its cache, and return the local directory."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError

    repo_id = HUB_NAMES.get(name, name)
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES))  # safetensors only, never .bin
    except GatedRepoError:
        raise ModelLoadError(
            f"{repo_id} is a gated repository: accept its licence at https://huggingface.co/{repo_id} "
            "with your account, then log in here (`hf auth login`, or set HF_TOKEN) and try again"
        ) from None
    except Exception as e:  # network, auth, missing repo: all mean "cannot get it from here"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        which = repr(name) if repo_id == name else f"{name!r} ({repo_id})"
        raise ModelLoadError(
            f"could not download {which} from the Hugging Face Hub ({reason}). "
            "Without network access, pass a local directory in Hugging Face format instead: "
            "load_model('path/to/dir') or --model path/to/dir"
        ) from None


def trusted_root(model_dir: Path) -> Path:
    """Where a model directory's files may really live: the directory itself, or for a Hub
    cache snapshot (models--owner--name/snapshots/REV/, whose files are links into ../../blobs)
    the repository's cache folder."""
    return model_dir.parent.parent if model_dir.parent.name == "snapshots" else model_dir


def model_file(model_dir: Path, name, listed_in: str) -> Path:
    """The path of a checkpoint file (one load_model reads, or one an index or SHA256SUMS
    names), if it is a plain file name whose real location stays inside the model directory;
    a ModelLoadError otherwise."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ModelLoadError(
            f"{model_dir / listed_in} names the file {name!r}; it may only name plain file names "
            "inside the model directory (no folders, no '..', no absolute paths)"
        )
    path = model_dir / name
    try:
        root, real = trusted_root(model_dir).resolve(), path.resolve()
    except (RuntimeError, OSError) as e:  # a symlink loop
        raise ModelLoadError(f"{path} cannot be resolved ({e}); is it a link that points to itself?") from None
    if not real.is_relative_to(root):
        raise ModelLoadError(
            f"{path} is a link to {real}, outside the model directory "
            f"{root}; refusing to read it (copy the file into the directory)"
        )
    return path


def verify_checksums(model_dir: Path) -> None:
    """If the directory has a SHA256SUMS file (`sha256sum` format), check every file it lists."""
    sums = model_dir / "SHA256SUMS"
    if not sums.exists():
        return
    for number, line in enumerate(read_text(sums).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if len(fields) != 2 or not re.fullmatch(r"[0-9a-fA-F]{64}", fields[0]):
            raise ModelLoadError(
                f"{sums} line {number} is {line[:80]!r}; each line must be "
                "'<64 hex digits>  <file name>', as sha256sum writes it"
            )
        want, name = fields
        path = model_file(model_dir, name.strip().removeprefix("*"), "SHA256SUMS")
        digest = hashlib.sha256()
        with open_regular_file(path) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != want.lower():
            raise ModelLoadError(
                f"{path} does not match its sha256 in SHA256SUMS: the file is corrupt or was "
                f"changed; {restore_hint(model_dir)}"
            )


def restore_hint(model_dir: Path) -> str:
    """How to get a good copy back: a bundled model from the repository or the package, any
    other from wherever it came from."""
    from minfer.checkpoints.store import bundled_weights_dir

    if model_dir.resolve().is_relative_to(bundled_weights_dir().resolve()):
        return (
            "restore it (git checkout weights/ in a clone, or reinstall minfer) or "
            "regenerate it with its recipe in weights/recipes/"
        )
    return "download or copy the checkpoint again"


def read_text(path: Path) -> str:
    """A small text file of a checkpoint (config, index, sums), read only if it is a regular file."""
    with open_regular_file(path) as f:
        data = f.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise ModelLoadError(f"{path} is over {MAX_TEXT_BYTES:,} bytes: too large for a config or index")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelLoadError(f"{path} is not UTF-8 text: {e}") from None


def read_json_object(path: Path) -> dict:
    """A JSON file of a checkpoint that must hold an object (config.json, the shard index)."""
    try:
        value = json.loads(read_text(path), object_pairs_hook=no_duplicate_keys)
    except (ValueError, RecursionError) as e:  # bad JSON, a repeated key, a 5,000-digit number, deep nesting
        raise ModelLoadError(f"{path} is not valid JSON: {str(e) or type(e).__name__}") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path} holds a JSON {type(value).__name__}; expected an object")
    return value


def read_config(model_dir: Path) -> dict:
    """The parsed config.json of a model directory."""
    path = model_dir / "config.json"
    if not path.exists():
        raise ModelLoadError(f"{model_dir} has no config.json; is it a Hugging Face model directory?")
    return read_json_object(path)


def weight_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a checkpoint: one file, or the shards its index lists."""
    single = model_dir / "model.safetensors"
    index = model_dir / "model.safetensors.index.json"
    if single.exists():
        return [single]
    if index.exists():
        weight_map = read_json_object(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelLoadError(f"{index} has no weight_map object (tensor name -> shard file)")
        names = sorted({model_file(model_dir, f, index.name).name for f in weight_map.values()})
        return [model_dir / f for f in names]
    pickles = [p.name for p in model_dir.glob("*.bin")] + [p.name for p in model_dir.glob("*.pt*")]
    hint = (
        (
            f" It has {', '.join(pickles)}: pickle files, which minfer never opens because "
            "unpickling can run arbitrary code. Convert with transformers: "
            "model.save_pretrained(dir, safe_serialization=True)."
        )
        if pickles
        else ""
    )
    raise ModelLoadError(f"{model_dir} has no model.safetensors or model.safetensors.index.json.{hint}")


def check_finite(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """Refuse a file holding NaN or inf, naming the first such tensor. Each file is scanned
    once per process (remembered by its identity: device, inode, size, modification time)."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _FINITE_FILES:
        return
    for name, (dtype, array) in tensors.items():
        bad = non_finite_count(dtype, array)
        if bad:
            raise ModelLoadError(
                f"{path}: tensor {name!r} holds {bad:,} NaN or infinite number(s); "
                "a model computed from it gives NaN. The checkpoint is corrupt"
            )
    _FINITE_FILES.add(key)


def read_tensors(model_dir: Path) -> dict[str, tuple[str, np.ndarray]]:
    """Every tensor of a checkpoint's safetensors files (name -> (dtype, array)), each file
    checked for NaN and inf; buffers that are not parameters left out."""
    stored: dict[str, tuple[str, np.ndarray]] = {}
    for path in weight_files(model_dir):
        tensors = read_safetensors(path)
        check_finite(path, tensors)
        stored |= tensors
    return {k: t for k, t in stored.items() if not k.endswith(_NOT_PARAMETERS)}


def read_weights(model_dir: Path, config: ModelConfig) -> GPT2Weights | LlamaWeights:
    """Read every tensor, check it against the config's shapes, widen it to float32."""
    stored = read_tensors(model_dir)
    if isinstance(config, LlamaConfig):
        shapes, blocks = llama_expected_shapes(config), "model.layers"
        head = stored.pop("lm_head.weight") if config.tie_word_embeddings and "lm_head.weight" in stored else None
    else:
        stored = {k.removeprefix("transformer."): t for k, t in stored.items()}
        shapes, blocks = expected_shapes(config), "h"
        head = stored.pop("lm_head.weight", None)
    check_names(model_dir, set(stored), set(shapes), blocks)

    def get(name: str) -> np.ndarray:
        dtype, array = stored[name]
        if dtype not in ("F32", "F16", "BF16", "F64"):
            raise ModelLoadError(
                f"tensor {name} in {model_dir} is {dtype}; a weight must be a float "
                f"(F32, F16 or BF16): the checkpoint is not a float {config.family} model"
            )
        if tuple(array.shape) != shapes[name]:
            raise ModelLoadError(
                f"tensor {name} in {model_dir} has shape {tuple(array.shape)}, but config.json "
                f"implies {shapes[name]}; the config and the weights do not belong together"
            )
        return to_float32(dtype, array)

    weights: GPT2Weights | LlamaWeights
    if isinstance(config, LlamaConfig):
        weights = build_llama_weights(config, get)
    else:
        weights = build_weights(config, get)
    if head is not None and not np.array_equal(to_float32(*head), weights.lm_head):
        raise ModelLoadError(
            f"{model_dir} has an lm_head.weight different from the token embedding, but the "
            "model's LM head is tied to it (tie_word_embeddings); the checkpoint contradicts its config"
        )
    return weights


def check_names(model_dir: Path, found: set[str], wanted: set[str], blocks: str = "h") -> None:
    """Raise if the checkpoint lacks a tensor the config needs, or holds one minfer would ignore.
    `blocks` is the prefix of the block tensors ('h' in GPT-2, 'model.layers' in Llama)."""
    missing, extra = sorted(wanted - found), sorted(found - wanted)
    if missing:
        raise ModelLoadError(f"{model_dir} lacks {len(missing)} tensor(s) the config needs, e.g. {missing[0]}")
    if extra:
        n_layer = len(wanted_blocks(wanted, blocks))
        numbered = re.compile(re.escape(blocks) + r"\.(\d+)\.")
        ids = [int(m.group(1)) for m in map(numbered.match, extra) if m]
        if len(ids) == len(extra) and min(ids) >= n_layer:  # whole blocks past the config's
            raise ModelLoadError(
                f"{model_dir} has blocks up to {blocks}.{max(ids)}, but its config.json says "
                f"n_layer={n_layer}: the config and the weights do not belong together"
            )
        raise ModelLoadError(
            f"{model_dir} has {len(extra)} tensor(s) the config does not use, e.g. {extra[0]}; "
            "is it another architecture, or a config missing a setting?"
        )


def wanted_blocks(names: set[str], blocks: str = "h") -> set[str]:
    """The block prefixes ('h.0', 'h.1', ... or 'model.layers.0', ...) among tensor names."""
    depth = blocks.count(".") + 2
    return {".".join(n.split(".")[:depth]) for n in names if n.startswith(blocks + ".")}
