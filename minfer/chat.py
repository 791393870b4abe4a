"""Chat templates: a conversation -> the one prompt text an instruction-tuned model was trained on.

A chat model was fine-tuned on conversations written in one exact format: Llama 3 wraps each turn
in `<|start_header_id|>role<|end_header_id|>\\n\\n ... <|eot_id|>`, Qwen in `<|im_start|>role\\n ...
<|im_end|>\\n`. Any other spelling is text the model never saw. The checkpoint ships its format
as a Jinja template (tokenizer_config.json's `chat_template`, or chat_template.jinja), and this
module renders it exactly as transformers' `apply_chat_template(tokenize=False)` does.

A template is code that came with the checkpoint, so it runs in Jinja's sandbox
(`ImmutableSandboxedEnvironment`: no attributes starting with `_`, no changing the data passed
in, `range` capped), configured as transformers configures it. jinja2 is the only safe way to run
these templates; minfer never evaluates them as Python. On top of the sandbox minfer caps `*`,
`**` and the output's length, so a hostile template cannot build a gigabyte string. Everything a
template does wrong becomes a `ChatTemplateError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.utils
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from minfer.errors import ChatTemplateError, InvalidInputError

# The named special tokens transformers passes to every template (its special_tokens_map).
TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
MAX_CHAT_CHARS = 10_000_000  # a rendered conversation longer than this is a runaway template
MAX_INT_BITS = 1 << 16  # the largest integer `*` or `**` may make in a template (19,729 digits)


@dataclass(frozen=True)
class ChatTemplate:
    """A checkpoint's chat template and the special tokens' text it may print."""

    source: str  # the Jinja text
    tokens: dict[str, str]  # bos_token, eos_token, ... -> their text, for those the checkpoint names
    origin: str  # the file it came from, for error messages


def chat_template_from(
    tokenizer_config: dict, special_tokens_map: dict, jinja_file: str | None, origin: str
) -> ChatTemplate | None:
    """The chat template of a checkpoint's files, or None if it has none.

    `jinja_file` (chat_template.jinja's text) takes precedence over tokenizer_config.json's
    `chat_template`, as in transformers. The special tokens' text comes from
    tokenizer_config.json, then special_tokens_map.json for names it does not set.
    """
    source = jinja_file if jinja_file is not None else pick_template(tokenizer_config.get("chat_template"), origin)
    if source is None:
        return None
    tokens = {}
    for name in TOKEN_NAMES:
        value = tokenizer_config.get(name, special_tokens_map.get(name))
        if value is not None:
            tokens[name] = token_text(value, name, origin)
    return ChatTemplate(source, tokens, origin)


def pick_template(value, origin: str) -> str | None:
    """tokenizer_config.json's `chat_template`: a string, or a list of {"name", "template"} from
    which transformers uses the one named "default"."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(t, dict) for t in value):
        named = {t.get("name"): t.get("template") for t in value}
        if isinstance(named.get("default"), str):
            return named["default"]
        raise ChatTemplateError(
            f"{origin} has chat templates named {sorted(map(str, named))} but none named 'default' holding "
            "a string; minfer uses the 'default' one, as transformers does"
        )
    raise ChatTemplateError(
        f"{origin}: chat_template is a {type(value).__name__}; expected a string or a list of {{name, template}}"
    )


def token_text(value, name: str, origin: str) -> str:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken {"content": ...}."""
    text = value.get("content") if isinstance(value, dict) else value
    if not isinstance(text, str):
        raise ChatTemplateError(
            f"{origin}: {name} is {value!r}; expected a string or an object with a 'content' string"
        )
    return text


def render(template: ChatTemplate, messages, add_generation_prompt: bool = True, **extra) -> str:
    """Render a conversation with a chat template, as transformers' `apply_chat_template(...,
    tokenize=False)` does: the template sees `messages`, `add_generation_prompt`, the special
    tokens (`bos_token`, `eos_token`, ...), `tools=None`, `documents=None`, and `extra`.

    Example:
        >>> t = ChatTemplate("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}", {}, "inline")
        >>> render(t, [{"role": "user", "content": "Hi"}])
        '<user>Hi'
    """
    if not isinstance(add_generation_prompt, bool):
        raise InvalidInputError(f"add_generation_prompt must be True or False, not {add_generation_prompt!r}")
    variables = {
        **template.tokens,
        "tools": None,
        "documents": None,
        **{key: plain(value, key) for key, value in extra.items()},
        "messages": check_messages(messages),
        "add_generation_prompt": add_generation_prompt,
    }
    return run(compile_template(template.source, template.origin), variables, template.origin)


def run(compiled: jinja2.Template, variables: dict, origin: str) -> str:
    """Render in the sandbox, stopping past MAX_CHAT_CHARS; whatever the template does wrong
    becomes a ChatTemplateError."""
    pieces, size = [], 0
    try:
        for piece in compiled.generate(**variables):
            size += len(piece)
            if size > MAX_CHAT_CHARS:
                raise SecurityError(f"the rendered text passed {MAX_CHAT_CHARS:,} characters")
            pieces.append(piece)
    except jinja2.TemplateError as e:  # raise_exception, a sandbox refusal, an undefined misused
        raise ChatTemplateError(f"the chat template of {origin} failed: {e.message or e}") from None
    except Exception as e:  # the template's own code failed: 1/0, 'a' + 1, ...
        raise ChatTemplateError(f"the chat template of {origin} failed: {type(e).__name__}: {str(e)[:200]}") from None
    return "".join(pieces)


def check_messages(messages) -> list[dict]:
    """A conversation as plain data: a non-empty list of dicts, each with a str `role` and a str
    `content`; any other keys (`tool_calls`, ...) hold JSON-like data, and those set to None are
    left out, as transformers leaves them out."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidInputError(
            f"messages must be a non-empty list of {{'role': ..., 'content': ...}} dicts, not {messages!r:.80}"
        )
    for number, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise InvalidInputError(
                f"message {number} is {m!r:.80}; each message must be a dict with a str 'role' "
                "('system', 'user', 'assistant', ...) and a str 'content'"
            )
    return [
        plain({k: v for k, v in m.items() if v is not None}, f"message {number}") for number, m in enumerate(messages)
    ]


def plain(value, where: str, depth: int = 0):
    """A copy of `value` made of JSON types only (str, int, float, bool, None, list, dict with str
    keys): the template sees no object whose methods the sandbox does not know."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if depth < 32 and isinstance(value, (list, tuple)):
        return [plain(v, where, depth + 1) for v in value]
    if depth < 32 and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: plain(v, where, depth + 1) for k, v in value.items()}
    raise InvalidInputError(
        f"{where} holds {type(value).__name__} {value!r:.60}; a chat template gets JSON-like data only "
        "(str, int, float, bool, None, lists and dicts with str keys, nested at most 32 deep)"
    )


class GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`, which some templates use to mark the assistant's
    text for training masks: rendered as its body (transformers' tracker does no more when
    rendering text)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with `+`, `*` and `**` checked: 'x' * 10**10, a string doubled
    in a loop or 10 ** 10 ** 10 would take all the memory or all the time before the output
    limit could see them."""

    intercepted_binops = frozenset({"+", "*", "**"})

    def call_binop(self, context, operator, left, right):
        if too_large(operator, left, right):
            raise SecurityError(f"{operator!r} would make a value too large for a chat prompt")
        return super().call_binop(context, operator, left, right)


def too_large(operator: str, left, right) -> bool:
    """Whether `left operator right` makes an integer of over MAX_INT_BITS bits, or a string or
    list of over MAX_CHAT_CHARS items."""
    seq = (str, list, tuple)
    if is_int(left) and is_int(right):
        if operator == "**":
            return abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS
        return operator == "*" and left.bit_length() + right.bit_length() > MAX_INT_BITS
    if operator == "*" and isinstance(left, seq) and is_int(right):
        return len(left) * right > MAX_CHAT_CHARS
    if operator == "*" and is_int(left) and isinstance(right, seq):
        return left * len(right) > MAX_CHAT_CHARS
    return (
        operator == "+" and isinstance(left, seq) and isinstance(right, seq) and len(left) + len(right) > MAX_CHAT_CHARS
    )


def is_int(value) -> bool:
    """A Python int that is not a bool (True * 'x' is not a repetition worth checking)."""
    return isinstance(value, int) and not isinstance(value, bool)


class TemplateNamespace(jinja2.utils.Namespace):
    """`namespace(...)` without attributes that start with `_`, as transformers has it."""

    def __init__(*args, **kwargs):  # Jinja's signature trick, so that namespace(self=...) works
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            TemplateNamespace.check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        TemplateNamespace.check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def check_name(name) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"a namespace attribute may not start with '_': {name!r}")


class TemplateDict:
    """`dict(...)` and `dict.fromkeys(...)`, without the type object itself (transformers'
    guard against reaching Python internals through it)."""

    def __call__(self, *args, **kwargs):
        return dict(*args, **kwargs)

    def fromkeys(self, *args, **kwargs):
        return dict.fromkeys(*args, **kwargs)


def raise_exception(message):
    """What a template calls to refuse a conversation it cannot format."""
    raise jinja2.TemplateError(message)


def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    """transformers' `tojson` filter: json.dumps without Jinja's HTML escaping of < > & '."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    """Today's date or time in `format` (Llama 3.1's template prints 'Today Date: 26 Jul 2024')."""
    return datetime.now().strftime(format)


@lru_cache(maxsize=16)
def compile_template(source: str, origin: str) -> jinja2.Template:
    """A template's source compiled in the sandbox, configured as transformers configures it
    (trim_blocks, lstrip_blocks, the loopcontrols extension for break/continue, its globals)."""
    env = Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals.update(
        raise_exception=raise_exception, strftime_now=strftime_now, dict=TemplateDict(), namespace=TemplateNamespace
    )
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise ChatTemplateError(
            f"the chat template of {origin} is not valid Jinja (line {e.lineno}: {e.message})"
        ) from None
    except Exception as e:  # nested too deep for Jinja's parser or Python's compiler
        raise ChatTemplateError(f"the chat template of {origin} cannot be compiled ({type(e).__name__})") from None
