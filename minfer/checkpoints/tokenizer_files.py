"""A checkpoint's tokenizer files -> a `Tokenizer`, and the files around them.

Three formats hold a byte-level BPE tokenizer, and all three become a tiktoken rank table:
- `tokenizer.json` (Hugging Face; Llama 3, Qwen2/2.5/3, SmolLM2, GPT-2): the vocabulary is
  {token: id} with each byte written as one printable character (GPT-2's "bytes_to_unicode"
  alphabet: a space is "Ġ", a newline "Ċ"), the merges are pairs in the order BPE learned them,
  the pre-tokenizer holds the split regex, `added_tokens` the special ones;
- `tokenizer.model` (Meta's original Llama 3 release): a `.tiktoken` rank file; the split regex
  and the 256 special tokens after the ranks are fixed in Meta's code (`LLAMA3_PATTERN`,
  `llama3_special_tokens`);
- `tokenizer.tiktoken` (minfer's own checkpoints): ranks; special tokens in config.json.

tiktoken merges by rank: it repeatedly joins the adjacent pair whose joined bytes have the lowest
id. Hugging Face joins the pair that comes first in its merge list. The two agree when every merge
makes a token of the vocabulary, the merges come in the order of the ids they make, and every
token longer than a byte is made by some merge; all three are checked. What tiktoken cannot run
is refused with a `TokenizerError` that says why: SentencePiece tokenizers (Llama 2, TinyLlama,
Mistral, Gemma: '▁' for spaces, byte_fallback), Unigram and WordPiece models, normalizers that
rewrite text (other than the Unicode forms, which `encode` applies), pre-tokenizers other than
ByteLevel alone or after one regex Split or Digits.

Beside the tokenizer: `tokenizer_config.json` or `chat_template.jinja` give the chat template
(`minfer.chat`), `generation_config.json` the ids that end a reply (`stop_token_ids`). Every file
is untrusted: read only if it is a regular file of bounded size, parsed as data, never executed.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

from minfer.chat import ChatTemplate, chat_template_from
from minfer.checkpoints.safetensors_io import no_duplicate_keys
from minfer.checks import is_whole
from minfer.errors import ModelLoadError, TokenizerError
from minfer.tokenizer import (
    END_OF_TEXT,
    GPT2_EOT_ID,
    GPT2_PATTERN,
    MAX_TOKENIZER_BYTES,
    UNICODE_FORMS,
    Tokenizer,
    UnicodeForm,
    check_ranks,
    parse_ranks,
    read_ranks,
    read_tokenizer_file,
)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer.tiktoken")  # in order of preference
SIDE_FILES = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json")
MAX_SIDE_BYTES = 20_000_000  # tokenizer_config.json, a template: kilobytes in a real checkpoint
MAX_PATTERN_CHARS = 10_000  # a split regex is ~100 characters; a huge one is an attack on the regex engine

# Meta's Llama 3 split regex (cl100k_base's, but digits in runs of at most 3 as well)
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_N_SPECIAL = 256  # Meta reserves 256 ids after the ranks for special tokens

# A text with every kind of character the split regexes treat apart: a loaded tokenizer must give
# it back unchanged (a regex that matches nothing at some character would drop it silently).
PROBE = "Hi 'll, 12345 ¿Qué? \t\n\r\n  日本語 🦙 x=[1,2]; "


# ---- the public face ----


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """A tokenizer from a model directory or from one tokenizer file.

    A directory: its `tokenizer.json` (Hugging Face), else `tokenizer.model` (Meta's Llama 3),
    else `tokenizer.tiktoken` (minfer's own; special tokens from config.json), with the chat
    template of its tokenizer_config.json or chat_template.jinja when it has one. A file:
    `*.json` as tokenizer.json, `*.model` as Meta's tokenizer.model, anything else as a
    `.tiktoken` rank file; a file alone carries no chat template.

    Example:
        >>> tok = load_tokenizer("tests/fixtures/tokenizers/llama3-style")
        >>> tok.decode(tok.encode("Hello, world"))
        'Hello, world'
    """
    path = Path(os.fspath(path)).expanduser()
    if path.is_dir():
        config_path = path / "config.json"
        hf_config = read_json(config_path, TokenizerError) if config_path.exists() else {}
        tok = tokenizer_in(path, hf_config)
        if tok is None:
            raise TokenizerError(f"{path} has no tokenizer file: expected one of {', '.join(TOKENIZER_FILES)}")
        return tok
    if not path.exists():
        raise TokenizerError(f"no tokenizer at {path}: pass a model directory or a tokenizer file")
    if path.suffix == ".json":
        return tokenizer_from_json(path)
    if path.suffix == ".model":
        return tokenizer_from_meta(path)
    return Tokenizer.from_file(path)


def model_tokenizer(model_dir: Path | None, hf_config: dict, n_vocab: int) -> Tokenizer | None:
    """The tokenizer that belongs to a model directory (see `load_tokenizer` for the files and
    their order), or None if it has none. A model with GPT-2's vocabulary size and no tokenizer
    file of its own gets GPT-2's tokenizer. A tokenizer with more ids than the model has
    embedding rows is refused: the two do not belong together."""
    tok = tokenizer_in(Path(model_dir), hf_config, n_vocab) if model_dir is not None else None
    if tok is None and n_vocab == GPT2_EOT_ID + 1:
        tok = Tokenizer.gpt2()
    if tok is not None and tok.n_vocab > n_vocab:
        raise TokenizerError(
            f"the tokenizer has {tok.n_vocab} ids but the model only {n_vocab} embedding rows: "
            "they do not belong together"
        )
    return tok


def tokenizer_in(model_dir: Path, hf_config: dict, n_vocab: int | None = None) -> Tokenizer | None:
    """The tokenizer of the first of TOKENIZER_FILES a directory has, with its chat template."""
    found = next((model_dir / name for name in TOKENIZER_FILES if (model_dir / name).exists()), None)
    if found is None:
        return None
    chat = read_chat_template(model_dir)
    if found.name == "tokenizer.json":
        return tokenizer_from_json(found, chat)
    if found.name == "tokenizer.model":
        return tokenizer_from_meta(found, chat)
    ranks = read_ranks(found)
    if n_vocab is not None and len(ranks) > n_vocab:
        raise TokenizerError(
            f"{found} has {len(ranks)} BPE tokens, more than the model's "
            f"{n_vocab} embedding rows: the tokenizer and the model do not belong together"
        )
    special = hf_config.get("special_tokens")
    if special is None:
        eos = hf_config.get("eos_token_id")
        special = {END_OF_TEXT: eos if is_whole(eos) else len(ranks)}
    return Tokenizer(ranks, special, name=found.stem, chat_template=chat)


def stop_token_ids(model_dir: str | os.PathLike | None, hf_config: dict) -> tuple[int, ...]:
    """The ids that end a reply: generation_config.json's `eos_token_id` (one id or a list),
    else config.json's, as transformers' `generate` reads them; () if neither names any.
    Llama 3.1-Instruct's are (128001, 128008, 128009): <|end_of_text|>, <|eom_id|>, <|eot_id|>."""
    where, value = "config.json", hf_config.get("eos_token_id")
    generation = Path(model_dir) / "generation_config.json" if model_dir is not None else None
    if generation is not None and generation.exists():
        settings = read_json(generation, ModelLoadError)
        if settings.get("eos_token_id") is not None:
            where, value = str(generation), settings["eos_token_id"]
    ids = [] if value is None else value if isinstance(value, list) else [value]
    n_vocab = hf_config.get("vocab_size", hf_config.get("n_vocab"))
    for i in ids:
        if not is_whole(i) or i < 0 or (is_whole(n_vocab) and i >= n_vocab):
            raise ModelLoadError(
                f"{where}: eos_token_id {value!r} must be a token id or a list of them, each in [0, {n_vocab})"
            )
    return tuple(dict.fromkeys(int(i) for i in ids))


# ---- files around the tokenizer ----


def read_json(path: Path, error: type[Exception] = TokenizerError, limit: int = MAX_SIDE_BYTES) -> dict:
    """A JSON file that must hold an object; `error` names what is wrong with it."""
    try:
        data = read_tokenizer_file(path, limit)
        value = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except TokenizerError as e:
        raise error(str(e)) from None
    except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, a key twice, a 5,000-digit number, deep nesting
        raise error(f"{path} is not valid JSON: {str(e)[:200] or type(e).__name__}") from None
    if not isinstance(value, dict):
        raise error(f"{path} holds a JSON {type(value).__name__}; expected an object")
    return value


def read_chat_template(model_dir: Path) -> ChatTemplate | None:
    """The chat template of a model directory (chat_template.jinja, else tokenizer_config.json's
    `chat_template`) with the special tokens' text it may print; None for a base model."""
    config_path, map_path, jinja_path = (model_dir / name for name in SIDE_FILES[:3])
    config = read_json(config_path) if config_path.exists() else {}
    tokens_map = read_json(map_path) if map_path.exists() else {}
    jinja = None
    if jinja_path.exists():
        try:
            jinja = read_tokenizer_file(jinja_path, MAX_SIDE_BYTES).decode("utf-8")
        except UnicodeDecodeError as e:
            raise TokenizerError(f"{jinja_path} is not UTF-8 text: {e}") from None
    return chat_template_from(config, tokens_map, jinja, str(jinja_path if jinja is not None else config_path))


# ---- Meta's tokenizer.model ----


def llama3_special_tokens(n_ranks: int) -> dict[str, int]:
    """Meta's 256 Llama 3 special tokens, in the order of its tokenizer.py, from id n_ranks on.
    (Llama 3.1 renamed some reserved ones, e.g. id 128008 is <|eom_id|>; its tokenizer.json,
    which minfer prefers, carries the new names. The ids are the same.)"""
    named = ["<|begin_of_text|>", "<|end_of_text|>"]
    named += [f"<|reserved_special_token_{i}|>" for i in range(4)]
    named += ["<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
    named += [f"<|reserved_special_token_{i}|>" for i in range(5, LLAMA3_N_SPECIAL - 5)]
    return {text: n_ranks + i for i, text in enumerate(named)}


def tokenizer_from_meta(path: Path, chat: ChatTemplate | None = None) -> Tokenizer:
    """Meta's Llama 3 `tokenizer.model`: a `.tiktoken` rank file, with Meta's regex and 256
    special tokens after the ranks. A SentencePiece `tokenizer.model` (binary) is refused."""
    data = read_tokenizer_file(path)
    first = data.split(b"\n", 1)[0].split()
    if len(first) != 2 or not first[1].isdigit():
        if data[:1] == b"\n":  # a protobuf's first field, SentencePiece's list of pieces
            refuse_sentencepiece(path, "a binary protobuf, not lines of 'base64 rank'")
        raise TokenizerError(
            f"{path} is neither Meta's Llama 3 tokenizer.model (lines of 'base64 rank') nor a "
            f"SentencePiece model; it starts {data[:40]!r}"
        )
    ranks = parse_ranks(path, data)
    check_ranks(path, ranks)
    specials = llama3_special_tokens(len(ranks))
    bos = specials["<|begin_of_text|>"]  # Meta's code starts every text with it
    return checked(Tokenizer(ranks, specials, path.stem, LLAMA3_PATTERN, bos_id=bos, chat_template=chat), path)


def refuse_sentencepiece(path: Path, sign: str) -> None:
    """The one message for every SentencePiece tokenizer, whichever file gave it away."""
    raise TokenizerError(
        f"{path} is a SentencePiece tokenizer ({sign}), the kind Llama 2, TinyLlama, Mistral and "
        "Gemma use; SentencePiece tokenizers are not supported. minfer reads byte-level BPE tokenizers: "
        "Llama 3.x, Qwen2/2.5/3, SmolLM2 and GPT-2 (their tokenizer.json), Meta's Llama 3 tokenizer.model"
    )


def checked(tok: Tokenizer, path: Path) -> Tokenizer:
    """`tok` if it gives PROBE back unchanged: a split regex that skips some character would
    otherwise drop it from every text without a word."""
    probe = PROBE if tok.normalization is None else unicodedata.normalize(tok.normalization, PROBE)
    back = tok.decode(tok.encode(PROBE))
    if back != probe:
        raise TokenizerError(
            f"{path}: encoding and decoding {probe!r} gives {back!r}; its split pattern does not cover "
            "every character (tiktoken drops what the regex does not match)"
        )
    return tok


# ---- Hugging Face's tokenizer.json ----


def gpt2_byte_alphabet() -> dict[str, int]:
    """GPT-2's printable stand-in for each byte -> the byte. Printable Latin-1 bytes stand for
    themselves; the others (controls, space, ...) are shifted to 256 + n, so a space is 'Ġ'."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + n): b for n, b in enumerate(others)}


# str.translate table: a stand-in -> its byte as a Latin-1 character, any other character below
# 0x144 -> U+FFFF, so that .encode("latin-1") fails on every character outside the alphabet
_TO_LATIN1 = {i: 0xFFFF for i in range(0x144)} | {ord(c): b for c, b in gpt2_byte_alphabet().items()}


def token_bytes(text: str) -> bytes | None:
    """A vocabulary entry of a byte-level BPE -> its bytes; None if it has a character outside
    GPT-2's byte alphabet (then it is not a byte-level token)."""
    try:
        return text.translate(_TO_LATIN1).encode("latin-1")
    except UnicodeEncodeError:
        return None


def tokenizer_from_json(path: Path, chat: ChatTemplate | None = None) -> Tokenizer:
    """A Hugging Face tokenizer.json whose model is byte-level BPE -> a `Tokenizer` (see the
    module's docstring for what is checked and what is refused)."""
    spec = read_json(path, TokenizerError, limit=MAX_TOKENIZER_BYTES)
    model = spec.get("model")
    if not isinstance(model, dict):
        raise TokenizerError(f"{path} has no 'model' object: is it a Hugging Face tokenizer.json?")
    refuse_if_sentencepiece(path, spec)
    check_bpe_model(path, model)
    specials, words = added_tokens(path, spec.get("added_tokens"))
    ranks = vocab_ranks(path, model.get("vocab"), specials)
    check_merges(path, model.get("merges"), ranks)
    tok = Tokenizer(
        ranks,
        specials,
        path.parent.name or path.stem,
        split_pattern(path, spec.get("pre_tokenizer")),
        added_words=words,
        normalization=unicode_form(path, spec.get("normalizer")),
        bos_id=prepended_token(spec.get("post_processor"), specials),
        chat_template=chat,
    )
    return checked(tok, path)


def types_in(section) -> list[str]:
    """Every "type" named inside a JSON section (a Sequence's parts too), walked without recursion."""
    found, stack = [], [section]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            found += [value["type"]] if isinstance(value.get("type"), str) else []
            stack += list(value.values())
        elif isinstance(value, list):
            stack += value
    return found


def refuse_if_sentencepiece(path: Path, spec: dict) -> None:
    """SentencePiece-style tokenizer.json files (Llama 2, TinyLlama): spaces as '▁' (Metaspace,
    or a normalizer that writes them), unknown bytes as <0x..> tokens (byte_fallback), Unigram."""
    model = spec["model"]
    parts = types_in([spec.get("normalizer"), spec.get("pre_tokenizer"), spec.get("decoder")])
    vocab = model.get("vocab")
    if isinstance(vocab, list):  # a Unigram's [[piece, score], ...]
        vocab = [v[0] for v in vocab if isinstance(v, list) and v]
    elif not isinstance(vocab, dict):
        vocab = []  # refused as missing later
    signs = [
        (model.get("byte_fallback") is True, "byte_fallback"),
        (model.get("type") == "Unigram", "a Unigram model"),
        ("Metaspace" in parts, "a Metaspace pre-tokenizer"),
        ("Prepend" in parts or "ByteFallback" in parts, "a normalizer or decoder for '▁' and <0x..> tokens"),
        (any(isinstance(t, str) and t.startswith("▁") for t in vocab), "'▁' for spaces in its vocabulary"),
    ]
    for present, sign in signs:
        if present:
            refuse_sentencepiece(path, sign)


def check_bpe_model(path: Path, model: dict) -> None:
    """The model must be plain BPE: no dropout, no word-piece prefixes or suffixes."""
    kind = model.get("type", "BPE" if "merges" in model else None)
    if kind != "BPE":
        raise TokenizerError(
            f"{path}: the model is {kind!r} (WordPiece is BERT's, WordLevel a word list), not byte-level BPE; "
            "minfer reads byte-level BPE tokenizers (GPT-2, Llama 3, Qwen, SmolLM2)"
        )
    odd = {k: model.get(k) for k in ("dropout", "continuing_subword_prefix", "end_of_word_suffix") if model.get(k)}
    if odd:
        raise TokenizerError(
            f"{path}: the BPE model sets {odd}; tiktoken runs plain BPE only (no random dropout, no subword markers)"
        )


def added_tokens(path: Path, entries) -> tuple[dict[str, int], set[str]]:
    """`added_tokens` -> ({text: id} of all of them, the texts of those not special)."""
    if entries is None:
        return {}, set()
    if not isinstance(entries, list):
        raise TokenizerError(f"{path}: added_tokens is a {type(entries).__name__}; expected a list")
    specials: dict[str, int] = {}
    words = set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str) or not is_whole(entry.get("id")):
            raise TokenizerError(f"{path}: added token {entry!r:.80} needs a string 'content' and an integer 'id'")
        text = entry["content"]
        stripping = [k for k in ("lstrip", "rstrip", "single_word") if entry.get(k)]
        if stripping:
            raise TokenizerError(
                f"{path}: the added token {text!r} sets {', '.join(stripping)}, which swallows the spaces "
                "around it or matches whole words only; tiktoken matches a special token's exact text"
            )
        if text in specials:
            raise TokenizerError(f"{path}: the added token {text!r} is listed twice")
        specials[text] = int(entry["id"])
        if entry.get("special") is not True:
            words.add(text)
    return specials, words


def vocab_ranks(path: Path, vocab, specials: dict[str, int]) -> dict[bytes, int]:
    """The vocabulary's BPE tokens as {bytes: id}, leaving out the added tokens it also lists
    (GPT-2's <|endoftext|> is both)."""
    if not isinstance(vocab, dict) or not vocab:
        raise TokenizerError(f"{path}: model.vocab must be a non-empty object {{token: id}}")
    added_ids = {i: text for text, i in specials.items()}
    ranks: dict[bytes, int] = {}
    for text, i in vocab.items():
        if not is_whole(i) or i < 0:
            raise TokenizerError(f"{path}: the vocabulary gives {text!r} the id {i!r}; ids are integers >= 0")
        if i in added_ids:
            if added_ids[i] != text:
                raise TokenizerError(
                    f"{path}: id {i} is both {text!r} in the vocabulary and added token {added_ids[i]!r}"
                )
            continue
        raw = token_bytes(text)
        if raw is None:
            raise TokenizerError(
                f"{path}: the vocabulary entry {text!r} (id {i}) has characters outside GPT-2's byte alphabet, "
                "so it is not byte-level BPE (each byte written as one printable character, a space as 'Ġ')"
            )
        ranks[raw] = int(i)  # the alphabet is one to one, so distinct entries have distinct bytes
    check_ranks(path, ranks, first=min(ranks.values(), default=0))
    return ranks


def merge_pair(path: Path, number: int, merge) -> tuple[bytes, bytes]:
    """One merge, "a b" (older files) or ["a", "b"] (newer), as the bytes of its two tokens."""
    pair = merge.split(" ") if isinstance(merge, str) else merge
    if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
        raise TokenizerError(f"{path}: merge {number} is {merge!r:.60}; expected 'a b' or ['a', 'b']")
    left, right = token_bytes(pair[0]), token_bytes(pair[1])
    if left is None or right is None:
        raise TokenizerError(f"{path}: merge {number} {merge!r:.60} has characters outside GPT-2's byte alphabet")
    return left, right


def check_merges(path: Path, merges, ranks: dict[bytes, int]) -> None:
    """Hugging Face merges in list order, tiktoken by the id of the token a merge makes: they
    agree if every merge makes a token of the vocabulary, in the order of the ids made, and every
    token longer than a byte is made by some merge."""
    if not isinstance(merges, list):
        raise TokenizerError(f"{path}: model.merges must be a list")
    made, last = set(), -1
    for number, merge in enumerate(merges):
        left, right = merge_pair(path, number, merge)
        token = left + right
        if left not in ranks or right not in ranks or token not in ranks:
            missing = next(t for t in (left, right, token) if t not in ranks)
            raise TokenizerError(
                f"{path}: merge {number} {merge!r:.60} needs {missing!r}, which is not in the vocabulary"
            )
        if ranks[token] < last:
            raise TokenizerError(
                f"{path}: merge {number} {merge!r:.60} makes id {ranks[token]} after an earlier merge made id {last}; "
                "tiktoken merges by id, so the merges must come in the order of the ids they make"
            )
        last = ranks[token]
        made.add(token)
    unmade = [t for t in ranks if len(t) > 1 and t not in made]
    if unmade:
        raise TokenizerError(
            f"{path}: {len(unmade)} token(s) longer than one byte, e.g. {unmade[0]!r} (id {ranks[unmade[0]]}), are "
            "made by no merge; Hugging Face never produces them but tiktoken would"
        )


def steps_of(section, key: str) -> list:
    """A pipeline section as a list of steps: a Sequence's parts (under `key`), one step, or none."""
    if isinstance(section, dict) and section.get("type") == "Sequence" and isinstance(section.get(key), list):
        return section[key]
    return [] if section is None else [section]


# GPT-2's regex run on the stretches between digits, as Hugging Face's Digits(individual_digits)
# then ByteLevel(use_regex) does (SmolLM2, StarCoder): one regex that never joins a space or
# another digit to a digit, and ends a run of spaces before a digit as before the end of text.
GPT2_DIGITS_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"""


def split_pattern(path: Path, pre_tokenizer) -> str:
    """The regex that cuts text into pieces: ByteLevel's own (GPT-2's) when it has use_regex (with
    digits cut apart first if a Digits step comes before it), else that of the one Split before
    it (Llama 3's, Qwen's)."""
    steps = steps_of(pre_tokenizer, "pretokenizers")
    kinds = [s.get("type") if isinstance(s, dict) else repr(s) for s in steps]
    if kinds not in (["ByteLevel"], ["Digits", "ByteLevel"], ["Split", "ByteLevel"]):
        raise TokenizerError(
            f"{path}: the pre-tokenizer is {' then '.join(map(str, kinds)) or 'missing'}; minfer runs ByteLevel "
            "alone (GPT-2), after one regex Split (Llama 3, Qwen) or after Digits (SmolLM2)"
        )
    byte_level, first = steps[-1], steps[0]
    if byte_level.get("add_prefix_space"):
        raise TokenizerError(f"{path}: ByteLevel has add_prefix_space (a space put before the text); tiktoken cannot")
    own_regex = byte_level.get("use_regex", True) is True
    if kinds[0] != "Split":
        if not own_regex:
            raise TokenizerError(f"{path}: ByteLevel without use_regex and no Split: nothing cuts the text into pieces")
        if kinds[0] == "Digits" and first.get("individual_digits") is not True:
            raise TokenizerError(f"{path}: Digits without individual_digits is not supported (SmolLM2's has it)")
        return GPT2_PATTERN if kinds == ["ByteLevel"] else GPT2_DIGITS_PATTERN
    if own_regex or first.get("behavior") != "Isolated" or first.get("invert"):
        raise TokenizerError(
            f"{path}: the Split pre-tokenizer must be behavior 'Isolated', not inverted, followed by "
            "ByteLevel with use_regex false; this one differs"
        )
    pattern = first.get("pattern")
    regex = pattern.get("Regex") if isinstance(pattern, dict) else None
    if not isinstance(regex, str) or not 0 < len(regex) <= MAX_PATTERN_CHARS:
        raise TokenizerError(
            f"{path}: the Split pattern must be a {{'Regex': ...}} of 1..{MAX_PATTERN_CHARS} characters"
        )
    return regex


def unicode_form(path: Path, normalizer) -> UnicodeForm | None:
    """The normalizer, if it is none or a Unicode form (applied by `encode`); others rewrite text
    (lowercase, strip accents, ...) in ways tiktoken cannot."""
    kinds = [s.get("type") if isinstance(s, dict) else repr(s) for s in steps_of(normalizer, "normalizers")]
    if not kinds:
        return None
    if len(kinds) == 1 and kinds[0] in UNICODE_FORMS:
        return next(form for form in UNICODE_FORMS if form == kinds[0])
    raise TokenizerError(
        f"{path}: the normalizer {' then '.join(map(str, kinds))} rewrites text before it is split; minfer "
        f"applies the Unicode forms ({', '.join(UNICODE_FORMS)}) only"
    )


def prepended_token(post_processor, specials: dict[str, int]) -> int | None:
    """The special token Hugging Face's post-processor puts before a single text (Llama 3's
    TemplateProcessing `<|begin_of_text|> $A`), or None."""
    for step in steps_of(post_processor, "processors"):
        if not isinstance(step, dict) or step.get("type") != "TemplateProcessing":
            continue
        single = step.get("single")
        first = single[0] if isinstance(single, list) and single else None
        token = first.get("SpecialToken") if isinstance(first, dict) else None
        name = token.get("id") if isinstance(token, dict) else None
        return specials.get(name) if isinstance(name, str) else None
    return None
