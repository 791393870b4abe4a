"""The benchmark figure: bars at the measured tok/s, ticks at the bound worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from plot_helpers import artists

from minfer.perf.calibrate import Ceilings
from minfer.plots.bench import benchmark_bars, bound_tokens_per_s

RESULTS = Path(__file__).parent.parent / "benchmarks" / "results" / "peers-2026-11-27.json"
CEILINGS = {"peak_gflops": 100.0, "bandwidth_gbs": 20.0}
SUMMARY = {  # prefill: 2 GFLOP per token; decode: 0.5 GB (a) and 0.25 GB (b) per token
    "a": {"prefill_512": {"tok_s": 25.0, "gflops": 50.0}, "decode_16": {"tok_s": 30.0, "bytes_per_token": 5e8}},
    "b": {"prefill_512": {"tok_s": 40.0, "gflops": 80.0}, "decode_16": {"tok_s": 50.0, "bytes_per_token": 2.5e8}},
    "no-prefill": {"decode_16": {"tok_s": 9.0, "bytes_per_token": 5e8}},
    "no-cache": {"decode_16": {"tok_s": 4.0}},  # as peers.py writes a decoder without a cache: no bytes per token
}


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
    # every system has the run; "no-cache" has no bytes per token, so no bound, and is left out
    assert [bar.get_width() for bar in artists(fig, "bars:decode_16")] == [30.0, 50.0, 9.0]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "no-prefill"]
    assert fig.get_suptitle() == "mine"
    fig = benchmark_bars(SUMMARY, CEILINGS, runs=["decode_16", "prefill_512"])
    assert [ax.get_title() for ax in fig.axes] == ["decode, context 16", "prefill, 512 tokens"]
    assert benchmark_bars(SUMMARY, CEILINGS, title="").get_suptitle() == ""  # "" means no title


def test_ceilings_may_be_what_minfer_calibrate_measures():
    ceilings = Ceilings(
        peak_gflops=100.0,
        bandwidth_gbs=20.0,
        matmul_n=8,
        stream_bytes=4,
        threads=1,
        cpu="x",
        measured_at="2026-11-27T00:00:00+00:00",
        env={},
    )
    fig = benchmark_bars(SUMMARY, ceilings)
    np.testing.assert_allclose(artists(fig, "bounds:decode_16")[0].get_offsets()[:, 0], [40.0, 80.0])


def test_the_performance_page_run_draws_every_system_with_a_bound():
    summary = json.loads(RESULTS.read_text())["summary"]  # what benchmarks/plot_peers.py draws for the docs
    with_bounds = [name for name in summary if name != "naive-numpy"]  # no cache: no prefill, no bytes per token
    for runs in [("prefill_512", "decode_16"), ("decode_16",)]:
        fig = benchmark_bars(summary, CEILINGS, runs=runs)
        assert [[t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes] == [with_bounds] * len(runs)


def test_the_bound_of_one_run_by_hand():
    assert bound_tokens_per_s("decode_16", {"tok_s": 30.0, "bytes_per_token": 5e8}, 100.0, 20.0) == pytest.approx(40.0)
    assert bound_tokens_per_s("prefill_512", {"tok_s": 25.0, "gflops": 50.0}, 100.0, 20.0) == pytest.approx(50.0)
