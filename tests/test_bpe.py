"""The BPE trainer (minfer.bpe): hand-derived merges, determinism, and agreement with tiktoken."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import UNICODE_TEXTS

import minfer.tokenizer
from minfer import bpe
from minfer.errors import TokenizerError
from minfer.tokenizer import END_OF_TEXT, Tokenizer, read_ranks

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM_RANKS = ROOT / "weights" / "classroom" / "tokenizer.tiktoken"
KJV_HELDOUT = ROOT / "weights" / "classroom" / "heldout.txt"  # committed copy of the held-out split


def learned(ranks: dict[bytes, int]) -> list[bytes]:
    """The merged tokens in rank order (everything after the 256 single bytes)."""
    return [token for token, rank in sorted(ranks.items(), key=lambda item: item[1])][256:]


def test_first_merges_by_hand():
    # One piece, "aaabdaaabac" (letters only, so the regex keeps it whole). Counting overlaps:
    #   aa 4, ab 2, bd 1, da 1, ba 1, ac 1             -> aa = 256
    #   [aa a b d aa a b a c]: (aa,a) 2, (a,b) 2, ...   -> tie, (97, 98) < (256, 97): ab = 257
    #   [aa ab d aa ab a c]:   (aa,ab) 2, others 1      -> aaab = 258
    #   [aaab d aaab a c]:     all 1, smallest (97, 99)  -> ac = 259
    merges = list(bpe.learn_merges({b"aaabdaaabac": 1}, n_ranks=260))
    assert [(m.left, m.right, m.count, m.rank) for m in merges] == [
        (b"a", b"a", 4, 256),
        (b"a", b"b", 2, 257),
        (b"aa", b"ab", 2, 258),
        (b"a", b"c", 1, 259),
    ]
    ranks = bpe.train_bpe("aaabdaaabac", vocab_size=261, n_special=1)
    assert learned(ranks) == [b"aa", b"ab", b"aaab", b"ac"]
    assert bpe.encode_with_merges("aaabdaaabac", ranks) == [258, ord("d"), 258, 259]


def test_piece_counts_weight_the_pairs():
    # "ab" occurs 3 times in total, " ab" twice: pairs are counted once per occurrence.
    # (a,b) 3 -> ab; then (' ', ab) 2 -> " ab"; then no pair is left, so training stops early.
    ranks = bpe.train_bpe("ab ab ab", vocab_size=300)
    assert learned(ranks) == [b"ab", b" ab"]
    assert b"b " not in ranks  # merges never cross the regex's piece boundaries


def test_training_is_deterministic():
    text = minfer.tokenizer.__doc__ * 3 + generated_text(seed=1, n_words=300)
    first, second = bpe.train_bpe(text, 400), bpe.train_bpe(text, 400)
    assert list(first.items()) == list(second.items())


def test_vocab_size_must_leave_room_for_the_bytes():
    with pytest.raises(TokenizerError, match="vocab_size=256 with 1 special"):
        bpe.train_bpe("some text", vocab_size=256, n_special=1)


def test_save_tiktoken_round_trips_through_read_ranks(tmp_path):
    ranks = bpe.train_bpe("the cat sat on the mat, the hat", vocab_size=270)
    bpe.save_tiktoken(ranks, tmp_path / "t.tiktoken")
    assert read_ranks(tmp_path / "t.tiktoken") == ranks
    with pytest.raises(TokenizerError, match="gaps"):
        bpe.save_tiktoken({**ranks, b"extra": len(ranks) + 1}, tmp_path / "bad.tiktoken")


def generated_text(seed: int, n_words: int) -> str:
    """Deterministic pseudo-text with repeated words (so there is something to merge) in several
    scripts, contractions, digits and odd whitespace."""
    words = [
        "the",
        "Lord",
        "said",
        "naïve",
        "café",
        "Straße",
        "日本語",
        "テキスト",
        "한국어",
        "🦙",
        "👩‍👩‍👧‍👦",
        "Ærø",
        "x²",
        "∑",
        "don't",
        "we'll",
        "1234",
        "3.14",
        ",",
        ".",
        "!?",
    ]
    spaces = [" "] * 12 + ["  ", "\n", "\n\n", "\t", " \n"]
    rng = random.Random(seed)
    return "".join(rng.choice(words) + rng.choice(spaces) for _ in range(n_words))


def random_unicode(rng: random.Random, n_chars: int) -> str:
    """Characters from ASCII, Latin-1, CJK, emoji and whitespace, to fuzz the pre-tokenizer."""
    ranges = [(0x20, 0x7E), (0xA0, 0x17F), (0x3040, 0x30FF), (0x4E00, 0x4E80), (0x1F300, 0x1F64F)]
    pool = [chr(c) for lo, hi in ranges for c in range(lo, hi + 1)] + list(" \n\t\r'") * 20
    return "".join(rng.choice(pool) for _ in range(n_chars))


def test_encode_with_merges_equals_tiktoken_on_gpt2s_vocabulary():
    # GPT-2's 50,000 merges (weights/gpt2.tiktoken) exercise the reference encoder on a real,
    # large vocabulary, independent of our trainer.
    gpt2 = Tokenizer.gpt2()
    ranks = read_ranks(minfer.tokenizer.GPT2_RANKS_FILE)
    for text in UNICODE_TEXTS:
        assert bpe.encode_with_merges(text, ranks) == gpt2.encode(text, allow_special=False), text


@pytest.fixture(scope="module")
def small() -> tuple[dict[bytes, int], Tokenizer]:
    """A 400-id tokenizer trained on committed text (our tokenizer module) plus generated text."""
    text = Path(minfer.tokenizer.__file__).read_text("utf-8") + generated_text(0, 2000)
    ranks = bpe.train_bpe(text, vocab_size=400, n_special=1)
    assert len(ranks) == 399
    return ranks, Tokenizer(ranks, {END_OF_TEXT: len(ranks)}, name="small")


def held_out_texts() -> list[str]:
    """Text the small tokenizer was not trained on."""
    rng = random.Random(2)
    return [
        *UNICODE_TEXTS,
        Path(bpe.__file__).read_text("utf-8"),
        generated_text(3, 500),
        *(random_unicode(rng, 200) for _ in range(50)),
    ]


@pytest.mark.parametrize("text", held_out_texts())
def test_small_tokenizer_agrees_with_tiktoken(small, text):
    ranks, tok = small
    ids = bpe.encode_with_merges(text, ranks)
    assert ids == tok.encode(text, allow_special=False)
    assert tok.decode(ids) == text
    vocab = {rank: token for token, rank in ranks.items()}
    assert b"".join(vocab[i] for i in ids) == text.encode("utf-8")


def test_small_tokenizer_learned_unicode_tokens(small):
    ranks, _ = small
    # "日本語" is repeated in the training text: its 9 UTF-8 bytes should have become one token.
    assert " 日本語".encode() in ranks or "日本語".encode() in ranks


def test_classroom_tokenizer_agrees_with_tiktoken_on_heldout():
    ranks = read_ranks(CLASSROOM_RANKS)
    tok = Tokenizer.from_file(CLASSROOM_RANKS)
    assert (len(ranks), tok.eot_id, tok.n_vocab) == (4095, 4095, 4096)
    heldout = KJV_HELDOUT.read_text("utf-8")
    ids = bpe.encode_with_merges(heldout, ranks)
    assert ids == tok.encode(heldout, allow_special=False)
    assert tok.decode(ids) == heldout
