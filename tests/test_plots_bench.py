"""The benchmark figure: bars at the measured tok/s, ticks at the bound worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from minfer.errors import InvalidInputError
from minfer.perf.calibrate import Ceilings
from minfer.plots.bench import benchmark_bars, bound_tokens_per_s

CEILINGS = {"peak_gflops": 100.0, "bandwidth_gbs": 20.0}
SUMMARY = {  # prefill: 2 GFLOP per token; decode: 0.5 GB (a) and 0.25 GB (b) per token
    "a": {"prefill_512": {"tok_s": 25.0, "gflops": 50.0}, "decode_16": {"tok_s": 30.0, "bytes_per_token": 5e8}},
    "b": {"prefill_512": {"tok_s": 40.0, "gflops": 80.0}, "decode_16": {"tok_s": 50.0, "bytes_per_token": 2.5e8}},
    "no-prefill": {"decode_16": {"tok_s": 9.0, "bytes_per_token": 5e8}},
}


def artists(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def test_bars_are_the_measured_speeds_and_ticks_the_roofline_bounds():
    fig = benchmark_bars(SUMMARY, CEILINGS)
    bars = [bar.get_width() for bar in artists(fig, "bars:decode_16")]  # one Rectangle per system
    assert bars == [30.0, 50.0]  # "no-prefill" lacks a run, so it is left out
    # bound = bandwidth / bytes per token: 20e9 / 5e8 = 40, 20e9 / 2.5e8 = 80 tok/s
    np.testing.assert_allclose(artists(fig, "bounds:decode_16")[0].get_offsets()[:, 0], [40.0, 80.0])
    labels = [t.get_text() for t in fig.axes[1].texts]
    assert labels == ["30 (75%)", "50 (62%)"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    assert fig.axes[1].get_title() == "decode, context 16"


def test_prefill_bars_labels_and_bounds():
    fig = benchmark_bars(SUMMARY, CEILINGS)
    assert [bar.get_width() for bar in artists(fig, "bars:prefill_512")] == [25.0, 40.0]
    # bound = peak / FLOPs per token; FLOPs per token = 50e9 / 25 = 80e9 / 40 = 2e9 -> 100e9 / 2e9 = 50 tok/s
    np.testing.assert_allclose(artists(fig, "bounds:prefill_512")[0].get_offsets()[:, 0], [50.0, 50.0])
    assert [t.get_text() for t in fig.axes[0].texts] == ["25 (50%)", "40 (80%)"]
    assert fig.axes[0].get_title() == "prefill, 512 tokens"
    # one colour per phase, the one every minfer figure gives it
    assert artists(fig, "bars:prefill_512")[0].get_facecolor() == to_rgba("tab:orange")
    assert artists(fig, "bars:decode_16")[0].get_facecolor() == to_rgba("tab:blue")


def test_one_panel_per_run_in_the_order_given():
    fig = benchmark_bars(SUMMARY, CEILINGS, runs=("decode_16",), title="mine")
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "decode, context 16"
    assert [bar.get_width() for bar in artists(fig, "bars:decode_16")] == [30.0, 50.0, 9.0]  # every system has it
    assert fig.get_suptitle() == "mine"
    fig = benchmark_bars(SUMMARY, CEILINGS, runs=["decode_16", "prefill_512"])
    assert [ax.get_title() for ax in fig.axes] == ["decode, context 16", "prefill, 512 tokens"]
    assert benchmark_bars(SUMMARY, CEILINGS, title="").get_suptitle() == ""  # "" means no title


@pytest.mark.parametrize(
    "ceilings",
    [
        SimpleNamespace(**CEILINGS),
        Ceilings(
            peak_gflops=100.0,
            bandwidth_gbs=20.0,
            matmul_n=8,
            stream_bytes=4,
            threads=1,
            cpu="x",
            measured_at="2026-11-27T00:00:00+00:00",
            env={},
        ),
        {"peak_gflops": np.float64(100.0), "bandwidth_gbs": np.int64(20)},
    ],
)
def test_ceilings_may_be_an_object_a_dict_or_numpy_numbers(ceilings):
    fig = benchmark_bars(SUMMARY, ceilings)
    np.testing.assert_allclose(artists(fig, "bounds:decode_16")[0].get_offsets()[:, 0], [40.0, 80.0])


def test_numpy_numbers_in_the_summary_are_numbers():
    summary = {"a": {"decode_16": {"tok_s": np.float32(30.0), "bytes_per_token": np.int64(500_000_000)}}}
    fig = benchmark_bars(summary, CEILINGS, runs=("decode_16",))
    np.testing.assert_allclose(artists(fig, "bounds:decode_16")[0].get_offsets()[:, 0], [40.0])


def test_runs_and_title_are_keyword_only():
    with pytest.raises(TypeError):
        benchmark_bars(SUMMARY, CEILINGS, ("decode_16",))


@pytest.mark.parametrize(
    "summary, ceilings, match",
    [
        ({}, CEILINGS, "summary"),
        (SUMMARY, {"peak_gflops": 100.0}, "calibrate"),
        (SUMMARY, {"peak_gflops": 0, "bandwidth_gbs": 20.0}, "calibrate"),
        (SUMMARY, {"peak_gflops": "fast", "bandwidth_gbs": 20.0}, "calibrate"),
        (SUMMARY, None, "calibrate"),
        ({"a": {"decode_512": {}}}, CEILINGS, "no system .* has all of"),
        ({"a": "decode_16"}, CEILINGS, r"summary\['a'\] must be a dict"),
        (
            {"a": {"prefill_512": {"tok_s": 25.0}, "decode_16": SUMMARY["a"]["decode_16"]}},
            CEILINGS,
            r"summary\['a'\]\['prefill_512'\] has no 'gflops'",
        ),
        (
            {"a": {"prefill_512": {"tok_s": 0.0, "gflops": 1.0}, "decode_16": SUMMARY["a"]["decode_16"]}},
            CEILINGS,
            r"summary\['a'\]\['prefill_512'\]\['tok_s'\]=0.0 must be a positive",
        ),
        (
            {"a": {"prefill_512": {"tok_s": 1.0, "gflops": 0}, "decode_16": SUMMARY["a"]["decode_16"]}},
            CEILINGS,
            r"\['gflops'\]=0 must be a positive",
        ),
        (
            {"a": {"prefill_512": SUMMARY["a"]["prefill_512"], "decode_16": {"tok_s": 1.0, "bytes_per_token": "big"}}},
            CEILINGS,
            r"\['bytes_per_token'\]='big' must be a positive",
        ),
    ],
)
def test_bad_input_is_named(summary, ceilings, match):
    with pytest.raises(InvalidInputError, match=match):
        benchmark_bars(summary, ceilings)


@pytest.mark.parametrize(
    "runs, match",
    [
        ("decode_16", "runs must be a list"),
        ((), "runs must be a list"),
        (("decode",), r"run 'decode' must be named prefill_<n> or decode_<n>"),
        (("decode_x",), "run 'decode_x'"),
        (("train_16",), "run 'train_16'"),
        ((16,), "run 16"),
    ],
)
def test_bad_run_names_are_refused(runs, match):
    with pytest.raises(InvalidInputError, match=match):
        benchmark_bars(SUMMARY, CEILINGS, runs=runs)


def test_the_bound_of_one_run_by_hand_and_refused_when_it_cannot_be_worked_out():
    assert bound_tokens_per_s("decode_16", {"tok_s": 30.0, "bytes_per_token": 5e8}, 100.0, 20.0) == pytest.approx(40.0)
    assert bound_tokens_per_s("prefill_512", {"tok_s": 25.0, "gflops": 50.0}, 100.0, 20.0) == pytest.approx(50.0)
    with pytest.raises(InvalidInputError, match="tok_s"):
        bound_tokens_per_s("prefill_512", {"tok_s": 0, "gflops": 50.0}, 100.0, 20.0)
