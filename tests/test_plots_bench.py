"""The benchmark figure: bars at the measured tok/s, ticks at the bound worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from minfer.errors import InvalidInputError
from minfer.plots.bench import benchmark_bars

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
    # bound = peak / FLOPs per token; FLOPs per token = 50e9 / 25 = 2e9 -> 100e9 / 2e9 = 50 tok/s
    np.testing.assert_allclose(artists(fig, "bounds:prefill_512")[0].get_offsets()[:, 0], [50.0, 50.0])
    labels = [t.get_text() for t in fig.axes[1].texts]
    assert labels == ["30 (75%)", "50 (62%)"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]


def test_one_panel_per_run():
    assert len(benchmark_bars(SUMMARY, CEILINGS, runs=("decode_16",)).axes) == 1


@pytest.mark.parametrize("summary, ceilings, match", [
    ({}, CEILINGS, "summary"),
    (SUMMARY, {"peak_gflops": 100.0}, "bandwidth_gbs"),
    (SUMMARY, {"peak_gflops": 0, "bandwidth_gbs": 20.0}, "calibrate"),
    ({"a": {"decode_512": {}}}, CEILINGS, "no system .* has all of"),
])
def test_bad_input_is_named(summary, ceilings, match):
    with pytest.raises(InvalidInputError, match=match):
        benchmark_bars(summary, ceilings)
