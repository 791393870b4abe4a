"""Lesson 07's figures, read back from the artists they draw.

The sweep is made of round numbers so that every rate and bound is worked out by hand; the
FLOP/byte figure is checked against `decode_cost`, the count it promises to draw, batch by batch.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.figure import Figure
from plot_helpers import line, same, xy

from minfer.perf.counts import ARCHS, decode_cost, ridge_batch
from minfer.perf.profile import SweepRow
from minfer.plots.batching import intensity_by_batch, throughput_by_batch

# one decode step per batch size: 2 MFLOP per sequence; 1 MB of weights + 0.1 MB per sequence
SWEEP = [
    SweepRow(2e6 * b, 1e6 + 1e5 * b, s, batch=b, tokens=b) for b, s in [(4, 0.016), (1, 0.010), (2, 0.012)]
]  # out of order on purpose
CEILINGS = {"peak_gflops": 1.0, "bandwidth_gbs": 0.1}  # compute 2 ms per sequence; memory 10 ms + 1 ms each
GPT2 = ARCHS["gpt2"]


# ---------------------------------------------------------------- throughput_by_batch


def test_measured_tokens_per_second_in_batch_order_on_log_axes():
    fig = throughput_by_batch(SWEEP)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    same(xy(line(ax, "measured")), [(1, 100.0), (2, 2 / 0.012), (4, 250.0)])
    same(xy(line(ax, "linear")), [(1, 100.0), (2, 200.0), (4, 400.0)])  # B x the B = 1 rate
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    assert not [ln for ln in ax.get_lines() if ln.get_gid() == "bound"]  # no ceilings, no bound


def test_the_bound_is_tokens_over_the_slower_of_compute_and_memory():
    ax = throughput_by_batch(SWEEP, SimpleNamespace(**CEILINGS)).axes[0]
    # memory 0.011, 0.012, 0.014 s beats compute 0.002, 0.004, 0.008 s at every batch here
    same(xy(line(ax, "bound")), [(1, 1 / 0.011), (2, 2 / 0.012), (4, 4 / 0.014)])
    compute_bound = [replace(row, flops=2e7 * row.batch) for row in SWEEP]  # 20 ms per sequence
    ax = throughput_by_batch(compute_bound, CEILINGS).axes[0]
    same(xy(line(ax, "bound")), [(1, 50.0), (2, 50.0), (4, 50.0)])


def test_the_linear_line_starts_from_the_smallest_batch_measured():
    ax = throughput_by_batch(
        [SweepRow(1.0, 1.0, 0.01, batch=2, tokens=2), SweepRow(1.0, 1.0, 0.02, batch=8, tokens=8)]
    ).axes[0]
    same(xy(line(ax, "linear")), [(2, 200.0), (8, 800.0)])
    assert line(ax, "linear").get_label() == "B x the B = 2 rate"


def test_throughput_draws_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot(1, 2, 1)
    assert throughput_by_batch(SWEEP, ax=ax, title="mine") is fig
    assert ax.get_title() == "mine"


# ---------------------------------------------------------------- intensity_by_batch


def test_the_count_line_is_decode_costs_flop_per_byte_at_every_batch_drawn():
    ax = intensity_by_batch(GPT2, 63, 7.3, timed=[1, 2, 4, 8, 16]).axes[0]
    count = xy(line(ax, "count"))
    assert count[0, 0] == 1 and count[-1, 0] == 1024 and (np.diff(count[:, 0]) > 0).all()
    for b, fpb in count[:: len(count) // 7]:
        assert fpb == pytest.approx(decode_cost(GPT2, 63, int(b)).flop_per_byte, rel=1e-12)
    same(xy(line(ax, "timed")), [(b, decode_cost(GPT2, 63, b).flop_per_byte) for b in (1, 2, 4, 8, 16)])
    assert line(ax, "count").get_label() == "count, T = 64"
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")


def test_the_limit_is_what_each_extra_sequence_adds_and_the_ridge_is_where_it_was_put():
    ax = intensity_by_batch(GPT2, 63, 7.3).axes[0]
    one, two = decode_cost(GPT2, 63, 1), decode_cost(GPT2, 63, 2)
    limit = (two.flops - one.flops) / (two.bytes - one.bytes)
    assert list(line(ax, "limit").get_ydata()) == pytest.approx([limit, limit], rel=1e-12)
    assert list(line(ax, "ridge").get_ydata()) == [7.3, 7.3]
    assert not [ln for ln in ax.get_lines() if ln.get_gid() == "timed"]


def test_the_crossing_is_the_first_batch_at_or_past_the_ridge():
    fpb = {b: decode_cost(GPT2, 63, b).flop_per_byte for b in range(1, 200)}
    ridge = (fpb[40] + fpb[41]) / 2  # between two batches: 41 is the first past it
    assert ridge_batch(GPT2, 63, ridge) == 41
    assert ridge_batch(GPT2, 63, fpb[41]) == 41  # exactly on it counts
    ax = intensity_by_batch(GPT2, 63, ridge).axes[0]
    assert list(line(ax, "crossing").get_xdata()) == [41, 41]
    assert line(ax, "crossing").get_label() == "compute-bound from B = 41"


def test_no_crossing_when_the_limit_is_below_the_ridge_or_past_the_last_batch():
    one, two = decode_cost(GPT2, 1023, 1), decode_cost(GPT2, 1023, 2)
    limit = (two.flops - one.flops) / (two.bytes - one.bytes)
    assert ridge_batch(GPT2, 1023, limit * 1.01) is None
    ax = intensity_by_batch(GPT2, 1023, limit * 1.01).axes[0]
    assert not [ln for ln in ax.get_lines() if ln.get_gid() == "crossing"]
    far = ridge_batch(GPT2, 63, decode_cost(GPT2, 63, 300).flop_per_byte)
    ax = intensity_by_batch(GPT2, 63, decode_cost(GPT2, 63, 300).flop_per_byte, max_batch=100).axes[0]
    assert far == 300 and not [ln for ln in ax.get_lines() if ln.get_gid() == "crossing"]


def test_an_empty_title_means_no_title():
    assert throughput_by_batch(SWEEP, title="").axes[0].get_title() == ""
    assert intensity_by_batch(GPT2, 63, 7.3, title="").axes[0].get_title() == ""
