"""What-if projections: hand-derived roofline bounds on a made-up chip, the closed-form decode sum
against the step-by-step one, chip counts, dtypes and their fallbacks, bad inputs, the table and
the CLI entry point."""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

import minfer.perf.calibrate
from minfer.errors import InvalidInputError, MinferError
from minfer.perf.counts import ARCHS, Arch, decode_cost, prefill_cost
from minfer.perf.hardware import CATALOG, THIS_MACHINE, Hardware, get_hardware
from minfer.perf.whatif import (
    TITLE,
    Projection,
    add_whatif_arguments,
    decode_sum,
    decode_sum_stepwise,
    default_hardware,
    peak_dtype,
    project,
    project_many,
    projected_arch,
    run_whatif,
    whatif_table,
)

TINY_GPT2 = Path(__file__).resolve().parent / "fixtures" / "tiny-gpt2"
TINY_QWEN3 = Path(__file__).resolve().parent / "fixtures" / "tiny-qwen3"
# A made-up chip with round numbers: 100 TFLOPS (bf16), 1000 GB/s, 80 GB, 500 W, $2/h.
# The ridge point is 1e14 / 1e12 = 100 FLOP/byte. No float16 peak: it borrows bfloat16's.
CHIP = Hardware(
    "test-chip",
    "Test chip",
    "gpu",
    {"bfloat16": 100.0, "int8": 200.0},
    bandwidth_gbs=1000.0,
    memory_gb=80.0,
    power_w=500.0,
    price_per_hour=2.0,
    sources=("made up for the tests",),
    notes="Price: made up.",
)
PEAK, BW = 1e14, 1e12  # FLOP/s, bytes/s
# GPT-2 small stored in bfloat16: weights, KV cache and activations 2 bytes per number
GPT2_BF16 = replace(ARCHS["gpt2"], weight_size=2, kv_size=2, act_size=2)
# A tiny grouped-query model (8 query heads share 2 kv heads): its attention does ~5 FLOPs per
# cache byte, more than the weights' ~1 at batch 1, so on a low-ridge chip decode turns from
# memory- to compute-bound as the cache grows.
TINY_GQA = Arch(
    "tiny-gqa",
    n_layer=2,
    n_embd=64,
    n_head=8,
    n_kv_head=2,
    d_head=8,
    d_ff=128,
    n_vocab=256,
    n_ctx=4096,
    family="llama",
    tied_embeddings=False,
    qkv_bias=False,
    o_bias=False,
    mlp_bias=False,
    weight_size=2,
    kv_size=2,
    act_size=2,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minfer whatif")
    add_whatif_arguments(p)
    return p


# --- the bounds, by hand ------------------------------------------------------------------------------


def test_projected_arch_is_gpt2_in_bfloat16():
    assert projected_arch(ARCHS["gpt2"], "bfloat16") == GPT2_BF16
    assert projected_arch(ARCHS["gpt2"], "float32").act_size == 4  # float32 keeps float32 activations


def test_prefill_is_the_larger_of_the_two_bounds():
    p = project("gpt2", CHIP, prompt_tokens=512, output_tokens=256)
    c = prefill_cost(GPT2_BF16, 512, 1)
    assert (p.prefill_flops, p.prefill_bytes) == (c.flops, c.bytes)
    assert p.prefill_compute_s == c.flops / PEAK and p.prefill_memory_s == c.bytes / BW
    assert p.prefill_s == max(c.flops / PEAK, c.bytes / BW)
    assert p.prefill_limit == ("compute" if c.flops / PEAK > c.bytes / BW else "memory")
    assert p.ttft_s == p.prefill_s  # the first token's logits come out of prefill


def test_decode_at_batch_1_is_memory_bound_and_reads_the_weights_once_per_token():
    p = project("gpt2", CHIP, prompt_tokens=512, output_tokens=256)
    assert p.decode_limit == "memory" and p.decode_steps == 255
    # each step reads every weight and the cache: on average 512 + 128 positions of it
    kv = GPT2_BF16.kv_bytes_per_token() * (512 + 128)
    assert p.tpot_s == pytest.approx((GPT2_BF16.weight_bytes() + kv) / BW, rel=0.03)
    assert p.weight_bytes == GPT2_BF16.n_params() * 2


def test_rates_and_dollars_follow_from_the_times():
    p = project("gpt2", CHIP, prompt_tokens=100, output_tokens=51, batch=4)
    assert p.tpot_s == p.decode_s / 50
    assert p.tokens_per_s == 4 / p.tpot_s
    assert p.tokens_per_s_per_watt == p.tokens_per_s / 500
    assert p.usd_per_million_tokens == pytest.approx(2.0 * (p.prefill_s + p.decode_s) / 3600 / (4 * 51) * 1e6)
    assert json.loads(json.dumps(p.to_dict()))["hardware"] == "test-chip"


def test_batching_multiplies_throughput_while_memory_bound_and_cuts_the_price():
    # a short context keeps the cache small next to 16 GB of weights: batch 64 still reads
    # the weights once per step, so the step costs little more and makes 64 tokens
    one, many = (project("llama-3-8b", CHIP, prompt_tokens=32, output_tokens=32, batch=b) for b in (1, 64))
    assert one.decode_limit == many.decode_limit == "memory"  # 64 FLOP/byte < the ridge's 100
    ratio = many.tokens_per_s / one.tokens_per_s
    assert 0.9 * 64 < ratio < 64
    assert ratio == pytest.approx(64 * one.decode_bytes / many.decode_bytes)  # memory-bound: bytes decide
    assert many.usd_per_million_tokens < one.usd_per_million_tokens / 20
    assert many.tokens_per_s_per_watt > 50 * one.tokens_per_s_per_watt


def test_a_long_cache_eats_the_gain_of_batching():
    # GPT-2 has no grouped-query attention: at 768 positions a sequence's cache is 28 MB, so
    # 64 of them weigh 7x the weights and batch 64 gains far less than 64x
    one, many = (project("gpt2", CHIP, batch=b) for b in (1, 64))
    assert many.tokens_per_s / one.tokens_per_s < 16


def test_a_single_output_token_has_no_decode_step():
    p = project("gpt2", CHIP, output_tokens=1)
    assert (p.decode_steps, p.decode_s, p.decode_limit, p.tpot_s, p.tokens_per_s) == (0, 0.0, None, None, None)
    assert p.tokens_per_s_per_watt is None
    assert p.usd_per_million_tokens == pytest.approx(2.0 * p.prefill_s / 3600 * 1e6)
    assert "-" in whatif_table([p])


# --- the closed-form decode sum ---------------------------------------------------------------------


def _crossings(arch: Arch, prompt: int, n_steps: int, batch: int, peak: float, bw: float) -> int:
    """+1 if decode goes memory -> compute-bound over the steps, -1 compute -> memory, 0 neither."""
    gaps = [(c.flops / peak > c.bytes / bw) for c in (decode_cost(arch, prompt + i, batch) for i in (0, n_steps - 1))]
    return 0 if gaps[0] == gaps[1] else (1 if gaps[1] else -1)


CASES = [  # (arch, prompt, n_steps, batch, peak, bandwidth, expected crossing)
    (GPT2_BF16, 512, 255, 1, PEAK, BW, 0),  # memory-bound throughout
    (GPT2_BF16, 1, 600, 256, PEAK, BW, -1),  # compute-bound, until the cache grows
    (TINY_GQA, 1, 2000, 1, 3e12, 1e12, 1),  # memory-bound, until attention's FLOPs take over
    (TINY_GQA, 7, 1, 3, 3e12, 1e12, 0),  # one step
    (GPT2_BF16, 1, 2, 64, 1e15, 1e12, 0),  # two steps, compute-bound
]


@pytest.mark.parametrize("arch,prompt,n_steps,batch,peak,bw,crossing", CASES)
def test_closed_form_decode_sum_equals_the_step_by_step_sum(arch, prompt, n_steps, batch, peak, bw, crossing):
    assert _crossings(arch, prompt, n_steps, batch, peak, bw) == crossing  # the case tests what it says
    fast, fast_s = decode_sum(arch, prompt, n_steps, batch, peak, bw)
    slow, slow_s = decode_sum_stepwise(arch, prompt, n_steps, batch, peak, bw)
    assert fast == slow  # integer counts, exactly
    assert fast_s == pytest.approx(slow_s, rel=1e-12)


def test_the_decode_sum_is_fast_on_a_big_model():
    start = time.perf_counter()
    p = project("llama-3-70b", "h100-sxm", prompt_tokens=2048, output_tokens=4096, batch=32)
    assert time.perf_counter() - start < 1.0
    assert p.decode_steps == 4095


# --- chips and dtypes ---------------------------------------------------------------------------------


def test_llama_3_70b_in_bfloat16_needs_two_h100s():
    d, d_kv, d_ff, n_vocab, n_layer = 8192, 8 * 128, 28672, 128256, 80
    per_layer = d * d + 2 * d * d_kv + d * d + 3 * d * d_ff + 2 * d  # q, k, v, o, SwiGLU, 2 RMSNorms
    n_params = 2 * n_vocab * d + n_layer * per_layer + d  # embeddings, LM head, final norm
    weights = 2 * n_params  # ~141 GB
    kv = 2 * n_layer * d_kv * 2 * (512 + 256)  # keys and values of one sequence, bfloat16
    p = project("llama-3-70b", "h100-sxm", prompt_tokens=512, output_tokens=256)
    assert p.weight_bytes == weights and 141e9 < weights < 142e9
    assert p.memory_bytes == weights + kv
    assert p.chips == math.ceil((weights + kv) / 80e9) == 2
    assert p.peak_flops == 2 * 989.5e12 and p.bandwidth == 2 * 3350e9  # ideal: two chips add up
    assert p.power_w == 1400 and p.price_per_hour == 2 * 2.99
    assert any("2 chips" in n for n in p.notes)
    assert project("llama-3-70b", "h100-sxm", prompt_tokens=512, output_tokens=256, batch=128).chips == 3
    assert project("llama-3-70b", "mi300x").chips == 1  # 192 GB


def test_int8_halves_the_weight_bytes_and_uses_the_int8_peak():
    bf16, int8 = (project("llama-3-8b", CHIP, dtype=d) for d in ("bfloat16", "int8"))
    assert 2 * int8.weight_bytes == bf16.weight_bytes
    assert int8.peak_dtype == "int8" and int8.peak_flops == 2e14
    assert int8.tpot_s < 0.6 * bf16.tpot_s  # memory-bound: fewer bytes, faster tokens


def test_kv_dtype_is_separate_from_the_weights():
    p = project("llama-3-8b", CHIP, dtype="int8", kv_dtype="bfloat16")
    q = project("llama-3-8b", CHIP, dtype="int8")
    assert p.kv_dtype == "bfloat16" and p.weight_bytes == q.weight_bytes
    assert p.memory_bytes - p.weight_bytes == 2 * (q.memory_bytes - q.weight_bytes)


def test_a_missing_16_bit_float_falls_back_to_its_twin():
    assert peak_dtype(CHIP, "float16") == "bfloat16"
    p = project("gpt2", CHIP, dtype="float16")
    assert p.peak_dtype == "bfloat16" and p.peak_flops == PEAK
    assert any("no published float16 peak" in n for n in p.notes)
    assert peak_dtype(get_hardware("groq-lpu"), "bfloat16") == "float16"


def test_a_dtype_the_chip_lacks_raises_or_is_skipped():
    with pytest.raises(InvalidInputError, match="fp8"):
        project("gpt2", CHIP, dtype="fp8")
    with pytest.raises(InvalidInputError, match="bfloat16"):
        project("gpt2", "tpu-v4", dtype="fp8")  # the TPU v4 publishes bfloat16 and int8 only
    ps = project_many("gpt2", ["h100-sxm", "ryzen-7840u", "tpu-v4"], dtype="fp8")
    assert [p.hardware for p in ps] == ["h100-sxm", "ryzen-7840u"]  # a CPU widens fp8 to float32
    assert "bfloat16" in ps.skipped["tpu-v4"]
    assert "Skipped" in whatif_table(ps) and "tpu-v4" in whatif_table(ps)


def test_a_cpu_reads_16_bit_weights_and_computes_at_its_float32_peak():
    cpu = get_hardware("ryzen-7840u")
    p, q = project("gpt2", cpu, dtype="bfloat16"), project("gpt2", cpu, dtype="float32")
    assert p.peak_dtype == "float32" and p.peak_flops == q.peak_flops
    assert p.weight_bytes * 2 == q.weight_bytes
    assert any("computes in float32" in n for n in p.notes)


# --- inputs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"prompt_tokens": 0},
        {"output_tokens": 0},
        {"batch": -1},
        {"batch": 1.5},
        {"prompt_tokens": True},
        {"output_tokens": "8"},
    ],
)
def test_non_positive_or_non_integer_counts_are_rejected(kw):
    with pytest.raises(InvalidInputError, match=next(iter(kw))):
        project("gpt2", CHIP, **kw)


@pytest.mark.parametrize("args", [("gpt-5", CHIP), (3, CHIP), ("gpt2", "h900"), ("gpt2", CHIP, "int4")])
def test_unknown_names_are_rejected(args):
    with pytest.raises(InvalidInputError):
        project(*args)
    with pytest.raises(InvalidInputError):  # a typo'd dtype is an error, not "every chip skipped"
        project_many("gpt2", ["h100-sxm"], dtype="bf16")


def test_a_context_longer_than_the_arch_is_a_note_not_an_error():
    p = project("gpt2", CHIP, prompt_tokens=1000, output_tokens=100)
    assert any("exceeds" in n and "1024" in n for n in p.notes)


@pytest.mark.parametrize("path", [TINY_GPT2, TINY_QWEN3])
def test_a_loaded_model_its_config_and_an_arch_project_alike(path):
    from minfer.checkpoints.loading import load_model

    model = load_model(path)
    p = project(model, CHIP, prompt_tokens=8, output_tokens=4)
    q = project(Arch.from_model(model), CHIP, prompt_tokens=8, output_tokens=4)
    c = project(model.config, CHIP, prompt_tokens=8, output_tokens=4)
    assert p == q == replace(c, arch=model.name)  # a bare config has no name


def test_this_machine_needs_cached_ceilings(monkeypatch):
    monkeypatch.setattr(minfer.perf.calibrate, "load_ceilings", lambda: None)
    with pytest.raises(InvalidInputError, match="minfer calibrate"):
        project("gpt2", THIS_MACHINE, dtype="float32")
    assert THIS_MACHINE not in default_hardware()
    ceilings = SimpleNamespace(peak_gflops=150.0, bandwidth_gbs=50.0)
    monkeypatch.setattr(minfer.perf.calibrate, "load_ceilings", lambda: ceilings)
    p = project("gpt2", THIS_MACHINE, dtype="float32", batch=1)
    assert p.hardware == THIS_MACHINE and p.bandwidth == 50e9 and p.decode_limit == "memory"
    assert default_hardware() == [*CATALOG, THIS_MACHINE]


# --- the table and the CLI ------------------------------------------------------------------------------


def test_table_is_titled_as_bounds_and_states_its_assumptions():
    ps = project_many("llama-3-70b", ["h100-sxm", "mi300x"])
    table = whatif_table(ps)
    assert table.startswith(TITLE) and "bounds" in table
    for text in (
        "h100-sxm",
        "mi300x",
        "TTFT ms",
        "TPOT ms",
        "$ per M tok",
        "tok/s per W",
        "Assumptions",
        "communication",
        "TDP",
        "mid-2026",
    ):
        assert text in table


def test_run_whatif_prints_a_table(capsys, monkeypatch):
    monkeypatch.setattr(minfer.perf.calibrate, "load_ceilings", lambda: None)  # no this-machine row
    run_whatif(parser().parse_args(["--arch", "llama-3-8b", "--batch", "8"]))
    out = capsys.readouterr().out
    assert "bounds" in out and all(name in out for name in ("h100-sxm", "tpu-v4", "groq-lpu"))
    assert "batch 8" in out


def test_run_whatif_json_is_json(capsys):
    run_whatif(parser().parse_args(["--hardware", "h100-sxm, l4", "--json", "--output", "16"]))
    data = json.loads(capsys.readouterr().out)
    assert data["title"] == TITLE and data["assumptions"]
    assert [p["hardware"] for p in data["projections"]] == ["h100-sxm", "l4"]
    assert {p["output_tokens"] for p in data["projections"]} == {16}


def test_run_whatif_with_a_model_directory(capsys):
    run_whatif(parser().parse_args(["--model", str(TINY_GPT2), "--hardware", "h100-sxm"]))
    assert str(TINY_GPT2) in capsys.readouterr().out


@pytest.mark.parametrize("where", ["directory", "config.json", "config.json alone"])
def test_run_whatif_with_a_llama_family_config(capsys, tmp_path, where):
    """A Qwen3 checkpoint's directory, its config.json, or a directory holding only config.json:
    the config is read (head_dim, q/k norms, GQA), never the weights."""
    model = {"directory": TINY_QWEN3, "config.json": TINY_QWEN3 / "config.json"}.get(where, tmp_path)
    (tmp_path / "config.json").write_text((TINY_QWEN3 / "config.json").read_text())
    run_whatif(parser().parse_args(["--model", str(model), "--hardware", "h100-sxm", "--json", "--output", "8"]))
    (p,) = json.loads(capsys.readouterr().out)["projections"]
    arch = projected_arch(Arch.from_config(json.loads((TINY_QWEN3 / "config.json").read_text())), "bfloat16")
    assert p["arch"] == str(model) and p["weight_bytes"] == arch.weight_bytes() == 143_952 * 2
    assert p["prefill_flops"] == prefill_cost(arch, 512).flops
    assert p["memory_bytes"] == arch.weight_bytes() + (512 + 8) * 2 * 3 * 2 * 24 * 2  # GQA: 2 KV heads of 24


def test_a_config_the_counts_cannot_read_is_one_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mistral", "sliding_window": 4096}))
    with pytest.raises(MinferError, match="sliding-window"):
        run_whatif(parser().parse_args(["--model", str(tmp_path), "--hardware", "h100-sxm"]))


@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-0.5b", "qwen3-0.6b", "llama-3.2-1b"])
def test_the_small_llama_shapes_project_and_decode_memory_bound(name):
    p = project(name, "h100-sxm", prompt_tokens=512, output_tokens=64)
    a = projected_arch(ARCHS[name], "bfloat16")
    assert p.chips == 1 and p.decode_limit == "memory"
    assert p.memory_bytes == a.weight_bytes() + (512 + 64) * a.kv_bytes_per_token()
    assert project(a, "h100-sxm", prompt_tokens=512, output_tokens=64) == p


def test_cli_arguments():
    args = parser().parse_args([])
    assert (args.arch, args.model, args.hardware, args.dtype, args.prompt, args.output, args.batch, args.json) == (
        None,
        None,
        None,
        "bfloat16",
        512,
        256,
        1,
        False,
    )  # no --arch: gpt2
    with pytest.raises(SystemExit):
        parser().parse_args(["--arch", "gpt2", "--model", "x"])  # one or the other
    for argv in (["--hardware", " , "], ["--batch", "0"], ["--hardware", "h900"]):
        with pytest.raises(MinferError):
            run_whatif(parser().parse_args(argv))


def test_projection_fields_are_documented_in_to_dict():
    p = project("gpt2", CHIP)
    assert isinstance(p, Projection)
    assert set(p.to_dict()) >= {
        "hardware",
        "chips",
        "ttft_s",
        "tpot_s",
        "tokens_per_s",
        "tokens_per_s_per_watt",
        "usd_per_million_tokens",
        "notes",
    }
