"""Stage 8, generation: prefill the prompt, then decode token by token until a stop (lesson 05).

`generate` returns the whole result; `stream` yields the text as it is produced. Both run the
same loop, `_steps`, whose body is deliberately short: sample, record the time, check the stops,
decode. Generation stops at the first of:
- "stop": a stop token was drawn (end-of-text by default); it is in `tokens`, not in `text`;
- "stop_string": the text now contains a stop string; `text` ends just before it;
- "length": max_new_tokens were generated;
- "context": the context window (n_ctx) is full.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from minfer.checks import is_whole, token_id_array, whole_number
from minfer.errors import ContextOverflowError, InvalidInputError
from minfer.model import Model
from minfer.sampling import SamplingParams, sample
from minfer.tokenizer import Tokenizer


@dataclass
class Generation:
    """The result of `generate`: new tokens, their text, why it stopped, and how long it took."""

    prompt_tokens: list[int]  # the prompt as token ids
    tokens: list[int] = field(default_factory=list)  # new tokens only (a stop token is the last one)
    text: str | None = None  # the new text, without stop token or stop string; None without a tokenizer
    finish_reason: str = ""  # "stop", "stop_string", "length" or "context" (see the module doc)
    prefill_seconds: float = float("nan")  # time of the one prefill pass over the prompt
    token_seconds: list[float] = field(default_factory=list)  # per new token; [0] = time to first token

    @property
    def time_to_first_token(self) -> float:
        """Seconds from the call to the first new token: tokenize + prefill + first sample."""
        return self.token_seconds[0] if self.token_seconds else float("nan")

    @property
    def prefill_tokens_per_second(self) -> float:
        return len(self.prompt_tokens) / self.prefill_seconds

    @property
    def decode_tokens_per_second(self) -> float:
        """Tokens after the first, per second of decoding (NaN if there were none)."""
        decode = self.token_seconds[1:]
        return len(decode) / sum(decode) if decode else float("nan")

    def stats(self) -> dict:
        """Timing and counts as a JSON-ready dict (a rate with nothing to measure is None)."""
        decode_rate = self.decode_tokens_per_second
        return {
            "prompt_tokens": len(self.prompt_tokens),
            "new_tokens": len(self.tokens),
            "finish_reason": self.finish_reason,
            "time_to_first_token_s": self.time_to_first_token,
            "prefill_s": self.prefill_seconds,
            "prefill_tokens_per_s": self.prefill_tokens_per_second,
            "decode_tokens_per_s": None if math.isnan(decode_rate) else decode_rate,
            "token_latencies_s": list(self.token_seconds),
        }

    def summary(self) -> str:
        """One line: the prefill and decode phases and why generation stopped."""
        decode = self.token_seconds[1:]
        decode_part = (
            (
                f"decode {len(decode)} tok at {self.decode_tokens_per_second:.1f} tok/s "
                f"({1e3 * sum(decode) / len(decode):.2f} ms/tok)"
            )
            if decode
            else "decode 0 tok"
        )
        return (
            f"prefill {len(self.prompt_tokens)} tok in {1e3 * self.prefill_seconds:.1f} ms "
            f"({self.prefill_tokens_per_second:.0f} tok/s) | TTFT "
            f"{1e3 * self.time_to_first_token:.1f} ms | {decode_part} | finish: {self.finish_reason}"
        )


def prompt_ids(model: Model, prompt: str | Sequence[int]) -> list[int]:
    """A prompt as token ids: text is encoded after the tokenizer's BOS token when it has one
    (Llama 3's <|begin_of_text|>, as Hugging Face's tokenizer adds it); empty text without a BOS
    becomes <|endoftext|>, as GPT-2 starts unconditional samples. A sequence of ids is taken as is."""
    if isinstance(prompt, str):
        if model.tokenizer is None:
            raise InvalidInputError(
                f"model {model.name!r} has no tokenizer (vocabulary of {model.config.n_vocab}); "
                "pass the prompt as a list of token ids (from Python; the command line needs a model with a tokenizer)"
            )
        tok = model.tokenizer
        ids = ([] if tok.bos_id is None else [tok.bos_id]) + tok.encode(prompt)
        if ids:
            return ids
        if tok.eot_id is None:
            raise InvalidInputError(
                f"an empty prompt needs a start token, and model {model.name!r}'s tokenizer has neither "
                "a BOS token nor <|endoftext|>; give some text"
            )
        return [tok.eot_id]
    return token_id_array(prompt, "a prompt of token ids").tolist()


class TextStopper:
    """Turns tokens into text for streaming, and finds stop strings that span token boundaries.

    Text is released only once it can no longer be the start of a stop string: with the stop
    string "\n\n", a trailing "\n" is held back until the next token shows whether a second one
    follows. `text` is everything released so far.
    """

    def __init__(self, tokenizer: Tokenizer, stop_strings: Sequence[str] = ()):
        self.decoder = tokenizer.decoder()
        self.stop_strings = [s for s in stop_strings if s]
        self.pending = ""  # decoded, not yet released
        self.text = ""  # released

    def add(self, token: int) -> tuple[str, bool]:
        """Feed one token; return (text now safe to show, whether a stop string was completed)."""
        self.pending += self.decoder.add(token)
        hits = [i for i in (self.pending.find(s) for s in self.stop_strings) if i >= 0]
        if hits:
            return self._release(min(hits)), True
        return self._release(len(self.pending) - self._held_back()), False

    def flush(self) -> str:
        """End of generation without a stop string: release everything held back."""
        self.pending += self.decoder.flush()
        return self._release(len(self.pending))

    def _held_back(self) -> int:
        """Length of the longest end of `pending` that is the start of some stop string."""
        return max((k for s in self.stop_strings for k in range(1, len(s)) if self.pending.endswith(s[:k])), default=0)

    def _release(self, n: int) -> str:
        piece, self.pending = self.pending[:n], self.pending[n:]
        self.text += piece
        return piece


@dataclass
class Stopping:
    """When a sequence is done: the one rule `generate`, `stream` and `generate_batch` share.

    A new token ends the sequence, in this order, as "stop" (a stop token: kept in `tokens`, not
    in `text`), "stop_string" (the text now holds a stop string: `text` ends before it),
    "length" (max_new_tokens reached) or "context" (the cache holds n_ctx positions).
    """

    stop_tokens: frozenset[int]
    max_new_tokens: int
    n_ctx: int
    stopper: TextStopper | None  # turns tokens into text; None for a model without a tokenizer

    def add(self, g: Generation, token: int, n_cached: int) -> str:
        """Append `token` to g.tokens, set g.finish_reason if it ends g, and return the text it
        releases. n_cached: positions in the sequence's cache before this token."""
        g.tokens.append(token)
        if token in self.stop_tokens:
            g.finish_reason = "stop"
            return ""
        piece, hit = self.stopper.add(token) if self.stopper is not None else ("", False)
        if hit:
            g.finish_reason = "stop_string"
        elif len(g.tokens) == self.max_new_tokens:
            g.finish_reason = "length"
        elif n_cached == self.n_ctx:
            g.finish_reason = "context"
        return piece

    def finish(self, g: Generation) -> str:
        """g is done: set g.text and return the text held back until now (none after a stop string)."""
        if self.stopper is None:
            return ""
        tail = self.stopper.flush() if g.finish_reason != "stop_string" else ""
        g.text = self.stopper.text
        return tail


def _steps(
    model: Model,
    ids: list[int],
    params: SamplingParams,
    stopping: Stopping,
    result: Generation,
    start: float,
) -> Iterator[tuple[int, str]]:
    """The generation loop: yields (token, newly released text) and fills `result` as it goes."""
    rng = np.random.default_rng(params.seed)
    history = list(ids)  # every token so far, for the repetition penalties
    cache = model.new_cache(min(model.config.n_ctx, len(ids) + stopping.max_new_tokens))
    t = perf_counter()
    logits = model.prefill(ids, cache)  # [n_vocab]
    result.prefill_seconds = perf_counter() - t
    last = start
    while True:
        token = sample(logits, params, history=history, rng=rng)
        result.token_seconds.append(perf_counter() - last)
        history.append(token)
        piece = stopping.add(result, token, cache.length)
        if result.finish_reason != "stop":  # a stop token is not shown
            yield token, piece
        if result.finish_reason:
            break
        last = perf_counter()  # the consumer's time (printing) is not the model's
        logits = model.decode(token, cache)  # [n_vocab]
    yield -1, stopping.finish(result)


class Stream:
    """What `stream` returns: iterate it for text pieces; afterwards `.generation` is the result."""

    def __init__(self, steps: Iterator[tuple[int, str]], generation: Generation):
        self._steps = steps
        self.generation = generation

    def __iter__(self) -> Iterator[str]:
        for _, piece in self._steps:
            if piece:
                yield piece


def check_max_new_tokens(max_new_tokens) -> int:
    """max_new_tokens as an int, or InvalidInputError unless it is an integer >= 1 (NumPy's too)."""
    return whole_number(max_new_tokens, "max_new_tokens")


def stop_token_set(model: Model, stop_tokens: Sequence[int] | int | None) -> frozenset[int]:
    """The stop tokens as a set; None means the model's end-of-generation tokens (config.json's
    and generation_config.json's eos_token_id, none or several), and one integer is one stop token."""
    if stop_tokens is None:
        stop_tokens = model.config.eos_token_ids  # Llama 3 instruct: <|eot_id|> and <|end_of_text|>, ...
    ids = token_id_array([stop_tokens] if is_whole(stop_tokens) else stop_tokens, "stop_tokens")  # [n_stop]
    bad = ids[(ids < 0) | (ids >= model.config.n_vocab)]
    if bad.size:
        raise InvalidInputError(
            f"stop token {int(bad[0])} is outside the vocabulary [0, {model.config.n_vocab}): it could never be drawn"
        )
    return frozenset(ids.tolist())


def stop_string_list(model: Model, stop_strings: Sequence[str] | str | None) -> list[str]:
    """The stop strings as a list: one string is one stop string (as in OpenAI's API, where
    stop="\n" means stop at a newline), never split into its characters. Matching them needs
    the model's tokenizer."""
    if stop_strings is None:
        return []
    if isinstance(stop_strings, (bytes, dict)) or not isinstance(stop_strings, Iterable):
        raise InvalidInputError(
            f"stop_strings must be a string or a list of strings, not {type(stop_strings).__name__}"
        )
    stop_strings = [stop_strings] if isinstance(stop_strings, str) else list(stop_strings)
    bad = [s for s in stop_strings if not isinstance(s, str) or not s]
    if bad:
        raise InvalidInputError(
            f"stop_strings must be non-empty strings; {bad[0]!r} "
            f"({type(bad[0]).__name__}) is not (an empty string would match everywhere)"
        )
    if stop_strings and model.tokenizer is None:
        raise InvalidInputError("stop strings need a tokenizer; this model has none (use stop_tokens)")
    return stop_strings


def _start(
    model: Model, prompt, max_new_tokens, params, stop_tokens, stop_strings, context: str
) -> tuple[Iterator[tuple[int, str]], Generation]:
    """Validate the arguments, tokenize, and set up the loop (nothing runs until iterated)."""
    start = perf_counter()
    max_new_tokens = check_max_new_tokens(max_new_tokens)
    if context not in ("stop", "error"):
        raise InvalidInputError(f"context={context!r} must be 'stop' or 'error'")
    if not isinstance(params, SamplingParams):
        raise InvalidInputError(f"params must be a SamplingParams, not {type(params).__name__}")
    stop_strings = stop_string_list(model, stop_strings)
    stops = stop_token_set(model, stop_tokens)
    ids = prompt_ids(model, prompt)
    n_ctx = model.config.n_ctx
    if len(ids) > n_ctx or (context == "error" and len(ids) == n_ctx):
        raise ContextOverflowError(
            f"the prompt has {len(ids)} tokens, but the context window n_ctx={n_ctx} must hold "
            f"them and the new ones: shorten the prompt to fewer than {n_ctx} tokens"
        )
    if context == "error" and len(ids) + max_new_tokens > n_ctx:
        raise ContextOverflowError(
            f"{len(ids)} prompt + {max_new_tokens} new tokens exceed the context window "
            f"n_ctx={n_ctx}; ask for at most {n_ctx - len(ids)} new tokens"
        )
    result = Generation(prompt_tokens=ids)
    return _steps(model, ids, params, new_stopping(model, stops, max_new_tokens, stop_strings), result, start), result


def new_stopping(model: Model, stops: frozenset[int], max_new_tokens: int, stop_strings: list[str]) -> Stopping:
    """One sequence's Stopping (each sequence needs its own: the text it has decoded so far)."""
    stopper = TextStopper(model.tokenizer, stop_strings) if model.tokenizer is not None else None
    return Stopping(stops, max_new_tokens, model.config.n_ctx, stopper)


def generate(
    model: Model,
    prompt: str | Sequence[int],
    max_new_tokens: int = 64,
    *,
    temperature: float = 0.0,
    seed: int | None = None,
    stop_tokens: Sequence[int] | None = None,
    stop_strings: Sequence[str] = (),
    context: str = "stop",
    on_token: Callable[[int], None] | None = None,
    params: SamplingParams | None = None,
) -> Generation:
    """Generate up to `max_new_tokens` tokens after `prompt` (a string or token ids).

    Temperature 0 is greedy. Stops at the model's end-of-text token unless `stop_tokens` says
    otherwise (pass `()` to never stop on a token), at any of `stop_strings`, and when the context
    window is full (`context="error"` instead raises before starting if the request cannot fit).
    `on_token(id)` is called as each token arrives (its time is not counted). `params` (a
    `SamplingParams`, for top-k, top-p, penalties...) replaces `temperature` and `seed`.

    Example:
        >>> g = generate(model, "And the king said", 20)
        >>> g.text, g.finish_reason, g.decode_tokens_per_second
    """
    params = params or SamplingParams(temperature=temperature, seed=seed)
    steps, result = _start(model, prompt, max_new_tokens, params, stop_tokens, stop_strings, context)
    for token, _ in steps:
        if on_token is not None and token >= 0:
            on_token(token)
    return result


def stream(
    model: Model,
    prompt: str | Sequence[int],
    max_new_tokens: int = 64,
    *,
    temperature: float = 0.0,
    seed: int | None = None,
    stop_tokens: Sequence[int] | None = None,
    stop_strings: Sequence[str] = (),
    context: str = "stop",
    params: SamplingParams | None = None,
) -> Stream:
    """Like `generate`, but yields the new text piece by piece as tokens arrive.

    Pieces are whole characters (a token that ends inside a UTF-8 character waits for the next)
    and never part of a stop string. After the loop, `.generation` holds the full result.

    Example:
        >>> s = stream(model, "And the king said", 40)
        >>> for piece in s:
        ...     print(piece, end="", flush=True)
        >>> s.generation.summary()
    """
    params = params or SamplingParams(temperature=temperature, seed=seed)
    steps, result = _start(model, prompt, max_new_tokens, params, stop_tokens, stop_strings, context)
    return Stream(steps, result)
