"""Writing a tiktoken rank table as a Hugging Face tokenizer.json, the two ways such files exist.

- `original_merges`: one merge per token, the pair BPE joined to make it (GPT-2's merges.txt):
  run rank-order BPE on the token's bytes with only the lower ranks; the two parts left are it.
- `complete_merges`: every split of every token into two tokens, ordered by the rank of the
  token made (transformers' TikTokenConverter, which wrote Llama 3's and Qwen2's files).

Shared by tests/fixtures/make_tokenizer_fixtures.py (which hands the files to the `tokenizers`
library for reference encodings) and the tests (which rebuild GPT-2's file without it). Written
apart from minfer's reader, so that a mistake in one is not repeated in the other.
"""

from __future__ import annotations

GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's encoder.py: each byte -> a printable character standing for it."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_TO_CHAR = bytes_to_unicode()


def as_text(token: bytes) -> str:
    return "".join(BYTE_TO_CHAR[b] for b in token)


def bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """tiktoken's merge loop on `token` using only ranks below max_rank."""
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < max_rank and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            return parts
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


def original_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            parts = bpe_parts(ranks, token, rank)
            assert len(parts) == 2, (token, parts)
            merges.append((parts[0], parts[1]))
    return merges


def complete_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    merges = []
    for token in sorted(ranks, key=ranks.__getitem__):
        splits = [(token[:i], token[i:]) for i in range(1, len(token))]
        splits = [(a, b) for a, b in splits if a in ranks and b in ranks]
        merges += sorted(splits, key=lambda ab: (ranks[ab[0]], ranks[ab[1]]))
    return merges


def tokenizer_json(
    ranks: dict[bytes, int],
    added: list[tuple[str, int, bool]],
    split: str | None = None,
    complete: bool = True,
    normalizer: dict | None = None,
    post_processor: dict | None = None,
    ignore_merges: bool = False,
    added_in_vocab: bool = False,
) -> dict:
    """A tokenizer.json: `added` is (text, id, special) per added token (listed in the vocabulary
    too if `added_in_vocab`, as GPT-2's <|endoftext|> is); `split` the regex of a Split
    pre-tokenizer before ByteLevel, or None for ByteLevel's own (GPT-2's) regex."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": split is None}
    pre = (
        byte_level
        if split is None
        else {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated", "invert": False},
                byte_level,
            ],
        }
    )
    merges = complete_merges(ranks) if complete else original_merges(ranks)
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": text,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": special,
            }
            for text, i, special in added
        ],
        "normalizer": normalizer,
        "pre_tokenizer": pre,
        "post_processor": post_processor
        or {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": ignore_merges,
            "vocab": {as_text(t): i for t, i in sorted(ranks.items(), key=lambda kv: kv[1])}
            | ({text: i for text, i, _ in added} if added_in_vocab else {}),
            "merges": [[as_text(a), as_text(b)] for a, b in merges],
        },
    }
