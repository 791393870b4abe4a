"""Counting a whole step: the FLOPs and bytes of every op a forward pass runs (lesson 08).

Each op's formula lives beside the op (`layers.linear_cost`, `attention.attention_cost`, ...);
this module only lists the ops of one step in the order the model runs them, with their shapes.
The counts depend on shapes and stored dtypes, never on timing or on the backend: a Numba
kernel moves the same compulsory bytes as the NumPy function it equals.

`Arch` describes a model for counting. It is made from a loaded model (`Arch.from_model`), or
from a named shape (`ARCHS["llama-3-8b"]`) for models minfer cannot run yet: the what-if
projections (`minfer.perf.whatif`) count those with the same formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from minfer.attention import attention_cost
from minfer.block import residual_cost
from minfer.config import Config
from minfer.cost import Cost
from minfer.embed import embed_cost, lm_head_cost
from minfer.errors import InvalidInputError
from minfer.kvcache import kv_write_cost
from minfer.layers import gelu_cost, layer_norm_cost, linear_cost

DTYPE_SIZES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "fp8": 1}  # bytes per number


@dataclass(frozen=True)
class Arch:
    """The shapes and storage sizes that the counts need. GPT-2 and Llama-family shapes both fit."""

    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_kv_head: int  # heads of keys and values; fewer than n_head is grouped-query attention
    d_head: int
    d_ff: int  # hidden width of the MLP (GPT-2: 4 n_embd)
    n_vocab: int
    n_ctx: int
    gated_mlp: bool = False  # Llama's SwiGLU: gate and up projections, three matrices, not two
    tied_embeddings: bool = True  # GPT-2's LM head reuses wte; Llama has its own matrix
    learned_positions: bool = True  # GPT-2 adds rows of wpe; Llama rotates q and k (RoPE, not counted)
    bias: bool = True  # GPT-2's linear layers and norms have biases; Llama's have none
    weight_size: int = 4  # bytes per stored weight
    kv_size: int = 4  # bytes per cached key or value
    act_size: int = 4  # bytes per activation (minfer computes in float32)

    @classmethod
    def from_config(cls, cfg: Config, name: str = "", weight_size: int = 4, kv_size: int = 4) -> Arch:
        """The Arch of a GPT-2 `Config`."""
        return cls(
            name,
            cfg.n_layer,
            cfg.n_embd,
            cfg.n_head,
            cfg.n_head,
            cfg.d_head,
            4 * cfg.n_embd,
            cfg.n_vocab,
            cfg.n_ctx,
            weight_size=weight_size,
            kv_size=kv_size,
        )

    @classmethod
    def from_model(cls, model, kv_size: int = 4) -> Arch:
        """The Arch of a loaded `Model`, with the bytes per weight it really computes from
        (1 for int8; the per-column scales are not counted: 0.4% more bytes on GPT-2 small, 1.3%
        on the classroom model, where a 4-byte scale covers a column of only 256 or 1,024 weights)."""
        return cls.from_config(model.config, model.name, DTYPE_SIZES[model.weight_dtype], kv_size)

    def with_dtype(self, weights: str, kv: str | None = None) -> Arch:
        """The same shape stored as another dtype ("bfloat16", "int8", ...); kv defaults to weights'."""
        for d in (weights, kv or weights):
            if d not in DTYPE_SIZES:
                raise InvalidInputError(f"unknown dtype {d!r}; choose one of {', '.join(DTYPE_SIZES)}")
        return replace(self, weight_size=DTYPE_SIZES[weights], kv_size=DTYPE_SIZES[kv or weights])

    def n_params(self) -> int:
        """Parameters, counted from the shapes (a tied LM head once)."""
        d, bias = self.n_embd, self.bias
        norm = 2 * d if bias else d  # layer norm: scale and shift; RMSNorm: scale only
        linears = [
            (d, (self.n_head + 2 * self.n_kv_head) * self.d_head),
            (self.n_head * self.d_head, d),
            (d, self.d_ff * (2 if self.gated_mlp else 1)),
            (self.d_ff, d),
        ]  # (n_in, n_out)
        per_layer = 2 * norm + sum(n_in * n_out + (n_out if bias else 0) for n_in, n_out in linears)
        embed = (self.n_vocab + (self.n_ctx if self.learned_positions else 0)) * d
        head = 0 if self.tied_embeddings else self.n_vocab * d
        return embed + self.n_layer * per_layer + norm + head

    def weight_bytes(self) -> int:
        """Bytes of all parameters as stored."""
        return self.n_params() * self.weight_size

    def kv_bytes_per_token(self) -> int:
        """Cache bytes one position adds: a key and a value per layer and kv head."""
        return 2 * self.n_layer * self.n_kv_head * self.d_head * self.kv_size


@dataclass(frozen=True)
class OpCost:
    """One op of a step: where it runs (layer, or None outside the blocks), its name and cost."""

    layer: int | None
    op: str  # the checkpoint's name where there is one: "attn.c_attn", "mlp.c_fc", "ln_1", ...
    cost: Cost


def layer_costs(a: Arch, layer: int, n_new: int, n_k: int, n_batch: int = 1, cached: bool = True) -> list[OpCost]:
    """The ops of one block for n_batch sequences of n_new new tokens attending over n_k keys."""
    rows, ws, acts = n_batch * n_new, a.weight_size, a.act_size
    n_q_out = (a.n_head + 2 * a.n_kv_head) * a.d_head  # q, k and v side by side
    n_fc = a.d_ff * (2 if a.gated_mlp else 1)
    ops = [
        ("ln_1", layer_norm_cost(rows, a.n_embd, ws, acts)),
        ("attn.c_attn", linear_cost(rows, a.n_embd, n_q_out, ws, acts, a.bias)),
    ]
    if cached:
        ops.append(("attn.kv_write", n_batch * kv_write_cost(n_new, a.n_kv_head, a.d_head, a.kv_size, acts)))
    ops += [
        (
            "attn.attention",
            n_batch * attention_cost(n_new, n_k, a.n_head, a.d_head, a.n_kv_head, a.kv_size, acts, cached),
        ),
        ("attn.c_proj", linear_cost(rows, a.n_head * a.d_head, a.n_embd, ws, acts, a.bias)),
        ("ln_2", layer_norm_cost(rows, a.n_embd, ws, acts)),
        ("mlp.c_fc", linear_cost(rows, a.n_embd, n_fc, ws, acts, a.bias)),
        ("mlp.swiglu" if a.gated_mlp else "mlp.gelu", gelu_cost(rows * a.d_ff, acts)),
        ("mlp.c_proj", linear_cost(rows, a.d_ff, a.n_embd, ws, acts, a.bias)),
        ("residual", 2 * residual_cost(rows, a.n_embd, acts)),
    ]
    return [OpCost(layer, name, cost) for name, cost in ops]


def step_costs(
    a: Arch, n_new: int, n_past: int = 0, n_batch: int = 1, lm_rows: int | None = None, cached: bool = True
) -> list[OpCost]:
    """Every op of one model call, in the order the model runs them.

    n_batch sequences each bring n_new tokens after n_past cached positions (a batched step
    attends over the longest sequence's keys for every row, as `minfer.batch` computes it).
    `lm_rows`: rows the LM head runs on; default one per sequence (prefill and decode need only
    the last position's logits). `cached=False` is `Model.forward`: no cache is read or written.
    """
    rows = n_batch * n_new
    lm_rows = n_batch if lm_rows is None else lm_rows
    ops = [OpCost(None, "embed", embed_cost(rows, a.n_embd, a.weight_size, a.act_size, a.learned_positions))]
    for layer in range(a.n_layer):
        ops += layer_costs(a, layer, n_new, n_past + n_new, n_batch, cached)
    ops.append(OpCost(None, "ln_f", layer_norm_cost(rows, a.n_embd, a.weight_size, a.act_size)))
    ops.append(OpCost(None, "lm_head", lm_head_cost(lm_rows, a.n_embd, a.n_vocab, a.weight_size, a.act_size)))
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


def _gpt2(name: str, n_layer: int, n_embd: int, n_head: int) -> Arch:
    return Arch.from_config(Config(n_layer, n_head, n_embd, 1024, 50257), name)


def _llama(name: str, n_layer: int, n_embd: int, n_head: int, n_kv_head: int, d_ff: int) -> Arch:
    return Arch(
        name,
        n_layer,
        n_embd,
        n_head,
        n_kv_head,
        n_embd // n_head,
        d_ff,
        128256,
        8192,
        gated_mlp=True,
        tied_embeddings=False,
        learned_positions=False,
        bias=False,
    )


ARCHS: dict[str, Arch] = {
    a.name: a
    for a in [  # public shapes, for counting and what-if projections
        _gpt2("gpt2", 12, 768, 12),
        _gpt2("gpt2-medium", 24, 1024, 16),
        _gpt2("gpt2-large", 36, 1280, 20),
        _gpt2("gpt2-xl", 48, 1600, 25),
        _llama("llama-3-8b", 32, 4096, 32, 8, 14336),
        _llama("llama-3-70b", 80, 8192, 64, 8, 28672),
    ]
}
