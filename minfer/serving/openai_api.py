"""The OpenAI API's formats for `minfer serve` (minfer.serving.server): a request body -> the
engine's arguments, and the engine's outputs -> OpenAI's answers.

Every field of a request is checked here, once, and a bad one is an `ApiError` (a 400) whose
message and `param` name it. Text is encoded as text (`tokenizer.encode` with
allow_special=False, or `encode_chat`, which refuses a special token's text inside a message),
so a user can never type a special token. Nothing here touches the web framework: the
functions take and return plain dicts, and errors carry their HTTP status.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from minfer.errors import InvalidInputError, MinferError, ModelLoadError
from minfer.generation import prompt_ids
from minfer.model import Model
from minfer.sampling import SamplingParams
from minfer.serving.engine import RequestOutput, TokenLogprob
from minfer.tokenizer import Tokenizer

MAX_LOGPROBS = 20  # alternatives per token, as vLLM allows (OpenAI: 5 for completions, 20 for chat)
# minfer's finish reasons -> OpenAI's ("abort" never reaches a client as one: the server answers
# an abort it did not ask for with an error)
FINISH_REASONS = {"stop": "stop", "stop_string": "stop", "length": "length", "context": "length"}


# ---------------------------------------------------------------- requests -> engine arguments


class ApiError(Exception):
    """An error answered in OpenAI's JSON: {"error": {"message", "type", "param", "code"}}."""

    TYPES = {401: "invalid_request_error", 429: "requests", 500: "server_error", 503: "server_error"}

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        kind = self.TYPES.get(self.status, "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class EngineRequest:
    """One OpenAI request as the engine's `add_request` arguments, and how to answer it."""

    prompt: list[int]  # token ids: the user's text encoded as text, never as special tokens
    max_new_tokens: int
    params: SamplingParams
    stop_strings: tuple[str, ...]
    logprobs: int | None  # alternatives to report per token (0: the token's own only); None: no logprobs
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk with the token counts


def is_number(value) -> bool:
    """A finite JSON number (Python's json also reads NaN and Infinity: refused here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def field_value(body: dict, name: str, default, ok: Callable[[Any], bool], expected: str):
    """body[name] if it passes `ok`, `default` if absent or null, else a 400 naming the field."""
    value = body.get(name)
    if value is None:
        return default
    if not ok(value):
        raise ApiError(400, f"{name} must be {expected}; got {json.dumps(value)[:80]}", param=name)
    return value


@contextlib.contextmanager
def blame(param: str):
    """A minfer error raised inside (a tokenizer's, a chat template's) becomes a 400 naming `param`."""
    try:
        yield
    except MinferError as e:
        raise ApiError(400, str(e), param=param) from None


# OpenAI's sampling fields and minfer's extras (top_k, min_p, repetition_penalty, as vLLM takes
# them) -> (the check, what is expected). SamplingParams checks them again; these name the field.
SAMPLING_FIELDS = {
    "temperature": (lambda v: is_number(v) and 0 <= v <= 2, "a number from 0 to 2 (0 = greedy)"),
    "top_p": (lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1] (1 = off)"),
    "frequency_penalty": (lambda v: is_number(v) and -2 <= v <= 2, "a number from -2 to 2"),
    "presence_penalty": (lambda v: is_number(v) and -2 <= v <= 2, "a number from -2 to 2"),
    "seed": (lambda v: is_int(v) and 0 <= v < 2**63, "an integer from 0 to 2**63 - 1"),
    "top_k": (lambda v: is_int(v) and v >= -1, "an integer >= 0 (0 or -1 = off)"),
    "min_p": (lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1) (0 = off)"),
    "repetition_penalty": (lambda v: is_number(v) and 0 < v <= 10, "a number in (0, 10] (1 = off)"),
}
# Fields minfer does not implement, with the values that mean "not used": any other value is a 400
# (answering as if they had been applied would mislead the client).
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "best_of": (1,),
    "echo": (False,),
    "suffix": (None,),
    "logit_bias": ({},),
    "tools": ([],),
    "tool_choice": ("none",),  # with no tools, "none" is what happens anyway
    "functions": ([],),  # the legacy form of tools
    "function_call": ("none",),
    "response_format": ({"type": "text"},),  # json_object, json_schema: constrained decoding, not here
}
# Every field an endpoint knows: the ones it implements, the unsupported ones above (refused by
# value), and OpenAI's fields that cannot change the answer (`user`, `metadata`, ...). Any other
# field is a 400, as OpenAI answers it: a misspelled or unimplemented option must not pass silently.
HARMLESS = {"user", "metadata", "store", "service_tier", "parallel_tool_calls"}
COMMON_FIELDS = {"model", "max_tokens", "stop", "stream", "stream_options", "logprobs"} | set(SAMPLING_FIELDS)
KNOWN_FIELDS = {
    "completions": COMMON_FIELDS | {"prompt"} | set(UNSUPPORTED) | HARMLESS,
    "chat": COMMON_FIELDS | {"messages", "max_completion_tokens", "top_logprobs"} | set(UNSUPPORTED) | HARMLESS,
}


def sampling_params(body: dict, defaults: dict) -> SamplingParams:
    """The request's sampling fields over the server's defaults (see `sampling_defaults`)."""
    values = {
        name: field_value(body, name, defaults.get(name), ok, what) for name, (ok, what) in SAMPLING_FIELDS.items()
    }
    values["top_k"] = max(values["top_k"] or 0, 0)  # vLLM's -1 and OpenAI's absence both mean off
    return SamplingParams(**{k: v for k, v in values.items() if v is not None})


def stop_strings(value) -> tuple[str, ...]:
    """OpenAI's `stop`: null, one string, or a list of strings (none empty)."""
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise ApiError(400, f"stop must be a non-empty string or a list of them; got {json.dumps(value)[:80]}", "stop")
    return tuple(stops)


def check_common(body: dict, model_name: str, endpoint: str) -> None:
    """The model asked for (required, as OpenAI requires it; 404 if another), no unknown field and
    no unsupported one in use. `endpoint`: "completions" or "chat"."""
    for key in body:
        if key not in KNOWN_FIELDS[endpoint]:
            raise ApiError(400, f"Unrecognized request argument supplied: {key} (minfer serve does not know it)", key)
    name = body.get("model")
    if name is None:
        raise ApiError(400, f"model is required: this server runs {model_name!r} (GET /v1/models lists it)", "model")
    if name != model_name:
        raise ApiError(
            404, f"the model {name!r} does not exist here; this server runs {model_name!r}", "model", "model_not_found"
        )
    for key, unused in UNSUPPORTED.items():
        if body.get(key) is not None and body[key] not in unused:
            raise ApiError(400, f"{key}={json.dumps(body[key])[:60]} is not supported by minfer serve", key)


def completion_prompt(value, model: Model) -> list[int]:
    """/v1/completions' `prompt`: a string (after the tokenizer's BOS, as `minfer.generate` encodes
    it), token ids, or a list holding one of those. One prompt per request."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], (str, list)):
        value = value[0]
    if isinstance(value, str):
        with blame("prompt"):
            return prompt_ids(model, value)
    n_vocab = model.config.n_vocab
    if isinstance(value, list) and value and all(is_int(t) and 0 <= t < n_vocab for t in value):
        return value
    raise ApiError(
        400,
        f"prompt must be a string or a non-empty list of token ids in [0, {n_vocab}); one prompt per request",
        "prompt",
    )


def message_text(content, number: int) -> str:
    """A message's content: a string, or OpenAI's list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        if all(isinstance(p.get("text"), str) for p in content):
            return "".join(p["text"] for p in content)
    raise ApiError(400, f"messages[{number}].content must be a string or a list of text parts", "messages")


def chat_prompt(messages, model: Model) -> list[int]:
    """/v1/chat/completions' `messages` -> token ids through the model's chat template."""
    tok = model.tokenizer
    if tok is None or tok.chat_template is None:
        raise ApiError(
            400,
            f"model {model.name!r} has no chat template (it is a base model, not trained on conversations): "
            "use /v1/completions with a plain prompt",
            "messages",
            "no_chat_template",
        )
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "messages must be a non-empty list of {role, content} objects", "messages")
    plain = [{**m, "content": message_text(m.get("content"), i)} for i, m in enumerate(messages)]
    with blame("messages"):
        return tok.encode_chat(plain)  # refuses a special token's text inside a message


def check_fits(prompt: list[int], n_ctx: int, param: str) -> None:
    if len(prompt) > n_ctx:
        raise ApiError(
            400,
            f"the prompt is {len(prompt)} tokens, longer than this model's context window of {n_ctx} tokens "
            "(n_ctx); shorten it",
            param,
            "context_length_exceeded",
        )


def engine_request(body: dict, defaults: dict, prompt: list[int], max_new_tokens: int, logprobs) -> EngineRequest:
    """The fields both endpoints share, checked, around a prompt already encoded."""
    stream = field_value(body, "stream", False, lambda v: isinstance(v, bool), "true or false")
    options = field_value(body, "stream_options", {}, lambda v: isinstance(v, dict), "an object")
    if options and not stream:
        raise ApiError(400, "stream_options is only allowed with stream=true", "stream_options")
    include_usage = field_value(options, "include_usage", False, lambda v: isinstance(v, bool), "true or false")
    return EngineRequest(
        prompt,
        max_new_tokens,
        sampling_params(body, defaults),
        stop_strings(body.get("stop")),
        logprobs,
        stream,
        include_usage,
    )


def positive_int(v) -> bool:
    return is_int(v) and v >= 1


def completion_request(body: dict, model: Model, defaults: dict) -> EngineRequest:
    """A /v1/completions body -> engine arguments (OpenAI's default max_tokens is 16)."""
    check_common(body, model.name, "completions")
    prompt = completion_prompt(body.get("prompt"), model)
    check_fits(prompt, model.config.n_ctx, "prompt")
    max_new = field_value(body, "max_tokens", 16, positive_int, "an integer >= 1")
    logprobs = field_value(
        body, "logprobs", None, lambda v: is_int(v) and 0 <= v <= MAX_LOGPROBS, f"an integer from 0 to {MAX_LOGPROBS}"
    )
    return engine_request(body, defaults, prompt, max_new, logprobs)


def chat_request(body: dict, model: Model, defaults: dict) -> EngineRequest:
    """A /v1/chat/completions body -> engine arguments. Without max_completion_tokens (or the older
    max_tokens) the reply may fill the context window, as OpenAI's and vLLM's do."""
    check_common(body, model.name, "chat")
    prompt = chat_prompt(body.get("messages"), model)
    check_fits(prompt, model.config.n_ctx, "messages")
    room = max(model.config.n_ctx - len(prompt), 1)
    max_tokens = field_value(body, "max_tokens", room, positive_int, "an integer >= 1")
    max_new = field_value(body, "max_completion_tokens", max_tokens, positive_int, "an integer >= 1")
    wants = field_value(body, "logprobs", False, lambda v: isinstance(v, bool), "true or false")
    top = field_value(
        body,
        "top_logprobs",
        None,
        lambda v: is_int(v) and 0 <= v <= MAX_LOGPROBS,
        f"an integer from 0 to {MAX_LOGPROBS}",
    )
    if top is not None and not wants:
        raise ApiError(400, "top_logprobs needs logprobs=true", "top_logprobs")
    return engine_request(body, defaults, prompt, max_new, (top or 0) if wants else None)


def sampling_defaults(model_dir) -> dict:
    """What a request that leaves a sampling field out gets: the checkpoint's generation_config.json
    values (temperature, top_p, top_k, min_p, repetition_penalty), as vLLM applies them, over
    OpenAI's temperature 1. A model directory without that file gets OpenAI's defaults."""
    from minfer.checkpoints.tokenizer_files import read_json

    path = model_dir / "generation_config.json" if model_dir is not None else None
    config = read_json(path, ModelLoadError) if path is not None and path.exists() else {}
    defaults = {"temperature": 1.0} | {k: config[k] for k in SAMPLING_FIELDS if k in config and k != "seed"}
    try:
        SamplingParams(**defaults)
    except InvalidInputError as e:
        raise ModelLoadError(f"{path}: {e}") from None
    return defaults


# ---------------------------------------------------------------- outputs -> answers


def token_text(tok: Tokenizer, token: int) -> str:
    return tok.token_bytes(token).decode("utf-8", errors="replace")


def completion_logprobs(tok: Tokenizer, logprobs: list[TokenLogprob], offset: int) -> dict:
    """OpenAI's completions logprobs: the tokens, their logprobs, the top alternatives of each,
    and where each token starts in the completion's text (counted from `offset`)."""
    tokens = [token_text(tok, lp.token) for lp in logprobs]
    return {
        "tokens": tokens,
        "token_logprobs": [lp.logprob for lp in logprobs],
        "top_logprobs": [{token_text(tok, t): p for t, p in lp.top} for lp in logprobs],
        "text_offset": list(itertools.accumulate((len(t) for t in tokens), initial=offset))[:-1],
    }


def chat_token(tok: Tokenizer, token: int, logprob: float) -> dict:
    raw = tok.token_bytes(token)
    return {"token": raw.decode("utf-8", errors="replace"), "logprob": logprob, "bytes": list(raw)}


def chat_logprobs(tok: Tokenizer, logprobs: list[TokenLogprob]) -> dict:
    """OpenAI's chat logprobs: {"content": [{token, logprob, bytes, top_logprobs: [...]}, ...]}."""
    return {
        "content": [
            chat_token(tok, lp.token, lp.logprob) | {"top_logprobs": [chat_token(tok, t, p) for t, p in lp.top]}
            for lp in logprobs
        ]
    }


def usage(request: EngineRequest, out: RequestOutput) -> dict:
    n_prompt, n_new = len(request.prompt), len(out.generation.tokens)  # a stop token counts, as OpenAI's
    return {"prompt_tokens": n_prompt, "completion_tokens": n_new, "total_tokens": n_prompt + n_new}


@dataclass
class Reply:
    """Builds one request's answer, a completion or a chat completion, whole or as chunks."""

    chat: bool
    model: str
    tokenizer: Tokenizer
    request: EngineRequest
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))
    offset: int = 0  # characters of the tokens whose logprobs were sent, for text_offset
    released: int = 0  # characters of text sent
    pending: list[TokenLogprob] = field(default_factory=list)  # logprobs of tokens whose text is held back
    started: bool = False  # a chat stream's first chunk carries the role

    def head(self, chunk: bool) -> dict:
        kind = ("chat.completion" if self.chat else "text_completion") + (".chunk" if chunk and self.chat else "")
        name = ("chatcmpl-" if self.chat else "cmpl-") + self.id
        return {"id": name, "object": kind, "created": self.created, "model": self.model}

    def release(self, outs: list[RequestOutput]) -> list[TokenLogprob]:
        """The logprobs to send with this text: those of the tokens that start inside the text
        sent so far. The engine holds back text that may begin a stop string, so their logprobs
        wait too; a stop string's tokens, never sent as text, are dropped at the end. After any
        other ending (end-of-text, length) every token's logprobs go out, the stop token's too."""
        self.pending += [lp for out in outs for lp in out.logprobs]
        self.released += sum(len(out.text) for out in outs)
        last = outs[-1]
        if last.finished and last.finish_reason != "stop_string":
            ready, self.pending = self.pending, []
            return ready
        n = 0
        while n < len(self.pending) and self.offset < self.released:
            self.offset += len(token_text(self.tokenizer, self.pending[n].token))
            n += 1
        ready, self.pending = self.pending[:n], ([] if last.finished else self.pending[n:])
        return ready

    def logprobs(self, outs: list[RequestOutput]) -> dict | None:
        if self.request.logprobs is None:
            return None
        start = self.offset
        lps = self.release(outs)
        if self.chat:
            return chat_logprobs(self.tokenizer, lps)
        data = completion_logprobs(self.tokenizer, lps, start)
        self.offset = start + sum(len(t) for t in data["tokens"])
        return data

    def choice(self, outs: list[RequestOutput], chunk: bool) -> dict:
        text, last = "".join(out.text for out in outs), outs[-1]
        finish = FINISH_REASONS[last.finish_reason] if last.finished and last.finish_reason else None
        body = {"index": 0, "logprobs": self.logprobs(outs), "finish_reason": finish}
        if not self.chat:
            return body | {"text": text}
        if not chunk:
            return body | {"message": {"role": "assistant", "content": text}}
        delta = {"content": text} if self.started else {"role": "assistant", "content": text}
        self.started = True
        return body | {"delta": delta}

    def whole(self, outs: list[RequestOutput]) -> dict:
        return self.head(False) | {"choices": [self.choice(outs, False)], "usage": usage(self.request, outs[-1])}

    def chunk(self, out: RequestOutput) -> dict:
        extra = {"usage": None} if self.request.include_usage else {}
        return self.head(True) | {"choices": [self.choice([out], True)]} | extra

    def usage_chunk(self, out: RequestOutput) -> dict:
        return self.head(True) | {"choices": [], "usage": usage(self.request, out)}
