"""The model's hyperparameters: a frozen dataclass read from a Hugging Face `config.json`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minfer.checks import is_whole
from minfer.errors import ModelLoadError

# Values of HF's GPT2Config that change the math. minfer implements only the ones GPT-2 was
# trained with; a checkpoint that sets another value would be computed wrongly, so it is refused.
_REQUIRED_GPT2_SETTINGS = {
    "activation_function": "gelu_new",  # the tanh approximation of GELU
    "scale_attn_weights": True,  # scores divided by sqrt(d_head)
    "scale_attn_by_inverse_layer_idx": False,
    "reorder_and_upcast_attn": False,
}


@dataclass(frozen=True)
class Config:
    """The shape of a GPT-2 model. Every array in minfer is sized from these fields.

    Example:
        >>> Config(n_layer=12, n_head=12, n_embd=768, n_ctx=1024, n_vocab=50257).d_head
        64
    """

    n_layer: int  # transformer blocks stacked one after another
    n_head: int  # attention heads per block; they split n_embd between them
    n_embd: int  # width of the residual stream: every token is a vector this long
    n_ctx: int  # longest sequence the position embedding covers (HF: n_positions)
    n_vocab: int  # rows of the token embedding, columns of the logits (HF: vocab_size)
    layer_norm_eps: float = 1e-5  # added to the variance so a constant vector does not divide by 0
    eos_token_id: int | None = None  # the end-of-text token that stops generation by default

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "n_ctx", "n_vocab"):
            value = getattr(self, name)
            if not is_whole(value) or value < 1:  # a bool is not a layer count
                raise ModelLoadError(f"config field {name}={value!r} must be a positive integer")
        eps = self.layer_norm_eps
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1:
            raise ModelLoadError(f"config field layer_norm_eps={eps!r} must be a number in (0, 1)")
        eos = self.eos_token_id
        if eos is not None and (not is_whole(eos) or not 0 <= eos < self.n_vocab):
            raise ModelLoadError(
                f"config field eos_token_id={eos!r} must be None or a token id in [0, n_vocab={self.n_vocab})"
            )
        if self.n_embd % self.n_head:
            raise ModelLoadError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}: "
                "each head must get the same number of dimensions"
            )

    @property
    def d_head(self) -> int:
        """Dimensions per attention head (n_embd / n_head)."""
        return self.n_embd // self.n_head

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> Config:
        """Build a Config from the dict of a Hugging Face GPT-2 `config.json`."""
        if not isinstance(hf, dict):
            raise ModelLoadError(f"config.json must hold a JSON object, not a {type(hf).__name__}")
        if hf.get("model_type") != "gpt2":
            raise ModelLoadError(
                f"config.json has model_type={hf.get('model_type')!r}; minfer reads 'gpt2' "
                "checkpoints (Llama-family models come later)"
            )
        for key, want in _REQUIRED_GPT2_SETTINGS.items():
            if key in hf and hf[key] != want:
                raise ModelLoadError(f"config.json sets {key}={hf[key]!r}; minfer implements GPT-2 with {key}={want!r}")
        try:
            return cls(
                n_layer=hf["n_layer"],
                n_head=hf["n_head"],
                n_embd=hf["n_embd"],
                n_ctx=hf["n_positions"],
                n_vocab=hf["vocab_size"],
                layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
                eos_token_id=hf.get("eos_token_id"),
            )
        except KeyError as missing:
            raise ModelLoadError(f"config.json lacks the field {missing}") from None

    def to_hf(self) -> dict[str, Any]:
        """The `config.json` dict that `transformers.GPT2LMHeadModel` reads back as this Config."""
        return {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_embd": self.n_embd,
            "n_positions": self.n_ctx,
            "vocab_size": self.n_vocab,
            "layer_norm_epsilon": self.layer_norm_eps,
            "bos_token_id": self.eos_token_id,
            "eos_token_id": self.eos_token_id,
            "tie_word_embeddings": True,
            **_REQUIRED_GPT2_SETTINGS,
        }
