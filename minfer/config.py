"""The model's hyperparameters: a frozen dataclass read from a Hugging Face `config.json`.

`Config` is GPT-2's; `LlamaConfig` is the Llama family's (Llama 3.x, Qwen2/2.5, Qwen3, SmolLM2,
Mistral without a sliding window), with the same names for what the two share. `config_from_hf`
reads either, by config.json's `model_type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from minfer.checks import is_whole
from minfer.errors import ModelLoadError
from minfer.rope import RopeScaling

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

    family: ClassVar[str] = "gpt2"  # which block the model runs (see minfer.model.FAMILIES)

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

    @property
    def n_kv_head(self) -> int:
        """Key/value heads the cache holds: one per query head in GPT-2 (no grouping)."""
        return self.n_head

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """The tokens that end a generation by default."""
        return () if self.eos_token_id is None else (self.eos_token_id,)

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> Config:
        """Build a Config from the dict of a Hugging Face GPT-2 `config.json`."""
        if not isinstance(hf, dict):
            raise ModelLoadError(f"config.json must hold a JSON object, not a {type(hf).__name__}")
        if hf.get("model_type") != "gpt2":
            raise ModelLoadError(f"config.json has model_type={hf.get('model_type')!r}; Config reads 'gpt2'")
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


LLAMA_FAMILY = ("llama", "qwen2", "qwen3", "mistral")  # config.json model_types LlamaConfig reads
SUPPORTED_MODEL_TYPES = ("gpt2", *LLAMA_FAMILY)


@dataclass(frozen=True)
class LlamaConfig:
    """The shape of a Llama-family model: GPT-2's fields, plus what the family changed.

    Example:
        >>> c = LlamaConfig(n_layer=6, n_head=8, n_kv_head=2, n_embd=384, n_ctx=512, n_vocab=4096, n_hidden=1024)
        >>> c.d_head, c.n_head // c.n_kv_head   # 48 dimensions per head; 4 query heads per KV head
        (48, 4)
    """

    n_layer: int  # decoder blocks (HF: num_hidden_layers)
    n_head: int  # query heads per block (HF: num_attention_heads)
    n_kv_head: int  # key/value heads, each shared by n_head / n_kv_head query heads (GQA; 1 is MQA)
    n_embd: int  # width of the residual stream (HF: hidden_size)
    n_ctx: int  # longest sequence the model is meant for (HF: max_position_embeddings)
    n_vocab: int  # rows of the token embedding, columns of the logits (HF: vocab_size)
    n_hidden: int  # width of the gated MLP's hidden layer (HF: intermediate_size)
    d_head: int = 0  # dimensions per head; 0 means n_embd / n_head (Qwen3 sets it explicitly)
    norm_eps: float = 1e-6  # RMSNorm's epsilon (HF: rms_norm_eps)
    rope_theta: float = 10000.0  # RoPE's base: the slowest pair turns once per ~2 pi theta positions
    rope_scaling: RopeScaling | None = None  # how RoPE is stretched past the pre-training context
    qkv_bias: bool = False  # q, k and v projections have biases (Qwen2; Llama's attention_bias)
    o_bias: bool = False  # the output projection has a bias (Llama's attention_bias)
    mlp_bias: bool = False  # gate, up and down projections have biases (Llama's mlp_bias)
    qk_norm: bool = False  # an RMSNorm on each head's q and k before RoPE (Qwen3)
    tie_word_embeddings: bool = False  # the LM head is the token embedding (small models do this)
    eos_token_ids: tuple[int, ...] = ()  # tokens that end a generation (Llama 3 instruct has several)
    model_type: str = "llama"  # config.json's model_type, kept for display and for to_hf

    family: ClassVar[str] = "llama"  # which block the model runs (see minfer.model.FAMILIES)

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_kv_head", "n_embd", "n_ctx", "n_vocab", "n_hidden"):
            value = getattr(self, name)
            if not is_whole(value) or value < 1:
                raise ModelLoadError(f"config field {name}={value!r} must be a positive integer")
        if not is_whole(self.d_head) or self.d_head < 0:
            raise ModelLoadError(f"config field d_head={self.d_head!r} must be a positive integer (0: n_embd / n_head)")
        if self.d_head == 0:
            if self.n_embd % self.n_head:
                raise ModelLoadError(
                    f"n_embd={self.n_embd} is not divisible by n_head={self.n_head} and config.json "
                    "gives no head_dim: each head must get the same number of dimensions"
                )
            object.__setattr__(self, "d_head", self.n_embd // self.n_head)
        if self.d_head % 2:
            raise ModelLoadError(f"head_dim={self.d_head} is odd; RoPE rotates dimensions in pairs")
        if self.n_head % self.n_kv_head:
            raise ModelLoadError(
                f"n_head={self.n_head} is not a multiple of num_key_value_heads={self.n_kv_head}: "
                "each key/value head must serve the same number of query heads"
            )
        for name in ("norm_eps", "rope_theta"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or value == float("inf"):
                raise ModelLoadError(f"config field {name}={value!r} must be a positive number")
        bad = [e for e in self.eos_token_ids if not is_whole(e) or not 0 <= e < self.n_vocab]
        if bad:
            raise ModelLoadError(f"eos_token_id {bad[0]!r} must be a token id in [0, n_vocab={self.n_vocab})")

    @property
    def eos_token_id(self) -> int | None:
        """The first end-of-generation token, or None (all of them: `eos_token_ids`)."""
        return self.eos_token_ids[0] if self.eos_token_ids else None

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> LlamaConfig:
        """Build a LlamaConfig from a Hugging Face `config.json` dict (llama, qwen2, qwen3, mistral)."""
        model_type = hf.get("model_type")
        if model_type not in LLAMA_FAMILY:
            raise ModelLoadError(
                f"config.json has model_type={model_type!r}; LlamaConfig reads {', '.join(LLAMA_FAMILY)}"
            )
        if hf.get("hidden_act", "silu") != "silu":
            raise ModelLoadError(
                f"config.json sets hidden_act={hf['hidden_act']!r}; the Llama family's MLP uses 'silu'"
            )
        check_no_sliding_window(hf)
        theta, scaling = rope_settings(hf)
        bias = hf.get("attention_bias", False) is True
        try:
            n_head = hf["num_attention_heads"]
            return cls(
                n_layer=hf["num_hidden_layers"],
                n_head=n_head,
                n_kv_head=hf.get("num_key_value_heads") or n_head,
                n_embd=hf["hidden_size"],
                n_ctx=hf["max_position_embeddings"],
                n_vocab=hf["vocab_size"],
                n_hidden=hf["intermediate_size"],
                d_head=hf.get("head_dim") or 0,
                norm_eps=hf.get("rms_norm_eps", 1e-6),
                rope_theta=theta,
                rope_scaling=scaling,
                qkv_bias=bias or model_type == "qwen2",  # Qwen2 always has q, k, v biases
                o_bias=bias,
                mlp_bias=hf.get("mlp_bias", False) is True,
                qk_norm=model_type == "qwen3",
                tie_word_embeddings=hf.get("tie_word_embeddings", False) is True,
                eos_token_ids=token_id_tuple(hf.get("eos_token_id")),
                model_type=model_type,
            )
        except KeyError as missing:
            raise ModelLoadError(f"config.json lacks the field {missing}") from None

    def to_hf(self) -> dict[str, Any]:
        """The `config.json` dict transformers reads back as this config (transformers 5 spelling)."""
        rope: dict[str, Any] = {"rope_type": "default", "rope_theta": self.rope_theta}
        if self.rope_scaling is not None:
            rope |= vars(self.rope_scaling)
        return {
            "model_type": self.model_type,
            "num_hidden_layers": self.n_layer,
            "num_attention_heads": self.n_head,
            "num_key_value_heads": self.n_kv_head,
            "hidden_size": self.n_embd,
            "max_position_embeddings": self.n_ctx,
            "vocab_size": self.n_vocab,
            "intermediate_size": self.n_hidden,
            "head_dim": self.d_head,
            "rms_norm_eps": self.norm_eps,
            "rope_parameters": rope,
            "attention_bias": self.o_bias,
            "mlp_bias": self.mlp_bias,
            "hidden_act": "silu",
            "tie_word_embeddings": self.tie_word_embeddings,
            "eos_token_id": list(self.eos_token_ids) if len(self.eos_token_ids) != 1 else self.eos_token_ids[0],
        }


def token_id_tuple(value) -> tuple[int, ...]:
    """config.json's eos_token_id (None, an int, or a list of ints) as a tuple."""
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    if not all(is_whole(v) for v in values):
        raise ModelLoadError(f"config.json's eos_token_id={value!r} must be a token id or a list of them")
    return tuple(int(v) for v in values)


def check_no_sliding_window(hf: dict[str, Any]) -> None:
    """Refuse a sliding-window attention config: minfer attends over the whole context."""
    window = hf.get("sliding_window")
    used = hf.get("use_sliding_window", hf.get("model_type") == "mistral")  # Mistral slides when it has a window
    layer_types = hf.get("layer_types") or []
    sliding = [t for t in layer_types if t != "full_attention"]
    if (window is not None and used) or sliding:
        what = f"layer_types has {sliding[0]!r}" if sliding else f"sliding_window={window!r}"
        raise ModelLoadError(
            f"config.json asks for sliding-window attention ({what}); minfer implements full causal "
            "attention only. Mistral v0.2+ and Qwen without use_sliding_window work"
        )


def rope_settings(hf: dict[str, Any]) -> tuple[float, RopeScaling | None]:
    """RoPE's theta and scaling from either spelling: hub Llama 3.x configs write `rope_theta`
    and `rope_scaling`; transformers 5 writes one `rope_parameters` dict holding both."""
    params = hf.get("rope_parameters")
    if params is None:
        params = {"rope_theta": hf.get("rope_theta", 10000.0), **(hf.get("rope_scaling") or {})}
    if not isinstance(params, dict):
        raise ModelLoadError(f"config.json's rope_parameters must be an object, not {params!r}")
    rope_type = params.get("rope_type", params.get("type", "default"))  # older configs wrote "type"
    theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
    if rope_type in ("default", None):
        return theta, None
    if rope_type not in ("linear", "llama3"):
        raise ModelLoadError(
            f"config.json asks for RoPE scaling {rope_type!r}; minfer implements 'default', 'linear' and 'llama3'"
        )
    fields = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
    wanted = fields if rope_type == "llama3" else fields[:1]
    missing = [f for f in wanted if f not in params]
    if missing:
        raise ModelLoadError(f"config.json's {rope_type} RoPE scaling lacks {missing[0]}")
    for f in wanted:
        if not isinstance(params[f], (int, float)) or isinstance(params[f], bool) or not params[f] > 0:
            raise ModelLoadError(f"config.json's RoPE {f}={params[f]!r} must be a positive number")
    if rope_type == "llama3" and not params["high_freq_factor"] > params["low_freq_factor"]:
        raise ModelLoadError("config.json's llama3 RoPE needs high_freq_factor > low_freq_factor")
    return theta, RopeScaling(rope_type, **{f: params[f] for f in wanted})


def config_from_hf(hf: dict[str, Any]) -> Config | LlamaConfig:
    """The config for a Hugging Face `config.json` dict, by its model_type."""
    if not isinstance(hf, dict):
        raise ModelLoadError(f"config.json must hold a JSON object, not a {type(hf).__name__}")
    model_type = hf.get("model_type")
    if model_type == "gpt2":
        return Config.from_hf(hf)
    if model_type in LLAMA_FAMILY:
        return LlamaConfig.from_hf(hf)
    raise ModelLoadError(
        f"config.json has model_type={model_type!r}; minfer runs {', '.join(SUPPORTED_MODEL_TYPES)} "
        "(Mistral without a sliding window)"
    )


ModelConfig = Config | LlamaConfig  # what a Model is built from
