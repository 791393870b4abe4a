"""The FLOP and byte counts against formulas derived by hand for GPT-2 (lesson 08)."""

from __future__ import annotations

import pytest

import minfer
from minfer.cost import Cost
from minfer.errors import InvalidInputError
from minfer.perf.counts import ARCHS, Arch, decode_cost, prefill_cost, step_costs, total

GPT2 = ARCHS["gpt2"]
MATMULS = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "lm_head"}


def matmul_flops(ops) -> int:
    return sum(o.cost.flops for o in ops if o.op in MATMULS)


def test_published_parameter_counts():
    # GPT-2 small: 124,439,808 (HF's GPT2LMHeadModel, tied head once); Llama 3 8B: 8,030,261,248
    assert GPT2.n_params() == 124_439_808
    assert ARCHS["gpt2-xl"].n_params() == 1_557_611_200
    assert ARCHS["llama-3-8b"].n_params() == 8_030_261_248


def test_arch_of_a_loaded_model_counts_its_parameters(model_and_ref):
    model, _ = model_and_ref
    assert Arch.from_model(model).n_params() == model.n_params()


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
