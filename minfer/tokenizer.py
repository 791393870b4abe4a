"""Stage 1, tokenize: text <-> token ids with GPT-2's byte-level BPE (lesson 01).

The merge table is tiktoken's `.tiktoken` file: one line per token, `base64(bytes) rank`. We load
it from disk (never from the network), check its sha256, and hand it to `tiktoken.Encoding`,
whose Rust core does the byte-pair merging.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import tiktoken

from minfer.checks import is_whole, open_regular_file, token_id_array
from minfer.errors import TokenizerError

# GPT-2's pre-tokenization: text is first cut into words, numbers, punctuation runs and spaces
# with this regex, then BPE merges bytes inside each piece only (so "dog." is never one token).
# The GPT-2 release wrote it as
#   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# this is tiktoken's equivalent form (possessive quantifiers), which runs faster.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
END_OF_TEXT = "<|endoftext|>"
GPT2_EOT_ID = 50256  # the one special token of GPT-2, right after the 50,256 ranks
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"


def bundled_weights_dir() -> Path:
    """The weights that ship with minfer: `minfer/_weights/` in an installed package (a wheel
    maps the repository's `weights/` there), the repository's `weights/` in a clone or an
    editable install."""
    here = Path(__file__).resolve().parent
    installed = here / "_weights"
    return installed if installed.is_dir() else here.parent / "weights"


WEIGHTS_DIR = bundled_weights_dir()
GPT2_RANKS_FILE = WEIGHTS_DIR / "gpt2.tiktoken"


def read_ranks(path: Path, sha256: str | None = None) -> dict[bytes, int]:
    """Read a `.tiktoken` file into {token bytes: rank}; check its sha256 when one is given."""
    with open_regular_file(Path(path), TokenizerError) as f:
        data = f.read()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise TokenizerError(
            f"{path} does not have the expected sha256 {sha256[:12]}...: the file is corrupt "
            "or a different vocabulary; restore it from the repository (git checkout weights/)"
        )
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 2:
                raise ValueError("not two fields")
            token, rank = base64.b64decode(fields[0], validate=True), int(fields[1])
        except ValueError:  # binascii.Error is one too
            raise TokenizerError(
                f"{path} line {number} is not 'base64 rank': {line[:60]!r}; is it a .tiktoken file?"
            ) from None
        if token in ranks:
            raise TokenizerError(
                f"{path} line {number}: the token {token!r} is listed twice (ranks {ranks[token]} and {rank})"
            )
        ranks[token] = rank
    check_ranks(path, ranks)
    return ranks


def check_ranks(path: Path, ranks: dict[bytes, int]) -> None:
    """A byte-level BPE vocabulary tiktoken can run without panicking: every single byte is a
    token (so any text can be encoded), and the ranks are 0..n-1, each once (so any id decodes)."""
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise TokenizerError(
            f"{path} lacks {len(missing)} of the 256 single-byte tokens (e.g. byte {missing[0]:#04x}): "
            "text containing them could not be encoded. The file is truncated or not byte-level BPE"
        )
    values = sorted(ranks.values())
    if values != list(range(len(values))):
        repeated = [a for a, b in zip(values, values[1:]) if a == b]
        wrong = repeated[0] if repeated else next(r for r in values if not 0 <= r < len(values))
        raise TokenizerError(
            f"{path}: the ranks must be 0..{len(ranks) - 1}, each once; rank "
            f"{wrong} is {'repeated' if repeated else 'out of that range'}"
        )


def check_special_tokens(special_tokens, n_ranks: int) -> dict[str, int]:
    """Special tokens must be {text: id} with distinct ids after the ranks (0..n_ranks-1)."""
    if not isinstance(special_tokens, dict):
        raise TokenizerError(f"special tokens must be an object {{text: id}}, not {type(special_tokens).__name__}")
    for text, i in special_tokens.items():
        if not isinstance(text, str) or not text or not is_whole(i) or i < n_ranks:
            raise TokenizerError(
                f"special token {text!r} -> {i!r}: each must be a non-empty string with an integer "
                f"id >= {n_ranks}, outside the {n_ranks} BPE ranks"
            )
    if len(set(special_tokens.values())) != len(special_tokens):
        raise TokenizerError(f"special tokens {special_tokens} share an id")
    return {text: int(i) for text, i in special_tokens.items()}


class Tokenizer:
    """Byte-level BPE tokenizer backed by tiktoken.

    Example:
        >>> tok = Tokenizer.gpt2()
        >>> tok.encode("Hello, my dog is cute")
        [15496, 11, 616, 3290, 318, 13779]
        >>> tok.decode([15496, 11])
        'Hello,'
    """

    def __init__(self, ranks: dict[bytes, int], special_tokens: dict[str, int], name: str, pattern: str = GPT2_PATTERN):
        special_tokens = check_special_tokens(special_tokens, len(ranks))
        self.encoding = tiktoken.Encoding(
            name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special_tokens
        )
        self.special_tokens = special_tokens
        self.n_ranks = len(ranks)  # ids below this are BPE tokens; the special ones come after
        self._special_ids = frozenset(special_tokens.values())
        self.eot_id = special_tokens.get(END_OF_TEXT)

    @classmethod
    def gpt2(cls, path: Path = GPT2_RANKS_FILE) -> Tokenizer:
        """GPT-2's tokenizer (r50k_base), built offline from `weights/gpt2.tiktoken`."""
        ranks = read_ranks(path, GPT2_RANKS_SHA256)
        return cls(ranks, {END_OF_TEXT: GPT2_EOT_ID}, name="gpt2")

    @classmethod
    def from_file(
        cls, path: Path, special_tokens: dict[str, int] | None = None, pattern: str = GPT2_PATTERN
    ) -> Tokenizer:
        """A tokenizer from any `.tiktoken` file; `<|endoftext|>` defaults to the next free id."""
        ranks = read_ranks(path)
        if special_tokens is None:
            special_tokens = {END_OF_TEXT: len(ranks)}
        return cls(ranks, special_tokens, name=Path(path).stem, pattern=pattern)

    @property
    def n_vocab(self) -> int:
        """Number of token ids, special tokens included."""
        return self.encoding.n_vocab

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        """Text -> token ids. `<|endoftext|>` in the text becomes its special id unless
        `allow_special=False`, in which case it is encoded as ordinary characters."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode takes a str, got {type(text).__name__}")
        allowed: Literal["all"] | set[str] = "all" if allow_special else set()
        return self.encoding.encode(text, allowed_special=allowed, disallowed_special=())

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text. Bytes that are not valid UTF-8 on their own become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Token ids -> the raw bytes they stand for (may end inside a UTF-8 character)."""
        ids = self.check_ids(ids)
        return self.encoding.decode_bytes(ids)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token, e.g. 15496 -> b'Hello'. (Streaming calls this once per token.)"""
        if not is_whole(token_id):
            raise TokenizerError(f"a token id is an integer, not {token_id!r} ({type(token_id).__name__})")
        token_id = int(token_id)
        if not 0 <= token_id < self.n_ranks and token_id not in self._special_ids:
            raise self._unknown(token_id)
        return self.encoding.decode_single_token_bytes(token_id)

    def _unknown(self, token_id: int) -> TokenizerError:
        """The error for an id with no text: out of range, or in a gap between the ranks and a
        special token (a model's embedding can have more rows than its tokenizer has tokens)."""
        specials = ", ".join(str(i) for i in sorted(self._special_ids)) or "none"
        return TokenizerError(
            f"token id {token_id} has no text in this tokenizer: its BPE tokens are "
            f"0..{self.n_ranks - 1} and its special tokens {specials}"
        )

    def check_ids(self, ids: Iterable[int]) -> list[int]:
        """Return ids as a list of ints, or raise TokenizerError naming the first bad one
        (integers only: NumPy's welcome, floats and bools refused)."""
        arr = token_id_array(ids, "token ids to decode", TokenizerError)  # [n]
        for i in arr[arr >= self.n_ranks].tolist():
            if i not in self._special_ids:
                raise self._unknown(i)
        if arr.size and arr.min() < 0:
            raise self._unknown(int(arr.min()))
        return arr.tolist()

    def decoder(self) -> IncrementalDecoder:
        """A fresh streaming decoder (see `IncrementalDecoder`)."""
        return IncrementalDecoder(self)


class IncrementalDecoder:
    """Turns tokens into text one token at a time, for streaming.

    A token may end in the middle of a UTF-8 character (emoji are often split over two or three
    byte-level tokens). `add` holds such bytes back until the character is complete, so what it
    returns is always whole characters, and the concatenation of every `add` plus `flush` equals
    `Tokenizer.decode` of all the tokens.
    """

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        """Feed one token; return the text that is now complete (possibly '')."""
        return self._utf8.decode(self.tokenizer.token_bytes(token_id))

    def flush(self) -> str:
        """End of stream: return what is left (an unfinished character becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)


def load_tokenizer(model_dir: Path | None, hf_config: dict, n_vocab: int) -> Tokenizer | None:
    """The tokenizer that belongs to a model directory, or None if it has none.

    A directory may carry its own `tokenizer.tiktoken` (special tokens in config.json's
    `special_tokens`, default `<|endoftext|>` = eos_token_id); a model with GPT-2's vocabulary
    size and no file of its own gets GPT-2's tokenizer.
    """
    own = Path(model_dir) / "tokenizer.tiktoken" if model_dir is not None else None
    if own is not None and own.exists():
        ranks = read_ranks(own)
        if len(ranks) > n_vocab:
            raise TokenizerError(
                f"{own} has {len(ranks)} BPE tokens, more than the model's "
                f"{n_vocab} embedding rows: the tokenizer and the model do not belong together"
            )
        special = hf_config.get("special_tokens")
        if special is None:
            eos = hf_config.get("eos_token_id")
            special = {END_OF_TEXT: eos if is_whole(eos) else len(ranks)}
        tok = Tokenizer(ranks, special, name=own.stem)
    elif n_vocab == GPT2_EOT_ID + 1:
        tok = Tokenizer.gpt2()
    else:
        return None
    if tok.n_vocab > n_vocab:
        raise TokenizerError(
            f"the tokenizer has {tok.n_vocab} ids but the model only {n_vocab} embedding rows: "
            "they do not belong together"
        )
    return tok
