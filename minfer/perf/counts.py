"""Counting a whole step: the FLOPs and bytes of every op a forward pass runs (lessons 08 and 13).

Each op's formula lives beside the op (`layers.linear_cost`, `attention.attention_cost`,
`layers.rms_norm_cost`, `rope.rope_cost`, ...); this module only lists the ops of one step in
the order the model runs them, with their shapes, one list per model family (`FAMILIES`: GPT-2's
block, and the Llama family's with RMSNorm, RoPE, grouped-query attention and SwiGLU). The
counts depend on shapes and stored dtypes, never on timing or on the backend: a Numba kernel
moves the same compulsory bytes as the NumPy function it equals.

`Arch` describes a model for counting. It is made from a loaded model (`Arch.from_model`), from
any config minfer reads (`Arch.from_config`: GPT-2's `Config`, a `LlamaConfig`, or a
config.json dict), or from a named public shape (`ARCHS["llama-3-8b"]`, read from
`data/archs.toml`) for models too big to run here: the what-if projections
(`minfer.perf.whatif`) count those with the same formulas.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from minfer.attention import attention_cost
from minfer.block import residual_cost
from minfer.config import Config, LlamaConfig, config_from_hf
from minfer.cost import Cost
from minfer.embed import embed_cost, lm_head_cost
from minfer.errors import InvalidInputError
from minfer.kvcache import kv_bytes_per_token, kv_write_cost
from minfer.layers import gelu_cost, layer_norm_cost, linear_cost, rms_norm_cost, silu_cost
from minfer.rope import rope_cost

DTYPE_SIZES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "fp8": 1}  # bytes per number
ARCHS_FILE = Path(__file__).resolve().parent / "data" / "archs.toml"


@dataclass(frozen=True)
class Arch:
    """The shapes and storage sizes that the counts need. GPT-2 and Llama-family shapes both fit.

    The defaults are GPT-2's; a Llama-family shape is best made by `Arch.from_config`, which
    sets every flag from the config (biases, q/k norms, a tied head)."""

    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_kv_head: int  # heads of keys and values; fewer than n_head is grouped-query attention
    d_head: int  # dimensions per head (n_embd / n_head, unless the config sets it: Qwen3)
    d_ff: int  # hidden width of the MLP (GPT-2: 4 n_embd; Llama: config.json's intermediate_size)
    n_vocab: int
    n_ctx: int
    family: str = "gpt2"  # whose block: "gpt2" (LayerNorm, learned positions, GELU) or "llama" (RMSNorm, RoPE, SwiGLU)
    tied_embeddings: bool = True  # the LM head reuses the token embedding (GPT-2, small Llamas)
    qkv_bias: bool = True  # the q, k and v projections have biases (GPT-2, Qwen2; not Llama)
    o_bias: bool = True  # the attention's output projection has one (GPT-2)
    mlp_bias: bool = True  # the MLP's projections have them (GPT-2)
    qk_norm: bool = False  # an RMSNorm on each head's q and k before RoPE (Qwen3)
    weight_size: int = 4  # bytes per stored weight
    kv_size: int = 4  # bytes per cached key or value
    act_size: int = 4  # bytes per activation (minfer computes in float32)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise InvalidInputError(
                f"Arch family {self.family!r} is not one minfer counts; choose one of {', '.join(FAMILIES)}"
            )

    @property
    def gated_mlp(self) -> bool:
        """SwiGLU: gate and up projections, three matrices, not two (the Llama family)."""
        return self.family == "llama"

    @property
    def learned_positions(self) -> bool:
        """GPT-2 adds a row of wpe per token; the Llama family rotates q and k instead (RoPE)."""
        return self.family == "gpt2"

    @classmethod
    def from_config(
        cls, cfg: Config | LlamaConfig | Mapping[str, Any], name: str = "", weight_size: int = 4, kv_size: int = 4
    ) -> Arch:
        """The Arch of any config minfer reads: GPT-2's `Config`, a `LlamaConfig`, or the dict of
        a Hugging Face config.json (read by `minfer.config.config_from_hf`, which refuses what
        minfer cannot compute, with the reason).

            >>> c = LlamaConfig(n_layer=6, n_head=8, n_kv_head=2, n_embd=384, n_ctx=512, n_vocab=4096, n_hidden=1024)
            >>> Arch.from_config(c).kv_bytes_per_token()   # 2 x 6 layers x 2 KV heads x 48 x 4 bytes
            4608
        """
        if isinstance(cfg, Mapping):
            cfg = config_from_hf(dict(cfg))
        size = {"weight_size": weight_size, "kv_size": kv_size}
        if isinstance(cfg, LlamaConfig):
            return cls(
                name,
                cfg.n_layer,
                cfg.n_embd,
                cfg.n_head,
                cfg.n_kv_head,
                cfg.d_head,
                cfg.n_hidden,
                cfg.n_vocab,
                cfg.n_ctx,
                family="llama",
                tied_embeddings=cfg.tie_word_embeddings,
                qkv_bias=cfg.qkv_bias,
                o_bias=cfg.o_bias,
                mlp_bias=cfg.mlp_bias,
                qk_norm=cfg.qk_norm,
                **size,
            )
        c = cfg
        return cls(name, c.n_layer, c.n_embd, c.n_head, c.n_kv_head, c.d_head, 4 * c.n_embd, c.n_vocab, c.n_ctx, **size)

    @classmethod
    def from_model(cls, model, kv_size: int = 4) -> Arch:
        """The Arch of a loaded `Model` (either family), with the bytes per weight it really
        computes from (1 for int8; the per-column scales are not counted: 0.4% more bytes on
        GPT-2 small, 1.3% on the classroom model, where a 4-byte scale covers a column of only
        256 or 1,024 weights)."""
        return cls.from_config(model.config, model.name, DTYPE_SIZES[model.weight_dtype], kv_size)

    def with_dtype(self, weights: str, kv: str | None = None) -> Arch:
        """The same shape stored as another dtype ("bfloat16", "int8", ...); kv defaults to weights'."""
        for d in (weights, kv or weights):
            if d not in DTYPE_SIZES:
                raise InvalidInputError(f"unknown dtype {d!r}; choose one of {', '.join(DTYPE_SIZES)}")
        return replace(self, weight_size=DTYPE_SIZES[weights], kv_size=DTYPE_SIZES[kv or weights])

    def n_params(self) -> int:
        """Parameters, counted from the shapes (a tied LM head once)."""
        d, d_q, d_kv = self.n_embd, self.n_head * self.d_head, self.n_kv_head * self.d_head
        norm = FAMILIES[self.family].norm_vectors * d  # LayerNorm: gain and shift; RMSNorm: gain only
        linears = [
            (d, d_q, self.qkv_bias),
            (d, 2 * d_kv, self.qkv_bias),  # k and v
            (d_q, d, self.o_bias),
            (d, self.d_ff * (2 if self.gated_mlp else 1), self.mlp_bias),  # up (and gate)
            (self.d_ff, d, self.mlp_bias),
        ]  # (n_in, n_out, bias)
        per_layer = 2 * norm + sum(n_in * n_out + (n_out if bias else 0) for n_in, n_out, bias in linears)
        per_layer += 2 * self.d_head if self.qk_norm else 0  # Qwen3: one gain vector for q, one for k
        embed = (self.n_vocab + (self.n_ctx if self.learned_positions else 0)) * d
        head = 0 if self.tied_embeddings else self.n_vocab * d
        return embed + self.n_layer * per_layer + norm + head

    def weight_bytes(self) -> int:
        """Bytes of all parameters as stored."""
        return self.n_params() * self.weight_size

    def kv_bytes_per_token(self) -> int:
        """Cache bytes one position adds: 2 n_layer n_kv_head d_head kv_size (`minfer.kvcache.kv_bytes_per_token`)."""
        return kv_bytes_per_token(self.n_layer, self.n_kv_head, self.d_head, self.kv_size)


@dataclass(frozen=True)
class OpCost:
    """One op of a step: where it runs (layer, or None outside the blocks), its name and cost."""

    layer: int | None
    op: str  # the checkpoint's name where there is one: "attn.c_attn", "mlp.c_fc", "ln_1", ...
    cost: Cost


Ops = list[tuple[str, Cost]]  # (op name, its cost) in the order a block runs them


def gpt2_block_ops(a: Arch, n_new: int, n_k: int, n_batch: int, cached: bool) -> Ops:
    """GPT-2's block (`minfer.block`): LayerNorm, q, k and v in one matrix, attention, GELU MLP.
    Op names are the checkpoint's where there is one ("attn.c_attn", "mlp.c_fc", "ln_1", ...)."""
    rows, ws, acts = n_batch * n_new, a.weight_size, a.act_size
    n_qkv = (a.n_head + 2 * a.n_kv_head) * a.d_head  # q, k and v side by side
    ops = [
        ("ln_1", layer_norm_cost(rows, a.n_embd, ws, acts)),
        ("attn.c_attn", linear_cost(rows, a.n_embd, n_qkv, ws, acts, a.qkv_bias)),
    ]
    if cached:
        ops.append(("attn.kv_write", n_batch * kv_write_cost(n_new, a.n_kv_head, a.d_head, a.kv_size, acts)))
    return ops + [
        (
            "attn.attention",
            n_batch * attention_cost(n_new, n_k, a.n_head, a.d_head, a.n_kv_head, a.kv_size, acts, cached),
        ),
        ("attn.c_proj", linear_cost(rows, a.n_head * a.d_head, a.n_embd, ws, acts, a.o_bias)),
        ("ln_2", layer_norm_cost(rows, a.n_embd, ws, acts)),
        ("mlp.c_fc", linear_cost(rows, a.n_embd, a.d_ff, ws, acts, a.mlp_bias)),
        ("mlp.gelu", gelu_cost(rows * a.d_ff, acts)),
        ("mlp.c_proj", linear_cost(rows, a.d_ff, a.n_embd, ws, acts, a.mlp_bias)),
        ("residual", 2 * residual_cost(rows, a.n_embd, acts)),
    ]


def llama_attention_ops(a: Arch, n_new: int, n_k: int, n_batch: int, cached: bool) -> Ops:
    """`minfer.llama.grouped_attention`: q from n_head heads, k and v from only n_kv_head, (Qwen3's
    per-head norms), RoPE on q and k, the cache write, attention reading n_kv_head heads of
    keys and values, the output projection."""
    rows, ws, acts = n_batch * n_new, a.weight_size, a.act_size
    d_q, d_kv = a.n_head * a.d_head, a.n_kv_head * a.d_head
    ops = [
        ("self_attn.q_proj", linear_cost(rows, a.n_embd, d_q, ws, acts, a.qkv_bias)),
        ("self_attn.k_proj", linear_cost(rows, a.n_embd, d_kv, ws, acts, a.qkv_bias)),
        ("self_attn.v_proj", linear_cost(rows, a.n_embd, d_kv, ws, acts, a.qkv_bias)),
    ]
    if a.qk_norm:  # every head's vector of d_head numbers is a row of its own
        ops.append(("self_attn.q_norm", rms_norm_cost(rows * a.n_head, a.d_head, ws, acts)))
        ops.append(("self_attn.k_norm", rms_norm_cost(rows * a.n_kv_head, a.d_head, ws, acts)))
    ops.append(
        ("self_attn.rope", rope_cost(rows, a.n_head, a.d_head, acts) + rope_cost(rows, a.n_kv_head, a.d_head, acts))
    )
    if cached:
        ops.append(("self_attn.kv_write", n_batch * kv_write_cost(n_new, a.n_kv_head, a.d_head, a.kv_size, acts)))
    attention = attention_cost(n_new, n_k, a.n_head, a.d_head, a.n_kv_head, a.kv_size, acts, cached)
    return ops + [
        ("self_attn.attention", n_batch * attention),
        ("self_attn.o_proj", linear_cost(rows, d_q, a.n_embd, ws, acts, a.o_bias)),
    ]


def llama_block_ops(a: Arch, n_new: int, n_k: int, n_batch: int, cached: bool) -> Ops:
    """`minfer.llama.llama_block`: RMSNorm, grouped attention, RMSNorm, SwiGLU (gate and up
    projections, SiLU of the gate, their product, the down projection), two residual adds.
    Op names are the checkpoint's where there is one ("self_attn.q_proj", "mlp.gate_proj", ...)."""
    rows, ws, acts = n_batch * n_new, a.weight_size, a.act_size
    return [
        ("input_layernorm", rms_norm_cost(rows, a.n_embd, ws, acts)),
        *llama_attention_ops(a, n_new, n_k, n_batch, cached),
        ("post_attention_layernorm", rms_norm_cost(rows, a.n_embd, ws, acts)),
        ("mlp.gate_proj", linear_cost(rows, a.n_embd, a.d_ff, ws, acts, a.mlp_bias)),
        ("mlp.up_proj", linear_cost(rows, a.n_embd, a.d_ff, ws, acts, a.mlp_bias)),
        ("mlp.silu", silu_cost(rows * a.d_ff, acts)),
        ("mlp.gate*up", residual_cost(rows, a.d_ff, acts)),  # a product of two arrays costs what a sum does
        ("mlp.down_proj", linear_cost(rows, a.d_ff, a.n_embd, ws, acts, a.mlp_bias)),
        ("residual", 2 * residual_cost(rows, a.n_embd, acts)),
    ]


@dataclass(frozen=True)
class Family:
    """How a model family's step is counted: the ops of its block and what surrounds them."""

    block: Callable[[Arch, int, int, int, bool], Ops]  # (arch, n_new, n_k, n_batch, cached) -> ops
    norm: Callable[..., Cost]  # the norm's cost: layer_norm_cost or rms_norm_cost
    norm_vectors: int  # parameter vectors per norm: 2 (LayerNorm's gain and shift) or 1 (RMSNorm's gain)
    final_norm: str  # the checkpoint's name of the norm before the LM head
    attn: str  # the checkpoint's name of a block's attention, the prefix of its ops
    matrices: tuple[str, ...]  # the block's weight-matrix ops


FAMILIES: dict[str, Family] = {  # config.family -> how its step is counted
    "gpt2": Family(
        block=gpt2_block_ops,
        norm=layer_norm_cost,
        norm_vectors=2,
        final_norm="ln_f",
        attn="attn",
        matrices=("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
    ),
    "llama": Family(
        block=llama_block_ops,
        norm=rms_norm_cost,
        norm_vectors=1,
        final_norm="norm",
        attn="self_attn",
        matrices=(
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ),
    ),
}


def layer_costs(a: Arch, layer: int, n_new: int, n_k: int, n_batch: int = 1, cached: bool = True) -> list[OpCost]:
    """The ops of one block for n_batch sequences of n_new new tokens attending over n_k keys."""
    return [OpCost(layer, name, cost) for name, cost in FAMILIES[a.family].block(a, n_new, n_k, n_batch, cached)]


def step_costs(
    a: Arch, n_new: int, n_past: int = 0, n_batch: int = 1, lm_rows: int | None = None, cached: bool = True
) -> list[OpCost]:
    """Every op of one model call, in the order the model runs them.

    n_batch sequences each bring n_new tokens after n_past cached positions (a batched step
    attends over the longest sequence's keys for every row, as `minfer.batch` computes it).
    `lm_rows`: rows the LM head runs on; default one per sequence (prefill and decode need only
    the last position's logits). `cached=False` is `Model.forward`: no cache is read or written.
    """
    rows, ws, acts, family = n_batch * n_new, a.weight_size, a.act_size, FAMILIES[a.family]
    lm_rows = n_batch if lm_rows is None else lm_rows
    ops = [OpCost(None, "embed", embed_cost(rows, a.n_embd, ws, acts, a.learned_positions))]
    for layer in range(a.n_layer):
        ops += layer_costs(a, layer, n_new, n_past + n_new, n_batch, cached)
    ops.append(OpCost(None, family.final_norm, family.norm(rows, a.n_embd, ws, acts)))
    ops.append(OpCost(None, "lm_head", lm_head_cost(lm_rows, a.n_embd, a.n_vocab, ws, acts)))
    return ops


def total(ops: list[OpCost]) -> Cost:
    """The sum of a list of op costs."""
    return sum((o.cost for o in ops), Cost())


def prefill_cost(a: Arch, n_prompt: int, n_batch: int = 1) -> Cost:
    """One prefill pass over n_batch prompts of n_prompt tokens."""
    return total(step_costs(a, n_prompt, 0, n_batch))


def decode_cost(a: Arch, n_past: int, n_batch: int = 1) -> Cost:
    """One decode step: one new token per sequence, after n_past cached positions."""
    return total(step_costs(a, 1, n_past, n_batch))


def batch_lines(a: Arch, n_past: int) -> tuple[int, int, int]:
    """(f, y, y0) of a decode step, whose counts are straight lines in the batch B:
    FLOPs = B f and bytes = y0 + B y. f and y are what each sequence adds (its matmul rows, its
    KV cache); y0 is what every step moves whatever the batch (the weights)."""
    one, two = decode_cost(a, n_past, 1), decode_cost(a, n_past, 2)
    f, y = two.flops - one.flops, two.bytes - one.bytes
    return f, y, one.bytes - y


def intensity_limit(a: Arch, n_past: int) -> float:
    """FLOP per byte of a decode step as the batch grows without end: B f / (y0 + B y) -> f / y."""
    f, y, _ = batch_lines(a, n_past)
    return f / y


def ridge_batch(a: Arch, n_past: int, ridge: float) -> int | None:
    """The smallest batch whose decode step does at least `ridge` FLOP per byte (it turns
    compute-bound there); None if no batch does (the limit f / y is below the ridge).

        >>> ridge_batch(ARCHS["gpt2"], n_past=63, ridge=7.3)
    """
    f, y, y0 = batch_lines(a, n_past)
    if f <= ridge * y:
        return None
    b = max(1, math.ceil(ridge * y0 / (f - ridge * y)))  # B f / (y0 + B y) >= ridge, solved for B
    while decode_cost(a, n_past, b).flop_per_byte < ridge:  # the closed form may round one batch short
        b += 1
    while b > 1 and decode_cost(a, n_past, b - 1).flop_per_byte >= ridge:  # or one batch long
        b -= 1
    return b


def load_archs(path: Path = ARCHS_FILE) -> dict[str, Arch]:
    """The named shapes of `data/archs.toml`: each entry's config.json fields, read by `Arch.from_config`."""
    with open(path, "rb") as f:
        table = tomllib.load(f)
    return {name: Arch.from_config(entry["config"], name) for name, entry in table.items()}


ARCHS: dict[str, Arch] = load_archs()  # public shapes, for counting and what-if projections


def kv_cache_table(archs: Mapping[str, Arch], dtypes: tuple[str, ...] = ("float32", "bfloat16")) -> str:
    """A Markdown table of what a KV cache costs per token: each arch's layers, KV heads (of its
    query heads) and d_head, 2 n_layer n_kv_head d_head x bytes per number in each dtype, and
    the whole context window's cache in the last dtype. (docs/performance.md shows it.)"""
    last = dtypes[-1]
    head = ["model", "layers", "KV heads / query heads", "d_head"]
    head += [f"bytes per token, {d}" for d in dtypes] + ["n_ctx", f"cache at n_ctx, {last}"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for label, a in archs.items():
        per_token = [a.with_dtype(d).kv_bytes_per_token() for d in dtypes]
        whole = per_token[-1] * a.n_ctx
        size = f"{whole / 2**30:,.2f} GiB" if whole >= 2**30 else f"{whole / 2**20:,.1f} MiB"
        cells = [label, str(a.n_layer), f"{a.n_kv_head} / {a.n_head}", str(a.d_head)]
        cells += [f"{b:,}" for b in per_token] + [f"{a.n_ctx:,}", size]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
