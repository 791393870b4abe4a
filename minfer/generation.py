"""Stage 8, generation: prefill the prompt, then decode token by token until a stop (lesson 04).

The loop body is deliberately short: sample, record the time, check the stops, decode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from minfer.errors import InvalidInputError
from minfer.model import Model
from minfer.sampling import SamplingParams, sample


@dataclass
class Generation:
    """The result of `generate`: new tokens, their text, why it stopped, and how long it took."""

    prompt_tokens: list[int]  # the prompt as token ids
    tokens: list[int]  # new tokens only (a stop token, if hit, is the last one)
    text: str | None  # the new tokens decoded, without the stop token; None without a tokenizer
    finish_reason: str  # "stop" (a stop token), "length" (max_new_tokens) or "context" (n_ctx full)
    prefill_seconds: float  # time of the one prefill pass over the prompt
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
        """Timing and counts as a JSON-ready dict."""
        return {
            "prompt_tokens": len(self.prompt_tokens),
            "new_tokens": len(self.tokens),
            "finish_reason": self.finish_reason,
            "time_to_first_token_s": self.time_to_first_token,
            "prefill_s": self.prefill_seconds,
            "prefill_tokens_per_s": self.prefill_tokens_per_second,
            "decode_tokens_per_s": self.decode_tokens_per_second,
            "token_latencies_s": list(self.token_seconds),
        }

    def summary(self) -> str:
        """One line: the prefill and decode phases and why generation stopped."""
        decode = self.token_seconds[1:]
        decode_part = (f"decode {len(decode)} tok at {self.decode_tokens_per_second:.1f} tok/s "
                       f"({1e3 * sum(decode) / len(decode):.2f} ms/tok)") if decode else "decode 0 tok"
        return (f"prefill {len(self.prompt_tokens)} tok in {1e3 * self.prefill_seconds:.1f} ms "
                f"({self.prefill_tokens_per_second:.0f} tok/s) | TTFT "
                f"{1e3 * self.time_to_first_token:.1f} ms | {decode_part} | finish: {self.finish_reason}")


def prompt_ids(model: Model, prompt: str | Sequence[int]) -> list[int]:
    """A prompt as token ids: text is encoded (empty text becomes <|endoftext|>, as GPT-2 starts
    unconditional samples); a sequence of ids is taken as is."""
    if isinstance(prompt, str):
        if model.tokenizer is None:
            raise InvalidInputError(
                f"model {model.name!r} has no tokenizer (vocabulary of {model.config.n_vocab}); "
                "pass the prompt as a list of token ids"
            )
        ids = model.tokenizer.encode(prompt)
        return ids if ids or model.tokenizer.eot_id is None else [model.tokenizer.eot_id]
    return [int(i) for i in np.asarray(prompt).reshape(-1)]


def generate(model: Model, prompt: str | Sequence[int], max_new_tokens: int = 64, *,
             temperature: float = 0.0, seed: int | None = None,
             stop_tokens: Sequence[int] | None = None,
             on_token: Callable[[int], None] | None = None,
             params: SamplingParams | None = None) -> Generation:
    """Generate up to `max_new_tokens` tokens after `prompt` (a string or token ids).

    Temperature 0 is greedy. Stops at the model's end-of-text token unless `stop_tokens` says
    otherwise (pass `()` to never stop early). `on_token(id)` is called as each token arrives
    (the CLI streams with it; its time is not counted). `params` overrides temperature and seed.

    Example:
        >>> g = generate(model, "The meaning of life is", 20)
        >>> g.text, g.finish_reason, g.decode_tokens_per_second
    """
    start = perf_counter()
    params = params or SamplingParams(temperature=temperature, seed=seed)
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InvalidInputError(f"max_new_tokens={max_new_tokens!r} must be an integer >= 1")
    if stop_tokens is None:
        stop_tokens = () if model.config.eos_token_id is None else (model.config.eos_token_id,)
    stops = frozenset(int(t) for t in stop_tokens)
    ids = prompt_ids(model, prompt)
    rng = np.random.default_rng(params.seed)
    cache = model.new_cache(min(model.config.n_ctx, len(ids) + max_new_tokens))

    t = perf_counter()
    logits = model.prefill(ids, cache)  # [n_vocab]
    prefill_seconds = perf_counter() - t
    tokens, latencies, last, reason = [], [], start, "length"
    while True:
        token = sample(logits, params, rng=rng)
        now = perf_counter()
        latencies.append(now - last)
        tokens.append(token)
        if on_token is not None:
            on_token(token)
        if token in stops:
            reason = "stop"
            break
        if len(tokens) == max_new_tokens:
            break
        if cache.length == model.config.n_ctx:
            reason = "context"
            break
        last = perf_counter()
        logits = model.decode(token, cache)  # [n_vocab]

    text_tokens = tokens[:-1] if reason == "stop" else tokens
    text = model.tokenizer.decode(text_tokens) if model.tokenizer is not None else None
    return Generation(ids, tokens, text, reason, prefill_seconds, latencies)
