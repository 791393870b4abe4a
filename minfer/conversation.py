"""A conversation with an instruction-tuned model, turn after turn (`minfer chat`, docs/chat.md).

Each turn: the history (system prompt, then user and assistant messages) is rendered by the
checkpoint's chat template (`minfer.chat`), encoded with the template's special tokens, and
generated from until the model ends its turn (Llama 3's `<|eot_id|>`, Qwen's `<|im_end|>`: the
checkpoint's end-of-generation ids). The reply joins the history. The whole conversation is
prefilled again every turn; reusing its KV cache across turns is prefix caching, a serving topic.
"""

from __future__ import annotations

from collections.abc import Iterator

from minfer.errors import ContextOverflowError, InvalidInputError
from minfer.generation import Generation, stream
from minfer.model import Model
from minfer.sampling import SamplingParams


class ChatSession:
    """The history of one conversation and the settings its replies are generated with.

    Example:
        >>> chat = ChatSession(minfer.load_model("Qwen/Qwen2.5-0.5B-Instruct"), system="Be brief.")
        >>> for piece in chat.send("What is a KV cache?"):
        ...     print(piece, end="")
        >>> chat.last.summary()        # the reply's prefill and decode phases
    """

    def __init__(
        self,
        model: Model,
        system: str | None = None,
        params: SamplingParams | None = None,
        max_new_tokens: int = 256,
    ):
        tok = model.tokenizer
        if tok is None or tok.chat_template is None:
            raise InvalidInputError(
                f"model {model.name!r} has no chat template: it is a base model, which continues text "
                "rather than answering turns (use `minfer generate`). Instruct models ship one, e.g. "
                "Qwen/Qwen2.5-0.5B-Instruct or HuggingFaceTB/SmolLM2-135M-Instruct"
            )
        self.model, self.system, self.params, self.max_new_tokens = model, system, params, max_new_tokens
        self.messages: list[dict] = []
        self.last: Generation | None = None  # the latest reply's generation (timings, tokens)
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.messages = [] if self.system is None else [{"role": "system", "content": self.system}]
        self.last = None

    def prompt_ids(self) -> list[int]:
        """The history rendered by the chat template, with the assistant's turn opened, as ids."""
        return self.model.tokenizer.encode_chat(self.messages, add_generation_prompt=True)  # type: ignore[union-attr]

    def send(self, text: str) -> Iterator[str]:
        """Add the user's message and stream the reply, piece by piece; once the stream is
        exhausted the reply joins the history and `last` holds its generation."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a chat message must be non-empty text")
        self.messages.append({"role": "user", "content": text})
        try:
            ids = self.prompt_ids()
            room = self.model.config.n_ctx - len(ids)
            if room < 1:
                raise ContextOverflowError(
                    f"the conversation is {len(ids):,} tokens and the model's context is "
                    f"{self.model.config.n_ctx:,}: start over with /reset (or reset())"
                )
            s = stream(self.model, ids, min(self.max_new_tokens, room), params=self.params)
        except Exception:
            self.messages.pop()  # the turn did not happen
            raise
        return self._reply(s)

    def _reply(self, s) -> Iterator[str]:
        yield from s
        self.last = s.generation
        self.messages.append({"role": "assistant", "content": self.reply_text(s.generation.tokens)})

    def reply_text(self, tokens: list[int]) -> str:
        """A reply as it joins the history: its text without special tokens (as transformers'
        decode(skip_special_tokens=True)), since the template adds the turn's own markers and a
        special token inside a message would be refused as a forged turn by the next encode."""
        tok = self.model.tokenizer
        special = set(tok.special_tokens.values())  # type: ignore[union-attr]
        return tok.decode([t for t in tokens if t not in special])  # type: ignore[union-attr]

    def stats(self) -> str:
        """The latest reply's phases and the conversation's length in tokens."""
        if self.last is None:
            return "no reply yet"
        used = len(self.last.prompt_tokens) + len(self.last.tokens)
        return f"{self.last.summary()}; context {used:,} of {self.model.config.n_ctx:,} tokens"
