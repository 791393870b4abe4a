"""The prefill and generation-cost figures (lessons 04 and 05), read back from the artists they draw.

Inputs are round numbers, so every expected coordinate is worked out by hand in the comments.
Nothing is timed, and no backend is chosen: the figures never touch pyplot.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from plot_helpers import annotation, line

from minfer.plots import common, save_figure, subplots
from minfer.plots.prefill import generation_cost, prefill_scaling

# 1 token: 2 MFLOP in 1 ms -> 2 GFLOP/s; 8 tokens: 16 MFLOP in 2 ms -> 8 GFLOP/s;
# 64 tokens: 128 MFLOP in 4 ms -> 32 GFLOP/s. Given out of order: the figure sorts by tokens.
ROWS = [
    {"tokens": 64, "flops": 128e6, "seconds": 4e-3},
    {"tokens": 1, "flops": 2e6, "seconds": 1e-3},
    {"tokens": 8, "flops": 16e6, "seconds": 2e-3},
]
PEAK = 64.0  # GFLOP/s


def xs_ys(artist) -> tuple[np.ndarray, np.ndarray]:
    """(x values, y values) of a line, apart (plot_helpers.xy gives them as [n_points, 2])."""
    return np.asarray(artist.get_xdata(), float), np.asarray(artist.get_ydata(), float)


# ---------------------------------------------------------------- prefill_scaling


def test_time_panel_is_ms_per_prefill_sorted_by_tokens_on_log_axes():
    fig = prefill_scaling(ROWS, PEAK)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax = fig.axes[0]
    x, y = xs_ys(line(ax, "time"))
    np.testing.assert_array_equal(x, [1, 8, 64])
    np.testing.assert_allclose(y, [1.0, 2.0, 4.0])  # seconds -> ms
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")


def test_time_at_peak_is_flops_over_peak():
    ax = prefill_scaling(ROWS, PEAK).axes[0]
    x, y = xs_ys(line(ax, "time_at_peak"))
    # 2e6 / 64e9 s = 0.03125 ms; 16e6 / 64e9 = 0.25 ms; 128e6 / 64e9 = 2 ms
    np.testing.assert_array_equal(x, [1, 8, 64])
    np.testing.assert_allclose(y, [0.03125, 0.25, 2.0])


def test_rate_panel_is_flops_over_seconds_under_a_line_at_the_peak():
    ax = prefill_scaling(ROWS, PEAK).axes[1]
    x, y = xs_ys(line(ax, "gflops"))
    np.testing.assert_array_equal(x, [1, 8, 64])
    np.testing.assert_allclose(y, [2.0, 8.0, 32.0])
    _, peak_y = xs_ys(line(ax, "peak"))
    np.testing.assert_allclose(peak_y, [PEAK, PEAK])
    share = annotation(ax, "share")
    assert share.get_text() == "50% of peak"  # 32 of 64 GFLOP/s
    assert tuple(share.xy) == pytest.approx((64, 32.0))  # it points at the longest prompt
    assert ax.get_ylim()[1] >= PEAK  # the peak line is inside the axes
    assert any("64.0 GFLOP/s" in t.get_text() for t in ax.get_legend().get_texts())


def test_without_a_peak_there_is_no_peak_line_and_no_time_at_peak():
    fig = prefill_scaling(ROWS)
    ax_time, ax_rate = fig.axes
    assert [a.get_gid() for a in ax_time.get_lines()] == ["time"]
    assert [a.get_gid() for a in ax_rate.get_lines()] == ["gflops"]
    assert not [t for t in ax_rate.texts if t.get_gid() == "share"]


def test_draws_into_given_axes():
    fig, axes = subplots(1, 2)
    assert prefill_scaling(ROWS, PEAK, axes=axes, title="mine") is fig
    assert line(axes[1], "gflops") is not None
    assert fig.get_suptitle() == "mine"


def test_saves_as_png(tmp_path):
    path = save_figure(prefill_scaling(ROWS, PEAK), tmp_path / "prefill.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prefill_is_drawn_in_the_colour_every_figure_gives_prefill(monkeypatch):
    monkeypatch.setitem(common.PHASE_STYLE, "prefill", ("tab:purple", "^"))
    fig = prefill_scaling(ROWS, PEAK)
    for ax, gid in zip(fig.axes, ("time", "gflops")):
        assert (line(ax, gid).get_color(), line(ax, gid).get_marker()) == ("tab:purple", "^")


# ---------------------------------------------------------------- generation_cost

# With the cache: 1 s per token. Recomputing: token i costs i s, so 1, 3, 6, 10 in total.
SECONDS_CACHED, SECONDS_RECOMPUTE = [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 6.0, 10.0]
# FLOPs as lesson 05 gives them: np.cumsum of whole numbers, int64 arrays
FLOPS_CACHED, FLOPS_RECOMPUTE = np.cumsum([2, 2, 2, 2]) * 10**9, np.cumsum([2, 4, 6, 8]) * 10**9


def test_running_times_against_tokens_generated_in_ms():
    fig = generation_cost(SECONDS_CACHED, SECONDS_RECOMPUTE)
    assert len(fig.axes) == 1  # no FLOPs given: the time panel only
    ax = fig.axes[0]
    x, y = xs_ys(line(ax, "cached"))
    np.testing.assert_array_equal(x, [1, 2, 3, 4])
    np.testing.assert_allclose(y, [1e3, 2e3, 3e3, 4e3])
    x, y = xs_ys(line(ax, "recompute"))
    np.testing.assert_array_equal(x, [1, 2, 3, 4])
    np.testing.assert_allclose(y, [1e3, 3e3, 6e3, 10e3])
    ratio = annotation(ax, "ratio")
    assert ratio.get_text() == "2.5x"  # 10 s / 4 s
    assert tuple(ratio.xy) == pytest.approx((4, 10e3))


def test_flops_panel_in_gflop_with_its_own_ratio():
    fig = generation_cost(SECONDS_CACHED, SECONDS_RECOMPUTE, FLOPS_CACHED, FLOPS_RECOMPUTE)
    assert len(fig.axes) == 2
    ax = fig.axes[1]
    np.testing.assert_allclose(xs_ys(line(ax, "flops_cached"))[1], [2, 4, 6, 8])
    np.testing.assert_allclose(xs_ys(line(ax, "flops_recompute"))[1], [2, 6, 12, 20])
    assert annotation(ax, "flops_ratio").get_text() == "2.5x"  # 20 / 8 GFLOP
    assert "GFLOP" in ax.get_ylabel() and "ms" in fig.axes[0].get_ylabel()
