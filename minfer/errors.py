"""The exceptions minfer raises at its boundaries (loading, tokenizing, the cache, the CLI).

Every message names the value that was wrong, what was expected, and what to do about it.
They all derive from `MinferError`, so a caller (the CLI among them) can catch one type.
"""


class MinferError(Exception):
    """Base class of every error minfer raises on purpose."""


class ModelLoadError(MinferError):
    """A checkpoint could not be found, downloaded or read, or does not match its config."""


class TokenizerError(MinferError):
    """The tokenizer file is missing or corrupt, or a token id is outside the vocabulary."""


class ChatTemplateError(TokenizerError):
    """A model has no chat template, its template is not valid Jinja, or the template refused the
    conversation (its `raise_exception`) or tried something the sandbox forbids."""


class ContextOverflowError(MinferError, ValueError):
    """A sequence would not fit in the model's context window or in the KV cache."""


class InvalidInputError(MinferError, ValueError):
    """An argument has the wrong type, shape or range (token ids, sampling parameters...)."""


class InsufficientMemoryError(MinferError, MemoryError):
    """A buffer (a KV cache, a batch) would not fit in the memory available; ask for less."""


class NonFiniteError(InvalidInputError, FloatingPointError):
    """Logits or losses hold NaN or +inf, from which no token can be drawn and no score reported."""
