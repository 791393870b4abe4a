"""Typed containers for GPT-2's parameters. Field names follow the Hugging Face checkpoint keys,
so `h[3].attn.c_attn.weight` is the tensor stored as `h.3.attn.c_attn.weight`.

HF GPT-2 stores its linear layers as `Conv1D`, whose weight is [n_in, n_out]: exactly the layout
`x @ weight` wants, so no transpose is needed anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minfer.config import Config


@dataclass(frozen=True)
class LayerNormWeights:
    weight: np.ndarray  # [n_embd] the gain (HF: weight, the paper's gamma)
    bias: np.ndarray  # [n_embd] the shift (the paper's beta)


@dataclass(frozen=True)
class LinearWeights:
    weight: np.ndarray  # [n_in, n_out]
    bias: np.ndarray  # [n_out]


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
