"""The offline GPT-2 tokenizer against tiktoken's own definition and known GPT-2 ids."""

from __future__ import annotations

import shutil

import pytest
from conftest import UNICODE_TEXTS as TEXTS

import minfer
from minfer.tokenizer import GPT2_PATTERN, GPT2_RANKS_FILE, Tokenizer


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.gpt2()


def test_known_gpt2_ids(tok):
    assert tok.encode("Hello, my dog is cute") == [15496, 11, 616, 3290, 318, 13779]
    assert tok.encode("<|endoftext|>", allow_special=True) == [50256]
    assert tok.n_vocab == 50257 and tok.eot_id == 50256


def test_pattern_is_tiktokens_r50k_pattern():
    from tiktoken_ext.openai_public import r50k_pat_str  # a constant; importing downloads nothing

    assert GPT2_PATTERN == r50k_pat_str


@pytest.mark.parametrize("text", TEXTS)
def test_pattern_splits_like_the_original_gpt2_release(text):
    regex = pytest.importorskip("regex")
    original = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    assert regex.findall(GPT2_PATTERN, text) == regex.findall(original, text)


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_special_token_can_be_encoded_as_text(tok):
    ids = tok.encode("<|endoftext|>", allow_special=False)
    assert 50256 not in ids and tok.decode(ids) == "<|endoftext|>"


def test_text_is_only_text_by_default(tok):
    """User text never becomes a special token unless the caller asks (allow_special=True)."""
    assert tok.encode("Hi<|endoftext|>") == tok.encode("Hi<|endoftext|>", allow_special=False)
    assert 50256 not in tok.encode("Hi<|endoftext|>")
    assert tok.encode("Hi<|endoftext|>", allow_special=True) == [17250, 50256]


@pytest.mark.parametrize("text", TEXTS)
def test_incremental_decode_equals_full_decode(tok, text):
    decoder = tok.decoder()
    pieces = [decoder.add(t) for t in tok.encode(text)] + [decoder.flush()]
    assert "".join(pieces) == tok.decode(tok.encode(text))
    assert not any("\ufffd" in p for p in pieces)  # never half a character


def test_emoji_spans_several_tokens_and_is_held_back(tok):
    ids = tok.encode("🦙")
    assert len(ids) > 1  # byte-level BPE splits this emoji's 4 bytes
    decoder = tok.decoder()
    assert [decoder.add(t) for t in ids[:-1]] == [""] * (len(ids) - 1)
    assert decoder.add(ids[-1]) == "🦙"


def test_unfinished_character_is_replaced_at_flush(tok):
    decoder = tok.decoder()
    assert decoder.add(tok.encode("🦙")[0]) == ""
    assert decoder.flush() == "\ufffd"


def test_corrupt_ranks_file_is_refused(tmp_path):
    bad = tmp_path / "gpt2.tiktoken"
    shutil.copy(GPT2_RANKS_FILE, bad)
    with bad.open("ab") as f:
        f.write(b"IQ== 99999\n")
    with pytest.raises(minfer.TokenizerError, match="sha256"):
        Tokenizer.gpt2(bad)


def test_missing_ranks_file_names_the_path(tmp_path):
    with pytest.raises(minfer.TokenizerError, match="cannot read"):
        Tokenizer.gpt2(tmp_path / "nope.tiktoken")


def test_out_of_range_id_is_a_tokenizer_error(tok):
    with pytest.raises(minfer.TokenizerError, match="50257"):
        tok.decode([15496, 50257])
    with pytest.raises(minfer.TokenizerError):
        tok.decode([-1])


def test_model_directory_with_its_own_tokenizer(tmp_path):
    """A checkpoint dir may carry tokenizer.tiktoken; <|endoftext|> is config.json's eos id."""
    import numpy as np

    from minfer.checkpoints.store import save_checkpoint
    from minfer.weights import random_weights

    first_300 = GPT2_RANKS_FILE.read_bytes().splitlines(keepends=True)[:300]  # single bytes + merges
    (tmp_path / "tokenizer.tiktoken").write_bytes(b"".join(first_300))
    cfg = minfer.Config(n_layer=1, n_head=2, n_embd=8, n_ctx=16, n_vocab=301, eos_token_id=300)
    save_checkpoint(tmp_path, cfg, random_weights(cfg), np.float32)
    tok = minfer.load_model(tmp_path).tokenizer
    assert tok.n_vocab == 301 and tok.eot_id == 300
    assert tok.encode("ab<|endoftext|>", allow_special=True) == [64, 65, 300]
    assert tok.decode(tok.encode("the cat")) == "the cat"
