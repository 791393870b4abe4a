"""Checkpoint tokenizers (tokenizer.json, Meta's tokenizer.model) against the `tokenizers` library.

The references were saved by tests/fixtures/make_tokenizer_fixtures.py (which needs `tokenizers`
and `transformers`; this file needs neither): each fixture tokenizer's ids for a set of hard
texts, with special tokens as text (minfer's default) and as tokens (allow_special=True).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, UNICODE_TEXTS
from tokenizer_json import tokenizer_json

import minfer
from minfer.checkpoints import loading
from minfer.checkpoints.tokenizer_files import (
    LLAMA3_PATTERN,
    llama3_special_tokens,
    load_tokenizer,
    stop_token_ids,
)
from minfer.tokenizer import GPT2_RANKS_FILE, Tokenizer, read_ranks

TOKENIZERS = FIXTURES / "tokenizers"
STYLES = ["llama3-style", "qwen-style", "smollm-style"]
ENCODINGS = json.loads((TOKENIZERS / "encodings.json").read_text("utf-8"))
TEXTS = ENCODINGS["texts"]


@pytest.fixture(scope="module", params=STYLES)
def style(request) -> tuple[str, Tokenizer]:
    return request.param, load_tokenizer(TOKENIZERS / request.param)


@pytest.fixture(scope="module")
def gpt2_json(tmp_path_factory) -> Path:
    """GPT-2's tokenizer.json, rebuilt from weights/gpt2.tiktoken with GPT-2's own merges."""
    path = tmp_path_factory.mktemp("gpt2") / "tokenizer.json"
    spec = tokenizer_json(
        read_ranks(GPT2_RANKS_FILE), [("<|endoftext|>", 50256, True)], complete=False, added_in_vocab=True
    )
    path.write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    return path


# ---- equal to the `tokenizers` library ----


def test_every_text_encodes_as_the_tokenizers_library_does(style):
    name, tok = style
    want = ENCODINGS["ids"][name]
    for i, text in enumerate(TEXTS):
        assert tok.encode(text) == want["text"][i], text
        assert tok.encode(text, allow_special=True) == want["special"][i], text


def test_every_text_comes_back(style):
    name, tok = style
    for text in TEXTS + UNICODE_TEXTS:
        want = unicodedata.normalize("NFC", text) if name == "qwen-style" else text
        assert tok.decode(tok.encode(text)) == want
        assert tok.decode(tok.encode(text, allow_special=True)) == want


def test_the_fixture_tokenizers_have_the_layout_their_models_have():
    llama, qwen, smollm = (load_tokenizer(TOKENIZERS / name) for name in STYLES)
    assert (llama.n_ranks, llama.n_vocab, llama.bos_id) == (2048, 2304, 2048)
    assert llama.special_tokens["<|eot_id|>"] == 2057 and llama.special_tokens["<|start_header_id|>"] == 2054
    assert (qwen.n_vocab, qwen.bos_id, qwen.normalization) == (1541, None, "NFC")
    assert qwen.special_tokens == {
        "<|endoftext|>": 1536,
        "<|im_start|>": 1537,
        "<|im_end|>": 1538,
        "<tool_call>": 1539,
        "</tool_call>": 1540,
    }
    assert qwen.added_words == {"<tool_call>", "</tool_call>"} and qwen.eot_id == 1536
    assert smollm.rank_ids == range(3, 1027) and smollm.special_tokens["<|im_end|>"] == 2


def test_added_words_are_matched_in_any_text_special_tokens_only_when_allowed():
    qwen = load_tokenizer(TOKENIZERS / "qwen-style")
    assert qwen.encode("<tool_call>") == [1539]  # an added word, like any word of the vocabulary
    assert 1538 not in qwen.encode("<|im_end|>") and qwen.encode("<|im_end|>", allow_special=True) == [1538]


def test_special_tokens_before_the_ranks_decode():
    """SmolLM2 puts its special tokens first: ids 0..2, then the BPE tokens from 3."""
    tok = load_tokenizer(TOKENIZERS / "smollm-style")
    assert tok.decode([0, 1, 2, 3]) == "<|endoftext|><|im_start|><|im_end|>" + tok.decode([3])
    with pytest.raises(minfer.TokenizerError, match=r"token id 1027 has no text.*3\.\.1026.*special tokens 0\.\.2"):
        tok.decode([1027])


def test_gpt2s_tokenizer_json_equals_its_tiktoken_ranks(gpt2_json):
    ours, tiktoken_ranks = load_tokenizer(gpt2_json), Tokenizer.gpt2()
    want = ENCODINGS["ids"]["gpt2"]
    for i, text in enumerate(TEXTS):
        assert ours.encode(text) == want["text"][i] == tiktoken_ranks.encode(text), text
        assert ours.encode(text, allow_special=True) == want["special"][i], text
    assert ours.n_vocab == 50257 and ours.special_tokens == {"<|endoftext|>": 50256} and ours.bos_id is None


# ---- Meta's tokenizer.model ----


def test_metas_tokenizer_model_equals_the_tokenizer_json_of_the_same_ranks():
    meta = load_tokenizer(TOKENIZERS / "llama3-style" / "tokenizer.model")
    hf = load_tokenizer(TOKENIZERS / "llama3-style" / "tokenizer.json")
    assert meta.special_tokens == hf.special_tokens and meta.bos_id == hf.bos_id == 2048
    want = ENCODINGS["ids"]["llama3-style"]
    for i, text in enumerate(TEXTS):
        assert meta.encode(text) == want["text"][i] and meta.encode(text, allow_special=True) == want["special"][i]


def test_metas_special_tokens_follow_its_order():
    specials = llama3_special_tokens(128000)
    assert len(specials) == 256 and sorted(specials.values()) == list(range(128000, 128256))
    assert [specials[t] for t in ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|eot_id|>")] == [
        128000,
        128001,
        128006,
        128009,
    ]
    assert specials["<|reserved_special_token_4|>"] == 128008
    assert specials["<|reserved_special_token_250|>"] == 128255
    assert LLAMA3_PATTERN.startswith("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}")


def test_a_model_directory_prefers_tokenizer_json(tmp_path):
    shutil.copytree(TOKENIZERS / "llama3-style", tmp_path, dirs_exist_ok=True)
    (tmp_path / "tokenizer.json").unlink()
    meta = load_tokenizer(tmp_path)  # tokenizer.model, with the directory's chat template
    assert meta.bos_id == 2048 and meta.chat_template is not None
    assert load_tokenizer(TOKENIZERS / "llama3-style").name == "llama3-style"


# ---- SentencePiece is refused, clearly ----


@pytest.mark.parametrize(
    "path",
    ["sentencepiece", "sentencepiece/tokenizer.json", "sentencepiece/tokenizer.model"],
)
def test_sentencepiece_is_refused_by_name(path):
    with pytest.raises(minfer.TokenizerError, match="SentencePiece tokenizers are not supported.*Llama 3.*Qwen"):
        load_tokenizer(TOKENIZERS / path)


def test_a_sentencepiece_only_model_model_directory_is_refused(tmp_path):
    shutil.copy(TOKENIZERS / "sentencepiece" / "tokenizer.model", tmp_path)
    with pytest.raises(minfer.TokenizerError, match="binary protobuf.*not supported"):
        load_tokenizer(tmp_path)


# ---- hostile and unsupported tokenizer.json files ----


def qwen_spec() -> dict:
    return json.loads((TOKENIZERS / "qwen-style" / "tokenizer.json").read_text("utf-8"))


def edited(edit):
    """A case writing qwen-style's tokenizer.json changed in place by edit(spec)."""

    def setup(path: Path) -> None:
        spec = qwen_spec()
        edit(spec)
        path.write_text(json.dumps(spec, ensure_ascii=False), "utf-8")

    return setup


def written(text: str | bytes):
    return lambda path: path.write_bytes(text if isinstance(text, bytes) else text.encode())


def vocab_edit(edit):
    return edited(lambda s: edit(s["model"]["vocab"]))


def first_merge_of(spec: dict, token_id: int) -> int:
    token = next(t for t, i in spec["model"]["vocab"].items() if i == token_id)
    return next(n for n, (a, b) in enumerate(spec["model"]["merges"]) if a + b == token)


def drop_merges_making(token_id: int):
    def edit(spec):
        token = next(t for t, i in spec["model"]["vocab"].items() if i == token_id)
        spec["model"]["merges"] = [m for m in spec["model"]["merges"] if m[0] + m[1] != token]

    return edited(edit)


def swap_merges(spec: dict) -> None:
    merges = spec["model"]["merges"]
    a, b = first_merge_of(spec, 300), first_merge_of(spec, 900)
    merges[a], merges[b] = merges[b], merges[a]


def pre_tokenizer(value):
    return edited(lambda s: s.update(pre_tokenizer=value))


def split_with(**changes):
    def edit(spec):
        spec["pre_tokenizer"]["pretokenizers"][0].update(changes)

    return edited(edit)


def added(**changes):
    return edited(lambda s: s["added_tokens"][0].update(changes))


BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}

# (id, setup(path of tokenizer.json), regex the TokenizerError's message must match)
HOSTILE = [
    ("not JSON", written("{'vocab': "), "not valid JSON"),
    ("not UTF-8", written(b'{"model": "\xff"}'), "not valid JSON"),
    ("a JSON list", written("[1, 2]"), "holds a JSON list"),
    ("a key twice", written('{"model": {}, "model": {}}'), "'model' appears twice"),
    ("nested 100,000 deep", written("[" * 100_000 + "]" * 100_000), "not valid JSON"),
    ("no model", edited(lambda s: s.pop("model")), "no 'model' object"),
    ("no vocabulary", edited(lambda s: s["model"].pop("vocab")), "model.vocab must be a non-empty object"),
    ("a gap in the ids", vocab_edit(lambda v: v.pop(next(t for t, i in v.items() if i == 700))), "rank 1535 is out"),
    ("an id twice", vocab_edit(lambda v: v.update({"Ġzzz": 5})), "rank 5 is repeated"),
    ("a negative id", vocab_edit(lambda v: v.update({"Ġzzz": -1})), "the id -1; ids are integers"),
    ("a float id", vocab_edit(lambda v: v.update({"Ġzzz": 3.0})), "the id 3.0; ids are integers"),
    ("a byte missing", vocab_edit(lambda v: v.pop("Ā")), "lacks 1 of the 256 single-byte tokens"),
    ("a raw space in a token", vocab_edit(lambda v: v.update({"a b": 1541})), "outside GPT-2's byte alphabet"),
    ("merges not a list", edited(lambda s: s["model"].update(merges="a b")), "merges must be a list"),
    ("a merge of three", edited(lambda s: s["model"]["merges"].insert(0, "a b c")), "merge 0 .* expected 'a b'"),
    ("a merge of unknowns", edited(lambda s: s["model"]["merges"].insert(0, ["Ġzzzq", "Ġzzzq"])), "not in the vocab"),
    ("merges out of order", edited(swap_merges), "in the order of the ids they make"),
    ("a token no merge makes", drop_merges_making(800), "made by no merge"),
    ("BPE dropout", edited(lambda s: s["model"].update(dropout=0.1)), "dropout"),
    ("a subword prefix", edited(lambda s: s["model"].update(continuing_subword_prefix="##")), "subword markers"),
    ("a WordPiece model", edited(lambda s: s["model"].update(type="WordPiece")), "'WordPiece'.*BERT"),
    ("a lowercasing normalizer", edited(lambda s: s.update(normalizer={"type": "Lowercase"})), "rewrites text"),
    ("a whitespace pre-tokenizer", pre_tokenizer({"type": "Whitespace"}), "pre-tokenizer is Whitespace"),
    ("no pre-tokenizer", pre_tokenizer(None), "pre-tokenizer is missing"),
    ("ByteLevel adds a space", pre_tokenizer(BYTE_LEVEL | {"add_prefix_space": True}), "add_prefix_space"),
    ("ByteLevel without a regex", pre_tokenizer(BYTE_LEVEL | {"use_regex": False}), "nothing cuts the text"),
    (
        "Digits not one by one",
        pre_tokenizer({"type": "Sequence", "pretokenizers": [{"type": "Digits"}, BYTE_LEVEL]}),
        "individual_digits",
    ),
    ("a Split that removes", split_with(behavior="Removed"), "behavior 'Isolated'"),
    ("a Split by a string", split_with(pattern={"String": " "}), r"must be a \{'Regex'"),
    ("a regex that does not compile", split_with(pattern={"Regex": "(\\p{L}"}), "not a regex tiktoken can run"),
    ("a regex that skips characters", split_with(pattern={"Regex": "\\p{L}+"}), "does not cover every character"),
    ("a huge regex", split_with(pattern={"Regex": "a|" * 6000 + "."}), "of 1..10000 characters"),
    ("an added token eating spaces", added(lstrip=True), "sets lstrip, which swallows the spaces"),
    ("an added token on a BPE token's id", added(id=7), "id 7 is both .* in the vocabulary and added token"),
    ("two added tokens, one id", added(id=1537), "share an id"),
    ("an added token twice", added(content="<|im_start|>"), "listed twice"),
    ("an added token without text", added(content=5), "needs a string 'content'"),
    ("added tokens not a list", edited(lambda s: s.update(added_tokens={})), "added_tokens is a dict"),
    ("a Metaspace pre-tokenizer", pre_tokenizer({"type": "Metaspace", "replacement": "▁"}), "Metaspace.*not supported"),
    (
        "a Unigram model",
        edited(lambda s: s.update(model={"type": "Unigram", "vocab": [["▁a", -1.0]]})),
        "Unigram.*not supported",
    ),
    ("'▁' tokens", vocab_edit(lambda v: v.update({"▁the": 1536})), "'▁' for spaces.*not supported"),
]


@pytest.mark.parametrize("setup, message", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_a_hostile_tokenizer_json_is_refused_by_name(tmp_path, setup, message):
    path = tmp_path / "tokenizer.json"
    setup(path)
    with pytest.raises(minfer.TokenizerError, match=message):
        load_tokenizer(path)


ODD_VALUES = [None, 5, "ByteLevel", [1], {"type": 5}, {"type": "Sequence"}]
ODD_PLACES = [
    ("added_tokens",),
    ("normalizer",),
    ("pre_tokenizer",),
    ("post_processor",),
    ("decoder",),
    ("model", "type"),
    ("model", "vocab"),
    ("model", "merges"),
    ("model", "byte_fallback"),
    ("model", "dropout"),
    ("pre_tokenizer", "pretokenizers"),
]


@pytest.mark.parametrize("place", ODD_PLACES, ids=".".join)
def test_any_value_in_any_place_is_a_tokenizer_error_or_works(tmp_path, place):
    """A value of the wrong type anywhere: a TokenizerError (or a working tokenizer), never a crash."""
    path = tmp_path / "tokenizer.json"
    for value in ODD_VALUES:
        spec = qwen_spec()
        parent = spec
        for key in place[:-1]:
            parent = parent[key]
        parent[place[-1]] = value
        path.write_text(json.dumps(spec), "utf-8")
        try:
            load_tokenizer(path)
        except minfer.TokenizerError:
            pass


def test_a_regex_that_backtracks_forever_is_an_error_not_a_hang(tmp_path):
    path = tmp_path / "tokenizer.json"
    split_with(pattern={"Regex": r"(?:a|aa)+(?=c)|\p{L}+|\p{N}|\s+|[^\s\p{L}\p{N}]+"})(path)
    tok = load_tokenizer(path)  # the probe text has no long run of a's
    with pytest.raises(minfer.TokenizerError, match="could not split this text"):
        tok.encode("a" * 80)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "tokenizer.json"
    with path.open("wb") as f:
        f.truncate(minfer.tokenizer.MAX_TOKENIZER_BYTES + 1)  # sparse: no disk used
    with pytest.raises(minfer.TokenizerError, match="more than the 100,000,000 a tokenizer file may have"):
        load_tokenizer(path)


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer.model", "tokenizer_config.json"])
def test_a_fifo_is_refused_without_hanging(tmp_path, name):
    if name == "tokenizer_config.json":  # read beside a tokenizer
        shutil.copy(TOKENIZERS / "qwen-style" / "tokenizer.json", tmp_path)
    os.mkfifo(tmp_path / name)
    code = f"import minfer\ntry: minfer.load_tokenizer({str(tmp_path)!r})\nexcept minfer.TokenizerError as e: print(e)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "not a regular file" in run.stdout, run.stderr[-2000:]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not base64!! 0\n", "neither Meta's Llama 3 tokenizer.model"),
        (b"IQ== 0\nnot base64!! 1\n", "line 2 is not 'base64 rank'"),
        (b"IQ== 0\n", "lacks 255 of the 256 single-byte tokens"),
    ],
)
def test_a_broken_tokenizer_model_is_refused(tmp_path, content, message):
    (tmp_path / "tokenizer.model").write_bytes(content)
    with pytest.raises(minfer.TokenizerError, match=message):
        load_tokenizer(tmp_path / "tokenizer.model")


def test_a_path_with_no_tokenizer_is_named(tmp_path):
    with pytest.raises(minfer.TokenizerError, match="has no tokenizer file: expected one of tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(minfer.TokenizerError, match="no tokenizer at"):
        load_tokenizer(tmp_path / "nothing-here")


# ---- in a model directory ----


def model_with(tmp_path: Path, style: str, n_vocab: int) -> Path:
    """A random-weight GPT-2 of n_vocab rows beside a fixture tokenizer's files."""
    from minfer.checkpoints.store import save_checkpoint
    from minfer.weights import random_weights

    shutil.copytree(TOKENIZERS / style, tmp_path, dirs_exist_ok=True)
    cfg = minfer.Config(n_layer=1, n_head=2, n_embd=8, n_ctx=128, n_vocab=n_vocab, eos_token_id=n_vocab - 1)
    save_checkpoint(tmp_path, cfg, random_weights(cfg), np.float32)
    return tmp_path


def test_load_model_finds_tokenizer_json_and_the_chat_template(tmp_path):
    model = minfer.load_model(model_with(tmp_path, "qwen-style", 1600))
    tok = model.tokenizer
    assert tok is not None and tok.n_vocab == 1541 and tok.chat_template is not None
    g = minfer.generate(model, tok.encode_chat([{"role": "user", "content": "Hi"}]), 3, stop_tokens=())
    assert len(g.tokens) == 3


def test_load_model_refuses_a_tokenizer_larger_than_the_embedding(tmp_path):
    with pytest.raises(minfer.TokenizerError, match="has 1541 ids but the model only 1500 embedding rows"):
        minfer.load_model(model_with(tmp_path, "qwen-style", 1500))


def test_load_model_refuses_a_sentencepiece_checkpoint(tmp_path):
    model_dir = model_with(tmp_path, "smollm-style", 1100)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        (model_dir / name).unlink()
    shutil.copy(TOKENIZERS / "sentencepiece" / "tokenizer.model", model_dir)  # Llama 2's layout
    with pytest.raises(minfer.TokenizerError, match="SentencePiece tokenizers are not supported"):
        minfer.load_model(model_dir)


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"])
def test_a_tokenizer_file_linking_out_of_the_model_directory_is_refused(tmp_path, name):
    model_dir = model_with(tmp_path / "model", "qwen-style", 1600)
    outside = tmp_path / name
    outside.write_text("{}")
    (model_dir / name).unlink(missing_ok=True)
    (model_dir / name).symlink_to(outside)
    with pytest.raises(minfer.ModelLoadError, match="outside the model directory"):
        minfer.load_model(model_dir)


def test_the_hub_download_fetches_the_tokenizer_files():
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"):
        assert name in loading._HUB_FILES
    assert {"tokenizer.model", "special_tokens_map.json", "tokenizer.tiktoken"} <= set(loading._HUB_FILES)


# ---- stop ids ----


def test_stop_ids_come_from_generation_config():
    assert stop_token_ids(TOKENIZERS / "llama3-style", {"eos_token_id": 2049}) == (2049, 2056, 2057)
    assert stop_token_ids(TOKENIZERS / "qwen-style", {}) == (1538, 1536)
    assert stop_token_ids(TOKENIZERS / "smollm-style", {"vocab_size": 49152}) == (2,)


def test_stop_ids_fall_back_to_config_json(tmp_path):
    assert stop_token_ids(tmp_path, {"eos_token_id": 50256}) == (50256,)
    assert stop_token_ids(tmp_path, {"eos_token_id": [7, 9, 7]}) == (7, 9)
    assert stop_token_ids(None, {}) == ()
    (tmp_path / "generation_config.json").write_text('{"eos_token_id": null, "do_sample": true}')
    assert stop_token_ids(tmp_path, {"eos_token_id": 3}) == (3,)


@pytest.mark.parametrize("value", ['"2"', "[1, 2.5]", "[-1]", "true", "[99999]"])
def test_bad_stop_ids_are_refused(tmp_path, value):
    (tmp_path / "generation_config.json").write_text(f'{{"eos_token_id": {value}}}')
    with pytest.raises(minfer.ModelLoadError, match="eos_token_id .* must be a token id"):
        stop_token_ids(tmp_path, {"vocab_size": 1000})
