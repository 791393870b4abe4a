"""The FLOP and byte counts against formulas derived by hand, for GPT-2 (lesson 08) and the Llama
family (lesson 13), and the KV-cache table of docs/performance.md against the code that makes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES, LLAMA_MODELS

import minfer
from minfer.config import Config, LlamaConfig
from minfer.cost import Cost
from minfer.errors import InvalidInputError, ModelLoadError
from minfer.perf.counts import (
    ARCHS,
    FAMILIES,
    Arch,
    decode_cost,
    kv_cache_table,
    layer_costs,
    prefill_cost,
    step_costs,
    total,
)

GPT2 = ARCHS["gpt2"]
MATMULS = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "lm_head"}


def matmul_flops(ops) -> int:
    return sum(o.cost.flops for o in ops if o.op in MATMULS)


def test_published_parameter_counts():
    # GPT-2 small: 124,439,808 (HF's GPT2LMHeadModel, tied head once); Llama 3 8B: 8,030,261,248
    assert GPT2.n_params() == 124_439_808
    assert ARCHS["gpt2-xl"].n_params() == 1_557_611_200
    assert ARCHS["llama-3-8b"].n_params() == 8_030_261_248
    # the Llama family (tied heads counted once): Meta's and the Hub's figures for the others
    assert ARCHS["llama-3-70b"].n_params() == 70_553_706_496
    assert ARCHS["llama-3.2-1b"].n_params() == 1_235_814_400
    assert ARCHS["smollm2-135m"].n_params() == 134_515_008
    # Qwen's model cards: 0.49B (0.36B without the embedding) and 0.6B (0.44B without it)
    qwen2, qwen3 = ARCHS["qwen2.5-0.5b"], ARCHS["qwen3-0.6b"]
    assert qwen2.n_params() == 494_032_768 and round((qwen2.n_params() - 151936 * 896) / 1e9, 2) == 0.36
    assert qwen3.n_params() == 596_049_920 and round((qwen3.n_params() - 151936 * 1024) / 1e9, 2) == 0.44


def test_the_named_llama_shapes_are_the_published_ones():
    """(n_layer, n_embd, n_head, n_kv_head, d_head, d_ff, n_vocab, n_ctx), tied, q/k/v biases, q/k norms:
    from each model's config.json on the Hugging Face Hub (data/archs.toml names the source)."""
    want = {
        "smollm2-135m": ((30, 576, 9, 3, 64, 1536, 49152, 8192), True, False, False),
        "qwen2.5-0.5b": ((24, 896, 14, 2, 64, 4864, 151936, 32768), True, True, False),
        "qwen3-0.6b": ((28, 1024, 16, 8, 128, 3072, 151936, 40960), True, False, True),
        "llama-3.2-1b": ((16, 2048, 32, 8, 64, 8192, 128256, 131072), True, False, False),
        "llama-3-8b": ((32, 4096, 32, 8, 128, 14336, 128256, 8192), False, False, False),
        "llama-3-70b": ((80, 8192, 64, 8, 128, 28672, 128256, 8192), False, False, False),
    }
    for name, (shape, tied, qkv_bias, qk_norm) in want.items():
        a = ARCHS[name]
        got = (a.n_layer, a.n_embd, a.n_head, a.n_kv_head, a.d_head, a.d_ff, a.n_vocab, a.n_ctx)
        assert (got, a.tied_embeddings, a.qkv_bias, a.qk_norm) == (shape, tied, qkv_bias, qk_norm), name
        assert (a.family, a.o_bias, a.mlp_bias, a.gated_mlp, a.learned_positions) == (
            "llama",
            False,
            False,
            True,
            False,
        )


def test_arch_of_a_loaded_model_counts_its_parameters(model_and_ref):
    model, _ = model_and_ref  # every fixture, GPT-2 and the Llama family (biases, q/k norms, tied or not)
    assert Arch.from_model(model).n_params() == model.n_params()


@pytest.mark.parametrize("name", ["tiny-gpt2", *LLAMA_MODELS])
def test_a_config_its_config_json_and_its_loaded_model_give_one_arch(name):
    hf = json.loads((FIXTURES / name / "config.json").read_text())
    model = minfer.load_model(FIXTURES / name)
    assert Arch.from_config(hf, model.name) == Arch.from_config(model.config, model.name) == Arch.from_model(model)


def test_a_config_minfer_cannot_run_is_refused_by_name():
    with pytest.raises(ModelLoadError, match="model_type='mamba'"):
        Arch.from_config({"model_type": "mamba"})
    with pytest.raises(InvalidInputError, match="family 'mamba'"):
        Arch("x", 1, 8, 1, 1, 8, 32, 10, 16, family="mamba")


@pytest.mark.parametrize("n_past", [0, 15, 1000])
def test_decode_matmul_flops_are_exact(n_past):
    # per token: 2 (3d^2 + d^2 + 4d^2 + 4d^2) = 24 d^2 per layer, 2 d V for the LM head,
    # and one add per output of each biased layer: 3d + d + 4d + d = 9d per layer
    L, d, V = 12, 768, 50257
    want = L * (24 * d * d + 9 * d) + 2 * d * V
    assert matmul_flops(step_costs(GPT2, 1, n_past)) == want


def test_prefill_flops_by_hand():
    # n tokens: n x the per-token matmuls (the LM head only on the last row), and attention
    # over the full n x n rectangle: 4 d_head + 7 FLOPs per head, query and key
    L, d, V, h, dh, n = 12, 768, 50257, 12, 64, 100
    ops = step_costs(GPT2, n, 0)
    assert matmul_flops(ops) == n * L * (24 * d * d + 9 * d) + 2 * d * V
    attention = sum(o.cost.flops for o in ops if o.op == "attn.attention")
    assert attention == L * h * n * n * (4 * dh + 7)


@pytest.mark.parametrize("n_past", [15, 511, 1023])
def test_decode_bytes_are_weights_plus_kv_cache(n_past):
    # a decode step reads every weight once (wpe: one row) and every cached key and value
    weights = GPT2.weight_bytes()
    kv = 2 * 12 * (n_past + 1) * 768 * 4
    got = decode_cost(GPT2, n_past).bytes
    assert got == pytest.approx(weights + kv, rel=0.02)
    assert decode_cost(GPT2, n_past).kv_read == kv


def test_batch_reads_weights_once_and_multiplies_flops():
    one, eight = decode_cost(GPT2, 64), decode_cost(GPT2, 64, n_batch=8)
    assert eight.weight_bytes == one.weight_bytes - GPT2.n_embd * 4 * 2 + 8 * GPT2.n_embd * 4 * 2  # embed rows
    assert eight.flops == 8 * one.flops
    assert eight.kv_read == 8 * one.kv_read
    assert eight.flop_per_byte > 6 * one.flop_per_byte


def test_prefill_is_compute_bound_and_decode_memory_bound():
    # the whole point: FLOP/byte of prefill grows with the prompt, decode's stays near 0.5
    assert decode_cost(GPT2, 511).flop_per_byte < 1
    assert prefill_cost(GPT2, 512).flop_per_byte > 50


def test_stored_dtype_sets_the_bytes():
    half = GPT2.with_dtype("bfloat16")
    assert decode_cost(half, 0).weight_bytes * 2 == decode_cost(GPT2, 0).weight_bytes
    assert decode_cost(half, 0).flops == decode_cost(GPT2, 0).flops
    assert GPT2.with_dtype("int8").kv_bytes_per_token() == 2 * 12 * 768
    with pytest.raises(InvalidInputError, match="unknown dtype 'int3'"):
        GPT2.with_dtype("int3")


def test_grouped_query_attention_shrinks_the_cache():
    llama = ARCHS["llama-3-8b"]  # 8 kv heads of 128 for 32 query heads
    assert llama.kv_bytes_per_token() == 2 * 32 * 8 * 128 * 4
    assert decode_cost(llama, 99).kv_read == 100 * llama.kv_bytes_per_token()


def test_forward_reads_no_cache_and_runs_the_head_on_every_row():
    ops = step_costs(GPT2, 10, 0, lm_rows=10, cached=False)
    assert total(ops).kv_read == total(ops).kv_write == 0
    head = next(o.cost for o in ops if o.op == "lm_head")
    assert head.flops == 2 * 10 * 768 * 50257


def test_cost_arithmetic():
    a = Cost(flops=2, weight_bytes=3, kv_read=4, kv_write=5, act_read=6, act_write=7)
    assert (a + a) == 2 * a == a * 2
    assert a.bytes_read == 13 and a.bytes_written == 12 and a.bytes == 25
    assert a.to_dict()["bytes"] == 25
    assert Cost().flop_per_byte == float("inf")


def test_every_op_in_order():
    names = [o.op for o in step_costs(GPT2, 1, 0) if o.layer in (None, 0)]
    assert names == [
        "embed",
        "ln_1",
        "attn.c_attn",
        "attn.kv_write",
        "attn.attention",
        "attn.c_proj",
        "ln_2",
        "mlp.c_fc",
        "mlp.gelu",
        "mlp.c_proj",
        "residual",
        "ln_f",
        "lm_head",
    ]
    assert minfer.model.BACKENDS  # the counts take no backend: they are shapes only


def test_decode_counts_are_straight_lines_in_the_batch():
    from minfer.perf.counts import batch_lines, intensity_limit

    a = ARCHS["gpt2"]
    f, y, y0 = batch_lines(a, 63)
    for b in (1, 3, 64):
        c = decode_cost(a, 63, b)
        assert (c.flops, c.bytes) == (b * f, y0 + b * y)
    assert intensity_limit(a, 63) == f / y
    assert decode_cost(a, 63, 10**6).flop_per_byte == pytest.approx(f / y, rel=1e-3)


# --- the Llama family, by hand ----------------------------------------------------------------------
# A made-up Qwen3-like shape with every feature at once: 8 query heads on 2 KV heads, d_head 24
# (not n_embd / n_head = 8), q/k norms, an untied head; weights 2 bytes, cache 1, activations 4,
# so a factor in the wrong place shows.
D, H, G, DH, F, V, L = 64, 8, 2, 24, 96, 100, 2
W, K, A = 2, 1, 4
LLAMA = Arch.from_config(
    LlamaConfig(n_layer=L, n_head=H, n_kv_head=G, n_embd=D, n_ctx=128, n_vocab=V, n_hidden=F, d_head=DH, qk_norm=True),
    weight_size=W,
    kv_size=K,
)


def cost(flops=0, weights=0, kv_read=0, kv_write=0, read=0, write=0) -> Cost:
    """A Cost in numbers of things: weights in weights, the cache in cached numbers, activations in numbers."""
    return Cost(flops, weights * W, kv_read * K, kv_write * K, read * A, write * A)


@pytest.mark.parametrize("n_past", [0, 9])
def test_one_llama_decode_layer_op_by_op(n_past):
    n_k = n_past + 1
    want = {
        "input_layernorm": cost(4 * D + 3, D, read=D, write=D),  # square, sum, divide, scale; 3 per row
        "self_attn.q_proj": cost(2 * D * H * DH, D * H * DH, read=D, write=H * DH),
        "self_attn.k_proj": cost(2 * D * G * DH, D * G * DH, read=D, write=G * DH),  # only the KV heads
        "self_attn.v_proj": cost(2 * D * G * DH, D * G * DH, read=D, write=G * DH),
        "self_attn.q_norm": cost(4 * H * DH + 3 * H, DH, read=H * DH, write=H * DH),  # a row per head
        "self_attn.k_norm": cost(4 * G * DH + 3 * G, DH, read=G * DH, write=G * DH),
        "self_attn.rope": cost(3 * (H + G) * DH, read=(H + G) * DH, write=(H + G) * DH),  # q and k rotated
        "self_attn.kv_write": cost(kv_write=2 * G * DH, read=2 * G * DH),
        # every query head scores every key; the keys and values read are the KV heads' only
        "self_attn.attention": cost(H * n_k * (4 * DH + 7), kv_read=2 * G * n_k * DH, read=H * DH, write=H * DH),
        "self_attn.o_proj": cost(2 * H * DH * D, H * DH * D, read=H * DH, write=D),
        "post_attention_layernorm": cost(4 * D + 3, D, read=D, write=D),
        "mlp.gate_proj": cost(2 * D * F, D * F, read=D, write=F),
        "mlp.up_proj": cost(2 * D * F, D * F, read=D, write=F),
        "mlp.silu": cost(5 * F, read=F, write=F),
        "mlp.gate*up": cost(F, read=2 * F, write=F),
        "mlp.down_proj": cost(2 * F * D, F * D, read=F, write=D),
        "residual": cost(2 * D, read=4 * D, write=2 * D),
    }
    got = {o.op: o.cost for o in layer_costs(LLAMA, 0, 1, n_k)}
    assert list(got) == list(want)  # and in the order the block runs them
    assert got == want


def test_a_llama_step_around_its_blocks():
    ops = step_costs(LLAMA, 1, 9)
    top = {o.op: o.cost for o in ops if o.layer is None}
    assert top == {
        "embed": cost(0, D, read=2, write=D),  # one row of the table; the id is 8 bytes = 2 x 4
        "norm": cost(4 * D + 3, D, read=D, write=D),
        "lm_head": cost(2 * D * V, V * D, read=D, write=V),  # its own matrix: untied
    }
    # untied: a decode step reads every parameter once, except the embedding table (one row of it)
    assert total(ops).weight_bytes == (LLAMA.n_params() - V * D + D) * W
    params = V * D + L * (2 * D + D * (H + 2 * G) * DH + H * DH * D + 3 * D * F + 2 * DH) + D + V * D
    assert LLAMA.n_params() == params


def test_llama_prefill_attention_and_matrices_by_hand():
    n = 20
    ops = step_costs(LLAMA, n, 0)
    attention = [o.cost for o in ops if o.op == "self_attn.attention"]
    assert sum(c.flops for c in attention) == L * H * n * n * (4 * DH + 7)  # the full n x n rectangle
    assert sum(c.kv_read for c in attention) == L * 2 * G * n * DH * K  # n keys and values of G heads
    matrices = sum(o.cost.flops for o in ops if o.op in FAMILIES["llama"].matrices)
    assert matrices == n * L * 2 * (D * (H + 2 * G) * DH + H * DH * D + 3 * D * F)  # no biases, 3 MLP matrices
    assert next(o.cost.flops for o in ops if o.op == "lm_head") == 2 * D * V  # the last row only


def test_qwen2_biases_and_a_tied_head():
    qwen2 = Arch.from_config(json.loads((FIXTURES / "tiny-qwen2" / "config.json").read_text()))
    assert (qwen2.qkv_bias, qwen2.o_bias, qwen2.mlp_bias, qwen2.qk_norm, qwen2.tied_embeddings) == (
        True,
        False,
        False,
        False,
        False,
    )
    ops = {o.op: o.cost for o in layer_costs(qwen2, 0, 1, 1)}
    d, n_kv = qwen2.n_embd, qwen2.n_kv_head * qwen2.d_head
    assert ops["self_attn.k_proj"].flops == 2 * d * n_kv + n_kv  # one bias add per output
    assert ops["self_attn.o_proj"].flops == 2 * d * d  # no bias
    assert "self_attn.q_norm" not in ops
    mqa = Arch.from_config(json.loads((FIXTURES / "tiny-llama-mqa" / "config.json").read_text()))
    assert mqa.tied_embeddings  # the head reads the embedding again: every parameter, plus one row
    assert decode_cost(mqa, 5).weight_bytes == (mqa.n_params() + mqa.n_embd) * 4


def test_kv_bytes_per_token_of_real_shapes_by_hand():
    # 2 (a key and a value) x n_layer x n_kv_head x d_head x bytes per number
    bf16 = {name: ARCHS[name].with_dtype("bfloat16").kv_bytes_per_token() for name in ARCHS}
    assert bf16["smollm2-135m"] == 2 * 30 * 3 * 64 * 2 == 23_040
    assert bf16["qwen3-0.6b"] == 2 * 28 * 8 * 128 * 2 == 114_688  # head_dim 128, not 1024 / 16 = 64
    assert bf16["llama-3-8b"] == 2 * 32 * 8 * 128 * 2 == 131_072
    assert bf16["llama-3-70b"] == 2 * 80 * 8 * 128 * 2
    assert ARCHS["llama-3-8b"].kv_bytes_per_token() == 2 * 32 * 8 * 128 * 4  # float32, the default
    # the same from the config.json as the Hub serves it
    qwen3 = {
        "model_type": "qwen3",
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "max_position_embeddings": 40960,
        "vocab_size": 151936,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": True,
    }
    assert Arch.from_config(qwen3, "qwen3-0.6b", weight_size=4, kv_size=2) == ARCHS["qwen3-0.6b"].with_dtype(
        "float32", "bfloat16"
    )


def test_one_kv_formula_for_the_model_and_the_counts():
    # the model sizes its default cache with the same function the counts use
    from minfer.model import kv_bytes_per_position

    for name in LLAMA_MODELS:
        model = minfer.load_model(FIXTURES / name)
        c = model.config
        assert kv_bytes_per_position(c) == Arch.from_model(model).kv_bytes_per_token()
        assert kv_bytes_per_position(c) == 2 * c.n_layer * c.n_kv_head * c.d_head * 4
        assert model.new_cache(10).nbytes == 10 * kv_bytes_per_position(c)


def test_llama_ops_in_order():
    names = [o.op for o in step_costs(ARCHS["llama-3-8b"], 1, 0) if o.layer in (None, 0)]
    assert names == [
        "embed",
        "input_layernorm",
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.rope",
        "self_attn.kv_write",
        "self_attn.attention",
        "self_attn.o_proj",
        "post_attention_layernorm",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.silu",
        "mlp.gate*up",
        "mlp.down_proj",
        "residual",
        "norm",
        "lm_head",
    ]


# --- the page's KV-cache table ------------------------------------------------------------------------
PAGE = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
REAL = ["smollm2-135m", "qwen2.5-0.5b", "qwen3-0.6b", "llama-3.2-1b", "llama-3-8b", "llama-3-70b"]


def test_classroom_llama_is_the_recipe_s_shape():
    recipe = LlamaConfig(
        n_layer=6, n_head=8, n_kv_head=2, n_embd=384, n_ctx=512, n_vocab=4096, n_hidden=1024, tie_word_embeddings=True
    )
    assert ARCHS["classroom-llama"] == Arch.from_config(recipe, "classroom-llama")


def test_the_kv_cache_table_on_the_performance_page_is_the_computed_one(default_model):
    assert isinstance(default_model.config, Config)  # the GPT-2 classroom model
    archs = {"classroom (GPT-2)": Arch.from_model(default_model), "classroom-llama": ARCHS["classroom-llama"]}
    archs |= {name: ARCHS[name] for name in REAL}
    table = kv_cache_table(archs)
    assert table in PAGE.read_text(), f"docs/performance.md's KV-cache table is stale; the computed one is:\n{table}"
