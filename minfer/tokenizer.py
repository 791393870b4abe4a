"""Stage 1, tokenize: text <-> token ids with byte-level BPE (lesson 01).

A byte-level BPE tokenizer is a rank table, {token bytes: id}, a regex that cuts text into
pieces, and a few special tokens. GPT-2's table is tiktoken's `.tiktoken` file: one line per
token, `base64(bytes) rank`. We load it from disk (never from the network), check its sha256, and
hand it to `tiktoken.Encoding`, whose Rust core does the byte-pair merging. Llama 3, Qwen and
SmolLM2 use the same kind of tokenizer with other tables, regexes and special tokens;
`minfer.checkpoints.tokenizer_files` reads theirs (Hugging Face's tokenizer.json, Meta's
tokenizer.model) into the same `Tokenizer`.

Text is only ever text: `encode` turns `<|endoftext|>` typed by a user into the characters
`<`, `|`, ... unless the caller passes `allow_special=True`.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import tiktoken

from minfer.checks import is_whole, open_regular_file, token_id_array
from minfer.errors import ChatTemplateError, InvalidInputError, TokenizerError

if TYPE_CHECKING:
    from minfer.chat import ChatTemplate

# GPT-2's pre-tokenization: text is first cut into words, numbers, punctuation runs and spaces
# with this regex, then BPE merges bytes inside each piece only (so "dog." is never one token).
# The GPT-2 release wrote it as
#   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# this is tiktoken's equivalent form (possessive quantifiers), which runs faster.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
END_OF_TEXT = "<|endoftext|>"
GPT2_EOT_ID = 50256  # the one special token of GPT-2, right after the 50,256 ranks
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# A real tokenizer file is a few MB (GPT-2's ranks 0.8 MB, Llama 3's tokenizer.json 9 MB, Gemma's
# 34 MB); anything far larger is not one, and is refused before it is read into memory.
MAX_TOKENIZER_BYTES = 100_000_000
UnicodeForm = Literal["NFC", "NFD", "NFKC", "NFKD"]
UNICODE_FORMS: tuple[UnicodeForm, ...] = ("NFC", "NFD", "NFKC", "NFKD")  # what `encode` can apply (Qwen: NFC)


def bundled_weights_dir() -> Path:
    """The weights that ship with minfer: `minfer/_weights/` in an installed package (a wheel
    maps the repository's `weights/` there), the repository's `weights/` in a clone or an
    editable install."""
    here = Path(__file__).resolve().parent
    installed = here / "_weights"
    return installed if installed.is_dir() else here.parent / "weights"


WEIGHTS_DIR = bundled_weights_dir()
GPT2_RANKS_FILE = WEIGHTS_DIR / "gpt2.tiktoken"


def read_tokenizer_file(path: Path, limit: int = MAX_TOKENIZER_BYTES) -> bytes:
    """The bytes of a tokenizer file, if it is a regular file of at most `limit` bytes."""
    with open_regular_file(Path(path), TokenizerError) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        raise TokenizerError(
            f"{path} is {max(size, len(data)):,} bytes, more than the {limit:,} a tokenizer file may have "
            "(real ones are a few MB): refusing to read it"
        )
    return data


def read_ranks(path: Path, sha256: str | None = None) -> dict[bytes, int]:
    """Read a `.tiktoken` file into {token bytes: rank}; check its sha256 when one is given."""
    data = read_tokenizer_file(path)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise TokenizerError(
            f"{path} does not have the expected sha256 {sha256[:12]}...: the file is corrupt "
            "or a different vocabulary; restore it from the repository (git checkout weights/)"
        )
    ranks = parse_ranks(path, data)
    check_ranks(path, ranks)
    return ranks


def parse_ranks(path: Path, data: bytes) -> dict[bytes, int]:
    """The lines `base64(token bytes) rank` of a `.tiktoken` file -> {token bytes: rank}."""
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
    return ranks


def check_ranks(path: Path, ranks: dict[bytes, int], first: int = 0) -> None:
    """A byte-level BPE vocabulary tiktoken can run without panicking: every single byte is a
    token (so any text can be encoded), and the ranks are first..first+n-1, each once (so any id
    in that span decodes). `first` is 0 but where a tokenizer.json puts special tokens before
    its BPE tokens (SmolLM2's 17 are ids 0..16)."""
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise TokenizerError(
            f"{path} lacks {len(missing)} of the 256 single-byte tokens (e.g. byte {missing[0]:#04x}): "
            "text containing them could not be encoded. The file is truncated or not byte-level BPE"
        )
    values = sorted(ranks.values())
    last = first + len(values) - 1
    if values != list(range(first, last + 1)):
        repeated = [a for a, b in zip(values, values[1:]) if a == b]
        wrong = repeated[0] if repeated else next(r for r in values if not first <= r <= last)
        raise TokenizerError(
            f"{path}: the ranks must be {first}..{last}, each once; rank "
            f"{wrong} is {'repeated' if repeated else 'out of that range'}"
        )


def check_special_tokens(special_tokens, rank_ids: range) -> dict[str, int]:
    """Special tokens must be {text: id} with distinct ids outside the ranks' ids."""
    if not isinstance(special_tokens, dict):
        raise TokenizerError(f"special tokens must be an object {{text: id}}, not {type(special_tokens).__name__}")
    for text, i in special_tokens.items():
        if not isinstance(text, str) or not text or not is_whole(i) or i < 0 or i in rank_ids:
            raise TokenizerError(
                f"special token {text!r} -> {i!r}: each must be a non-empty string with an integer "
                f"id >= 0 outside the {len(rank_ids)} BPE ranks ({rank_ids.start}..{rank_ids.stop - 1})"
            )
    if len(set(special_tokens.values())) != len(special_tokens):
        raise TokenizerError(f"special tokens {special_tokens} share an id")
    return {text: int(i) for text, i in special_tokens.items()}


def id_spans(ids: Iterable[int]) -> str:
    """Ids as runs, for messages: [5, 6, 7, 9] -> '5..7, 9'."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(f"{a}..{b}" if b > a else str(a) for a, b in runs) or "none"


class Tokenizer:
    """Byte-level BPE tokenizer backed by tiktoken.

    `ranks` are the BPE tokens ({bytes: id}); `special_tokens` the added ones ({text: id}), whose
    ids lie outside the ranks'. Tokenizers read from a checkpoint may also carry:
    `added_words`, added tokens that are not special (Qwen's `<tool_call>`): Hugging Face matches
    them in any text, so `encode` does too; `normalization`, a Unicode form applied to text
    before it is split (Qwen's "NFC"); `bos_id`, the token Hugging Face puts before a plain text
    (Llama 3's `<|begin_of_text|>`; `encode` never adds it); `chat_template` (see
    `apply_chat_template`).

    Example:
        >>> tok = Tokenizer.gpt2()
        >>> tok.encode("Hello, my dog is cute")
        [15496, 11, 616, 3290, 318, 13779]
        >>> tok.decode([15496, 11])
        'Hello,'
    """

    def __init__(
        self,
        ranks: dict[bytes, int],
        special_tokens: dict[str, int],
        name: str,
        pattern: str = GPT2_PATTERN,
        *,
        added_words: Iterable[str] = (),
        normalization: UnicodeForm | None = None,
        bos_id: int | None = None,
        chat_template: ChatTemplate | None = None,
    ):
        first = min(ranks.values(), default=0)
        self.rank_ids = range(first, first + len(ranks))  # the BPE tokens' ids; special ones lie outside
        special_tokens = check_special_tokens(special_tokens, self.rank_ids)
        try:
            self.encoding = tiktoken.Encoding(
                name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special_tokens
            )
        except ValueError as e:  # the regex does not compile
            raise TokenizerError(
                f"tokenizer {name!r}: its split pattern {pattern[:100]!r} is not a regex tiktoken can run ({e})"
            ) from None
        self.name = name
        self.special_tokens = special_tokens
        self.n_ranks = len(ranks)
        self._special_ids = frozenset(special_tokens.values())
        self.added_words = frozenset(added_words)
        if not self.added_words <= special_tokens.keys():
            raise TokenizerError(f"added words {sorted(self.added_words - special_tokens.keys())} have no id")
        if normalization not in (None, *UNICODE_FORMS):
            raise TokenizerError(f"normalization {normalization!r} is not one of {UNICODE_FORMS} (or None)")
        self.normalization = normalization
        if bos_id is not None and bos_id not in self._special_ids:
            raise TokenizerError(f"bos_id {bos_id!r} is not one of the special tokens' ids")
        self.bos_id = bos_id
        self.chat_template = chat_template
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
        """Number of token ids (the largest id + 1), special tokens included."""
        return self.encoding.n_vocab

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        """Text -> token ids.

        By default the text is only text: `<|endoftext|>` in it is encoded as the characters
        `<`, `|`, ... (several tokens), so a user cannot end a document or fake a chat turn by
        typing a special token. Pass `allow_special=True` for text you wrote yourself in which
        special tokens are meant (a rendered chat template). Hugging Face's `encode(text,
        add_special_tokens=False)` is `allow_special=True`; with `split_special_tokens=True` it
        is the default here. Neither adds a BOS token (see `bos_id`).
        """
        if not isinstance(text, str):
            raise TokenizerError(f"encode takes a str, got {type(text).__name__}")
        if self.normalization is not None:
            text = unicodedata.normalize(self.normalization, text)
        allowed: Literal["all"] | frozenset[str] = "all" if allow_special else self.added_words
        try:
            return self.encoding.encode(text, allowed_special=allowed, disallowed_special=())
        except ValueError as e:  # the split regex backtracked past its limit on this text
            raise TokenizerError(f"tokenizer {self.name!r} could not split this text with its pattern ({e})") from None

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
        if token_id not in self.rank_ids and token_id not in self._special_ids:
            raise self._unknown(token_id)
        return self.encoding.decode_single_token_bytes(token_id)

    def _unknown(self, token_id: int) -> TokenizerError:
        """The error for an id with no text: out of range, or in a gap between the ranks and a
        special token (a model's embedding can have more rows than its tokenizer has tokens)."""
        return TokenizerError(
            f"token id {token_id} has no text in this tokenizer: its BPE tokens are "
            f"{self.rank_ids.start}..{self.rank_ids.stop - 1} and its special tokens {id_spans(self._special_ids)}"
        )

    def check_ids(self, ids: Iterable[int]) -> list[int]:
        """Return ids as a list of ints, or raise TokenizerError naming the first bad one
        (integers only: NumPy's welcome, floats and bools refused)."""
        arr = token_id_array(ids, "token ids to decode", TokenizerError)  # [n]
        outside = arr[(arr < self.rank_ids.start) | (arr >= self.rank_ids.stop)]  # [n_outside]
        for i in outside.tolist():
            if i not in self._special_ids:
                raise self._unknown(i)
        return arr.tolist()

    def decoder(self) -> IncrementalDecoder:
        """A fresh streaming decoder (see `IncrementalDecoder`)."""
        return IncrementalDecoder(self)

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True, **extra) -> str:
        """A conversation -> the prompt text the model was fine-tuned on, rendered by the
        checkpoint's own chat template (see `minfer.chat`) as transformers renders it.

        `messages` is a list of {"role": str, "content": str}; `add_generation_prompt` ends the
        text with the header of an assistant turn, for the model to write; `extra` reaches the
        template as variables (`tools=[...]`, `date_string="26 Jul 2024"`, ...). Encode the
        result with `encode(text, allow_special=True)`, or use `encode_chat`.

        Example:
            >>> tok = minfer.load_tokenizer("tests/fixtures/tokenizers/qwen-style")
            >>> print(tok.apply_chat_template([{"role": "user", "content": "Hi"}]))
            <|im_start|>system
            You are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>
            <|im_start|>user
            Hi<|im_end|>
            <|im_start|>assistant
            <BLANKLINE>
        """
        from minfer.chat import render

        if self.chat_template is None:
            raise ChatTemplateError(
                f"tokenizer {self.name!r} has no chat template (no chat_template in tokenizer_config.json, "
                "no chat_template.jinja): it belongs to a base model, not trained on conversations. "
                "Prompt it with plain text instead, or load the model's -Instruct/-Chat version"
            )
        return render(self.chat_template, messages, add_generation_prompt, **extra)

    def encode_chat(self, messages: list[dict], add_generation_prompt: bool = True, **extra) -> list[int]:
        """A conversation -> token ids: `apply_chat_template` encoded with the template's special
        tokens as special ids (transformers' `apply_chat_template(tokenize=True)`).

        A special token's text inside a message is refused (InvalidInputError): it would become
        a real special id, letting a message fake a turn. Render and encode yourself if you mean it.
        """
        text = self.apply_chat_template(messages, add_generation_prompt, **extra)
        for number, message in enumerate(messages):
            found = [t for t in self.special_tokens if t in message["content"] and t not in self.added_words]
            if found:
                raise InvalidInputError(
                    f"message {number} ({message['role']}) contains the special token {found[0]!r}; it would "
                    "be encoded as the real token and could fake a turn of the conversation. Remove it, or "
                    "encode apply_chat_template(...) yourself with encode(text, allow_special=True) if you mean it"
                )
        return self.encode(text, allow_special=True)


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
