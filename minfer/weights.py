"""Typed containers for GPT-2's parameters. Field names follow the Hugging Face checkpoint keys,
so `h[3].attn.c_attn.weight` is the tensor stored as `h.3.attn.c_attn.weight`.

HF GPT-2 stores its linear layers as `Conv1D`, whose weight is [n_in, n_out]: exactly the layout
`x @ weight` wants, so no transpose is needed anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minfer.config import Config, LlamaConfig


@dataclass(frozen=True)
class LayerNormWeights:
    weight: np.ndarray  # [n_embd] the gain (HF: weight, the paper's gamma)
    bias: np.ndarray  # [n_embd] the shift (the paper's beta)


@dataclass(frozen=True)
class LinearWeights:
    weight: np.ndarray  # [n_in, n_out]
    bias: np.ndarray | None  # [n_out]; None for a layer without one (most of Llama's)


@dataclass(frozen=True)
class AttentionWeights:
    c_attn: LinearWeights  # [n_embd, 3 * n_embd]: q, k and v projections side by side
    c_proj: LinearWeights  # [n_embd, n_embd]: mixes the heads' outputs back together


@dataclass(frozen=True)
class MLPWeights:
    c_fc: LinearWeights  # [n_embd, 4 * n_embd]: expand
    c_proj: LinearWeights  # [4 * n_embd, n_embd]: contract


@dataclass(frozen=True)
class BlockWeights:
    ln_1: LayerNormWeights  # before attention
    attn: AttentionWeights
    ln_2: LayerNormWeights  # before the MLP
    mlp: MLPWeights


@dataclass(frozen=True)
class GPT2Weights:
    wte: np.ndarray  # [n_vocab, n_embd] token embedding; also the LM head (tied), used as wte.T
    wpe: np.ndarray  # [n_ctx, n_embd] learned position embedding
    h: tuple[BlockWeights, ...]  # n_layer blocks
    ln_f: LayerNormWeights  # final layer norm before the LM head

    @property
    def lm_head(self) -> np.ndarray:
        """The LM head's matrix [n_vocab, n_embd]: the token embedding, tied."""
        return self.wte

    def nbytes(self) -> int:
        """Bytes of all parameters as held in memory (each counted once, the tied head too)."""
        return sum(a.nbytes for a in self.arrays().values())

    def arrays(self) -> dict[str, np.ndarray]:
        """Every parameter by its checkpoint name, e.g. 'h.0.attn.c_attn.weight'."""
        out = {"wte.weight": self.wte, "wpe.weight": self.wpe}
        out.update(_flatten("ln_f", self.ln_f))
        for i, block in enumerate(self.h):
            out.update(_flatten(f"h.{i}", block))
        return out


def _flatten(prefix: str, obj) -> dict[str, np.ndarray]:
    if obj is None:  # an absent bias or norm
        return {}
    if isinstance(obj, np.ndarray):
        return {prefix: obj}
    out = {}
    for name in obj.__dataclass_fields__:
        out.update(_flatten(f"{prefix}.{name}", getattr(obj, name)))
    return out


def expected_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every tensor a GPT-2 checkpoint must hold, by name, with its shape."""
    e, v = cfg.n_embd, cfg.n_vocab
    shapes = {"wte.weight": (v, e), "wpe.weight": (cfg.n_ctx, e), "ln_f.weight": (e,), "ln_f.bias": (e,)}
    for i in range(cfg.n_layer):
        p = f"h.{i}"
        shapes |= {
            f"{p}.ln_1.weight": (e,),
            f"{p}.ln_1.bias": (e,),
            f"{p}.attn.c_attn.weight": (e, 3 * e),
            f"{p}.attn.c_attn.bias": (3 * e,),
            f"{p}.attn.c_proj.weight": (e, e),
            f"{p}.attn.c_proj.bias": (e,),
            f"{p}.ln_2.weight": (e,),
            f"{p}.ln_2.bias": (e,),
            f"{p}.mlp.c_fc.weight": (e, 4 * e),
            f"{p}.mlp.c_fc.bias": (4 * e,),
            f"{p}.mlp.c_proj.weight": (4 * e, e),
            f"{p}.mlp.c_proj.bias": (e,),
        }
    return shapes


def build_weights(cfg: Config, get: Callable[[str], np.ndarray]) -> GPT2Weights:
    """Assemble GPT2Weights, asking `get(name)` for each tensor named in `expected_shapes`."""

    def ln(p):
        return LayerNormWeights(get(f"{p}.weight"), get(f"{p}.bias"))

    def linear(p):
        return LinearWeights(get(f"{p}.weight"), get(f"{p}.bias"))

    def block(p):
        return BlockWeights(
            ln_1=ln(f"{p}.ln_1"),
            attn=AttentionWeights(linear(f"{p}.attn.c_attn"), linear(f"{p}.attn.c_proj")),
            ln_2=ln(f"{p}.ln_2"),
            mlp=MLPWeights(linear(f"{p}.mlp.c_fc"), linear(f"{p}.mlp.c_proj")),
        )

    return GPT2Weights(
        wte=get("wte.weight"),
        wpe=get("wpe.weight"),
        h=tuple(block(f"h.{i}") for i in range(cfg.n_layer)),
        ln_f=ln("ln_f"),
    )


def random_weights(cfg: Config, seed: int = 0, std: float = 0.02) -> GPT2Weights:
    """GPT-2-style random initialisation (normal(0, std) matrices, unit gains, zero biases)."""
    rng = np.random.default_rng(seed)

    def make(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) == 2:
            return rng.normal(0.0, std, size=shape).astype(np.float32)  # shape
        fill = 1.0 if name.endswith(".weight") else 0.0  # 1-D: layer-norm gains, or biases
        return np.full(shape, fill, dtype=np.float32)  # shape

    shapes = expected_shapes(cfg)
    return build_weights(cfg, lambda name: make(name, shapes[name]))


# The Llama family. Hugging Face stores a linear layer (torch's nn.Linear) as weight [n_out, n_in];
# LinearWeights holds its transpose, a view [n_in, n_out] (no copy), so `linear(x, weight, bias)`
# is the same call as GPT-2's.


@dataclass(frozen=True)
class LlamaAttentionWeights:
    q_proj: LinearWeights  # [n_embd, n_head * d_head]
    k_proj: LinearWeights  # [n_embd, n_kv_head * d_head]: fewer heads than q under GQA
    v_proj: LinearWeights  # [n_embd, n_kv_head * d_head]
    o_proj: LinearWeights  # [n_head * d_head, n_embd]
    q_norm: np.ndarray | None  # [d_head] Qwen3's per-head RMSNorm gain on q, before RoPE
    k_norm: np.ndarray | None  # [d_head] the same on k


@dataclass(frozen=True)
class LlamaMLPWeights:
    gate_proj: LinearWeights  # [n_embd, n_hidden]: passed through SiLU, it gates...
    up_proj: LinearWeights  # [n_embd, n_hidden]: ...this one, elementwise
    down_proj: LinearWeights  # [n_hidden, n_embd]: contract back


@dataclass(frozen=True)
class LlamaBlockWeights:
    input_layernorm: np.ndarray  # [n_embd] RMSNorm gain before attention
    self_attn: LlamaAttentionWeights
    post_attention_layernorm: np.ndarray  # [n_embd] RMSNorm gain before the MLP
    mlp: LlamaMLPWeights


@dataclass(frozen=True)
class LlamaWeights:
    embed_tokens: np.ndarray  # [n_vocab, n_embd]; no position table: RoPE rotates q and k instead
    layers: tuple[LlamaBlockWeights, ...]  # n_layer blocks
    norm: np.ndarray  # [n_embd] final RMSNorm gain
    lm_head: np.ndarray  # [n_vocab, n_embd]; the same array as embed_tokens when tied

    def nbytes(self) -> int:
        """Bytes of all parameters as held in memory (each counted once, a tied head too)."""
        return sum(a.nbytes for a in self.arrays().values())

    def arrays(self) -> dict[str, np.ndarray]:
        """Every parameter by its checkpoint name and in its checkpoint layout, e.g.
        'model.layers.0.self_attn.q_proj.weight' [n_out, n_in]; a tied head is listed once."""
        out = {"model.embed_tokens.weight": self.embed_tokens, "model.norm.weight": self.norm}
        for i, block in enumerate(self.layers):
            for name, a in _flatten(f"model.layers.{i}", block).items():
                out[name] = a.T if a.ndim == 2 else a  # back to [n_out, n_in]
        if self.lm_head is not self.embed_tokens:
            out["lm_head.weight"] = self.lm_head
        return out


def llama_expected_shapes(cfg: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor a Llama-family checkpoint must hold, by name, with its (checkpoint) shape."""
    e, d, n_q, n_kv, hid = cfg.n_embd, cfg.d_head, cfg.n_head * cfg.d_head, cfg.n_kv_head * cfg.d_head, cfg.n_hidden
    shapes = {"model.embed_tokens.weight": (cfg.n_vocab, e), "model.norm.weight": (e,)}
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.n_vocab, e)
    linears = {"self_attn.q_proj": (n_q, e), "self_attn.k_proj": (n_kv, e), "self_attn.v_proj": (n_kv, e)}
    linears |= {"self_attn.o_proj": (e, n_q), "mlp.gate_proj": (hid, e), "mlp.up_proj": (hid, e)}
    linears |= {"mlp.down_proj": (e, hid)}
    for i in range(cfg.n_layer):
        p = f"model.layers.{i}"
        shapes |= {f"{p}.input_layernorm.weight": (e,), f"{p}.post_attention_layernorm.weight": (e,)}
        shapes |= {f"{p}.{name}.weight": shape for name, shape in linears.items()}
        shapes |= {f"{p}.{name}.bias": (shape[0],) for name, shape in linears.items() if has_bias(cfg, name)}
        if cfg.qk_norm:
            shapes |= {f"{p}.self_attn.q_norm.weight": (d,), f"{p}.self_attn.k_norm.weight": (d,)}
    return shapes


def has_bias(cfg: LlamaConfig, linear: str) -> bool:
    """Whether the linear layer 'self_attn.q_proj', 'mlp.up_proj', ... of this config has a bias."""
    if linear.startswith("mlp."):
        return cfg.mlp_bias
    return cfg.o_bias if linear == "self_attn.o_proj" else cfg.qkv_bias


def build_llama_weights(cfg: LlamaConfig, get: Callable[[str], np.ndarray]) -> LlamaWeights:
    """Assemble LlamaWeights, asking `get(name)` for each tensor named in `llama_expected_shapes`."""

    def linear(p: str) -> LinearWeights:
        name = p.split(".", 3)[-1]  # 'self_attn.q_proj'
        return LinearWeights(get(f"{p}.weight").T, get(f"{p}.bias") if has_bias(cfg, name) else None)

    def norm(p: str) -> np.ndarray | None:
        return get(f"{p}.weight") if cfg.qk_norm else None

    def block(p: str) -> LlamaBlockWeights:
        a, m = f"{p}.self_attn", f"{p}.mlp"
        return LlamaBlockWeights(
            input_layernorm=get(f"{p}.input_layernorm.weight"),
            self_attn=LlamaAttentionWeights(
                linear(f"{a}.q_proj"),
                linear(f"{a}.k_proj"),
                linear(f"{a}.v_proj"),
                linear(f"{a}.o_proj"),
                norm(f"{a}.q_norm"),
                norm(f"{a}.k_norm"),
            ),
            post_attention_layernorm=get(f"{p}.post_attention_layernorm.weight"),
            mlp=LlamaMLPWeights(linear(f"{m}.gate_proj"), linear(f"{m}.up_proj"), linear(f"{m}.down_proj")),
        )

    embed_tokens = get("model.embed_tokens.weight")
    return LlamaWeights(
        embed_tokens=embed_tokens,
        layers=tuple(block(f"model.layers.{i}") for i in range(cfg.n_layer)),
        norm=get("model.norm.weight"),
        lm_head=embed_tokens if cfg.tie_word_embeddings else get("lm_head.weight"),
    )


def random_llama_weights(cfg: LlamaConfig, seed: int = 0, std: float = 0.02) -> LlamaWeights:
    """Random initialisation: normal(0, std) matrices, unit norm gains, zero biases."""
    rng = np.random.default_rng(seed)
    shapes = llama_expected_shapes(cfg)

    def make(name: str) -> np.ndarray:
        shape = shapes[name]
        if len(shape) == 2:
            return rng.normal(0.0, std, size=shape).astype(np.float32)  # shape
        return np.full(shape, 1.0 if "norm" in name else 0.0, dtype=np.float32)  # shape

    return build_llama_weights(cfg, make)
