"""Train your own tokenizer: byte-level BPE from scratch (lesson material next to lesson 01).

Byte-pair encoding learns a vocabulary from text:

1. Cut the text into pieces with GPT-2's regex (`GPT2_PATTERN`: words with their leading space,
   numbers, punctuation runs, whitespace), so that no token ever spans two words.
2. Write every piece as its UTF-8 bytes. The first 256 tokens are the single bytes, rank = byte
   value, so any text at all can be encoded (tiktoken requires all 256 of them).
3. Count every adjacent pair of tokens over all pieces, merge the most frequent pair into a new
   token with the next rank, and repeat until the vocabulary is full.

Two tricks make this fast enough for a few MB of text in pure Python:
- A piece that occurs 10,000 times is stored once with its count, so the work is over the
  unique pieces (14,080 in the King James Bible) rather than the 904,897 pieces of running text.
- Pair counts are updated incrementally: `PairIndex` remembers which pieces contain each pair,
  so a merge only revisits those pieces instead of recounting everything.

The result is a `.tiktoken` rank table (`save_tiktoken`), which `minfer.tokenizer.Tokenizer` and
tiktoken load directly. `encode_with_merges` is a slow, readable encoder that does what
tiktoken's Rust core does, so the two can be compared token for token.

Example:
    >>> ranks = train_bpe("aaabdaaabac", vocab_size=261, n_special=1)
    >>> merged = [token for token, rank in ranks.items() if rank >= 256]
    >>> merged
    [b'aa', b'ab', b'aaab', b'ac']
    >>> encode_with_merges("aaabdaaabac", ranks)
    [258, 100, 258, 259]
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import regex  # the `re` module has no \p{L}; tiktoken itself depends on `regex`

from minfer.errors import TokenizerError
from minfer.tokenizer import GPT2_PATTERN

N_BYTES = 256  # ranks 0..255 are the single bytes b"\x00".."\xff", in byte order
PIECE_RE = regex.compile(GPT2_PATTERN)

Pair = tuple[int, int]  # two adjacent token ids (= ranks), e.g. (116, 104) for b"t", b"h"


def pretokenize(text: str) -> list[str]:
    """Cut text into the pieces BPE works inside, exactly as tiktoken does with GPT-2's regex.

    >>> pretokenize("In the beginning, God")
    ['In', ' the', ' beginning', ',', ' God']
    """
    return PIECE_RE.findall(text)


def count_pieces(text: str) -> Counter[bytes]:
    """{piece as UTF-8 bytes: how often it occurs}; the trainer works on these unique pieces."""
    return Counter(piece.encode("utf-8") for piece in pretokenize(text))


def pairs_in(word: list[int]) -> Iterator[Pair]:
    """Adjacent pairs of a word, overlaps included: [a, a, a] -> (a, a), (a, a)."""
    return zip(word, word[1:])


def merge_pair(word: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of pair in word by new_id, scanning left to right.

    >>> merge_pair([97, 97, 97, 98], (97, 97), 256)
    [256, 97, 98]
    """
    out: list[int] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


@dataclass
class PairIndex:
    """How often each adjacent pair occurs (weighted by piece frequency) and in which pieces.

    `counts` is what we take the maximum of; `words` is what makes a merge cheap: only the pieces
    listed under the merged pair can change.
    """

    counts: dict[Pair, int] = field(default_factory=dict)  # pair -> occurrences in the text
    words: dict[Pair, set[int]] = field(default_factory=dict)  # pair -> ids of pieces with it

    def add(self, word_id: int, word: list[int], freq: int) -> None:
        """Count the pairs of one piece that occurs freq times."""
        for pair in pairs_in(word):
            self.counts[pair] = self.counts.get(pair, 0) + freq
            self.words.setdefault(pair, set()).add(word_id)

    def remove(self, word_id: int, word: list[int], freq: int) -> None:
        """Undo `add` for that piece; pairs that no longer occur anywhere are dropped."""
        for pair in pairs_in(word):
            self.counts[pair] -= freq
            self.words[pair].discard(word_id)
            if self.counts[pair] == 0:
                del self.counts[pair], self.words[pair]


def most_frequent_pair(counts: dict[Pair, int]) -> Pair:
    """The pair with the highest count; ties go to the smallest (left id, right id), so that
    training is deterministic whatever order the dict happens to be in."""
    top = max(counts.values())  # two plain passes: ~3x faster than min() with a key function
    return min(pair for pair, count in counts.items() if count == top)


@dataclass(frozen=True)
class Merge:
    """One training step, for printing in a lesson: left + right became token `rank`."""

    left: bytes  # the two adjacent tokens that were merged
    right: bytes
    count: int  # how often the pair occurred in the training text at that moment
    rank: int  # rank (= id) of the merged token: the next free one

    @property
    def token(self) -> bytes:
        return self.left + self.right


def learn_merges(piece_counts: dict[bytes, int], n_ranks: int) -> Iterator[Merge]:
    """Run BPE on {piece bytes: count}, yielding each merge until there are n_ranks tokens.

    Stops early if no adjacent pair is left (every piece has become a single token).
    """
    vocab = [bytes([b]) for b in range(N_BYTES)]  # token id (= rank) -> its bytes
    words = [list(piece) for piece in piece_counts]  # each unique piece as token ids, start: bytes
    freqs = list(piece_counts.values())
    index = PairIndex()
    for word_id, (word, freq) in enumerate(zip(words, freqs)):
        index.add(word_id, word, freq)

    while len(vocab) < n_ranks and index.counts:
        left, right = pair = most_frequent_pair(index.counts)
        count, new_id = index.counts[pair], len(vocab)
        # The merged bytes are always a new token: a token's bytes are built inside its own span
        # of a piece by the same merges in the same order wherever it occurs, so no other pair
        # can spell them. (save_tiktoken would catch a repeat as a gap in the ranks.)
        vocab.append(vocab[left] + vocab[right])
        for word_id in list(index.words[pair]):  # copy: the loop edits index.words
            index.remove(word_id, words[word_id], freqs[word_id])
            words[word_id] = merge_pair(words[word_id], pair, new_id)
            index.add(word_id, words[word_id], freqs[word_id])
        yield Merge(vocab[left], vocab[right], count, new_id)


def train_bpe(text: str, vocab_size: int, n_special: int = 1) -> dict[bytes, int]:
    """Learn a byte-level BPE vocabulary: {token bytes: rank}, ranks 0..vocab_size - n_special - 1.

    The last n_special ids are left free for special tokens such as `<|endoftext|>`, which are
    not learned from text. Fewer ranks come back if the text runs out of pairs to merge.
    """
    n_ranks = vocab_size - n_special
    if n_ranks < N_BYTES:
        raise TokenizerError(
            f"vocab_size={vocab_size} with {n_special} special tokens leaves {n_ranks} ranks, "
            f"fewer than the {N_BYTES} single bytes every byte-level vocabulary needs: "
            f"use vocab_size >= {N_BYTES + n_special}"
        )
    ranks = {bytes([b]): b for b in range(N_BYTES)}
    for merge in learn_merges(count_pieces(text), n_ranks):
        ranks[merge.token] = merge.rank
    return ranks


def encode_piece(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """BPE-encode one piece the way tiktoken does: repeatedly merge the adjacent pair whose
    merged bytes have the lowest rank (the leftmost on a tie) until no merge is in the vocabulary.

        >>> encode_piece(b"aaabd", {**{bytes([b]): b for b in range(256)}, b"aa": 256})
        [256, 97, 98, 100]
    """
    # tiktoken's shortcut: a piece that is itself a token is that token. For vocabularies trained
    # by BPE (ours, GPT-2's) merging would get there too; the shortcut only saves time.
    if piece in ranks:
        return [ranks[piece]]
    parts = [piece[i : i + 1] for i in range(len(piece))]  # start from single bytes
    while len(parts) > 1:
        merged = [ranks.get(a + b) for a, b in zip(parts, parts[1:])]  # rank or None per pair
        candidates = [(rank, i) for i, rank in enumerate(merged) if rank is not None]
        if not candidates:
            break
        _, i = min(candidates)  # lowest rank, then leftmost position
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[part] for part in parts]


def encode_with_merges(text: str, ranks: dict[bytes, int]) -> list[int]:
    """Text -> token ids with the trainer's own (slow, readable) encoder; special tokens are not
    recognised. It should give exactly what tiktoken gives for the same ranks.

        >>> ranks = train_bpe("the cat, the hat", vocab_size=262)
        >>> ids = encode_with_merges("the hat", ranks)
        >>> vocab = {rank: token for token, rank in ranks.items()}
        >>> ids, [vocab[i] for i in ids]
        ([258, 260, 256], [b'the', b' h', b'at'])
    """
    ids: list[int] = []
    for piece in pretokenize(text):
        ids.extend(encode_piece(piece.encode("utf-8"), ranks))
    return ids


def save_tiktoken(ranks: dict[bytes, int], path: Path) -> None:
    """Write ranks in tiktoken's format: one `base64(token bytes) rank` line per token, by rank.

    Checks first that the ranks are exactly 0..n-1 and start with the 256 single bytes in byte
    order, which is what tiktoken and `minfer.tokenizer.read_ranks` expect.
    """
    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    if [rank for _, rank in by_rank] != list(range(len(by_rank))):
        raise TokenizerError("ranks must be exactly 0..n-1, each used once; got gaps or repeats")
    if any(ranks.get(bytes([b])) != b for b in range(N_BYTES)):
        raise TokenizerError(f"ranks 0..{N_BYTES - 1} must be the single bytes in byte order")
    lines = [base64.b64encode(token) + b" " + str(rank).encode() for token, rank in by_rank]
    Path(path).write_bytes(b"\n".join(lines) + b"\n")
