"""Loading checkpoints: the safetensors reader, dtypes, shards, and every refusal."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import FIXTURES
from safetensors.numpy import load_file, save_file

import minfer
from minfer.checkpoints.safetensors_io import read_safetensors, to_float32


@pytest.fixture
def tiny_copy(tmp_path):
    """A writable copy of the tiny fixture checkpoint."""
    dst = tmp_path / "model"
    shutil.copytree(FIXTURES / "tiny-gpt2", dst)
    return dst


def edit_tensors(model_dir, edit):
    path = model_dir / "model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-gpt2-fp16"])
def test_reader_equals_the_safetensors_package(name):
    ours = read_safetensors(FIXTURES / name / "model.safetensors")
    theirs = load_file(str(FIXTURES / name / "model.safetensors"))
    assert set(ours) == set(theirs)
    for key, (_dtype, array) in ours.items():
        assert array.dtype == theirs[key].dtype
        np.testing.assert_array_equal(array, theirs[key])


def test_bfloat16_widens_exactly():
    # bfloat16 bit patterns of 1.0, -2.5 and the smallest normal: the top 16 bits of the float32
    raw = np.array([0x3F80, 0xC020, 0x0080], dtype=np.uint16)
    np.testing.assert_array_equal(to_float32("BF16", raw), np.array([1.0, -2.5, 2.0**-126], np.float32))


def test_fp32_weights_are_memory_mapped():
    model = minfer.load_model(FIXTURES / "tiny-gpt2")
    base = model.weights.wte
    while not isinstance(base, np.memmap) and base.base is not None:
        base = base.base
    assert isinstance(base, np.memmap)


@pytest.mark.parametrize("name", ["tiny-gpt2-fp16", "tiny-gpt2-bf16", "odd-gpt2-sharded"])
def test_half_precision_and_shards_compute_in_float32(name):
    model = minfer.load_model(FIXTURES / name)
    assert all(a.dtype == np.float32 for a in model.weights.arrays().values())


def test_sharded_checkpoint_reads_every_shard():
    index = json.loads((FIXTURES / "odd-gpt2-sharded" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    model = minfer.load_model(FIXTURES / "odd-gpt2-sharded")
    assert (model.config.n_head, model.config.d_head) == (3, 20)


def test_wrong_shape_names_the_tensor(tiny_copy):
    edit_tensors(tiny_copy, lambda t: t.update({"transformer.h.1.mlp.c_fc.weight": np.zeros((64, 255), np.float32)}))
    with pytest.raises(minfer.ModelLoadError, match=r"h\.1\.mlp\.c_fc\.weight.*\(64, 255\).*\(64, 256\)"):
        minfer.load_model(tiny_copy)


def test_missing_tensor_is_named(tiny_copy):
    edit_tensors(tiny_copy, lambda t: t.pop("transformer.ln_f.bias"))
    with pytest.raises(minfer.ModelLoadError, match="ln_f.bias"):
        minfer.load_model(tiny_copy)


def test_unknown_tensor_is_refused(tiny_copy):
    edit_tensors(tiny_copy, lambda t: t.update({"transformer.h.0.attn.q_norm.weight": np.ones(16, np.float32)}))
    with pytest.raises(minfer.ModelLoadError, match="another architecture"):
        minfer.load_model(tiny_copy)


def test_untied_lm_head_is_refused(tiny_copy):
    edit_tensors(tiny_copy, lambda t: t.update({"lm_head.weight": t["transformer.wte.weight"] + 1}))
    with pytest.raises(minfer.ModelLoadError, match="tied"):
        minfer.load_model(tiny_copy)


def test_tied_lm_head_copy_is_accepted(tiny_copy):
    edit_tensors(tiny_copy, lambda t: t.update({"lm_head.weight": t["transformer.wte.weight"].copy()}))
    assert minfer.load_model(tiny_copy).config.n_vocab == 512


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("model_type", "bert", "model_type='bert'; minfer runs gpt2, llama, qwen2, qwen3, mistral"),
        ("model_type", "llama", "lacks the field 'num_attention_heads'"),
        ("activation_function", "relu", "activation_function='relu'"),
        ("n_head", 5, "not divisible"),
        ("n_positions", 32, "shape"),
    ],
)
def test_config_problems_are_named(tiny_copy, key, value, message):
    cfg_path = tiny_copy / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg[key] = value
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(minfer.ModelLoadError, match=message):
        minfer.load_model(tiny_copy)


def test_missing_config(tiny_copy):
    (tiny_copy / "config.json").unlink()
    with pytest.raises(minfer.ModelLoadError, match="no config.json"):
        minfer.load_model(tiny_copy)


def test_pickle_checkpoint_is_never_opened(tiny_copy):
    (tiny_copy / "model.safetensors").unlink()
    # a pickle that would run code if loaded: minfer must refuse it by name, without opening it
    (tiny_copy / "pytorch_model.bin").write_bytes(b"cos\nsystem\n(S'touch /tmp/minfer-pwned'\ntR.")
    with pytest.raises(minfer.ModelLoadError, match="pytorch_model.bin.*never opens"):
        minfer.load_model(tiny_copy)


def test_not_a_directory_nor_a_hub_name(tmp_path):
    with pytest.raises(minfer.ModelLoadError, match="no model directory"):
        minfer.load_model(tmp_path / "absent")


def test_hub_name_without_network_says_to_pass_a_directory(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(minfer.ModelLoadError, match="local directory") as err:
        minfer.load_model("gpt2")
    assert "openai-community/gpt2" in str(err.value)


def test_random_gpt2_is_written_once_and_reused(gpt2_vocab_model):
    from minfer.checkpoints.store import random_gpt2_dir

    path = random_gpt2_dir()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert gpt2_vocab_model.tokenizer.n_vocab == gpt2_vocab_model.config.n_vocab == 50257
    assert random_gpt2_dir() == path and (path / "model.safetensors").stat().st_mtime_ns == stamp


def test_checksums_are_verified_when_listed(tiny_copy):
    import hashlib

    digest = hashlib.sha256((tiny_copy / "model.safetensors").read_bytes()).hexdigest()
    (tiny_copy / "SHA256SUMS").write_text(f"{digest}  model.safetensors\n")
    assert minfer.load_model(tiny_copy).config.n_layer == 2
    edit_tensors(tiny_copy, lambda t: t["transformer.ln_f.bias"].__iadd__(1e-3))
    with pytest.raises(minfer.ModelLoadError, match="does not match its sha256"):
        minfer.load_model(tiny_copy)
