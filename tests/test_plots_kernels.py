"""Lesson 10's decode-step figure, read back from the bars it draws (by gid).

The inputs are round numbers, so every bar height and floor is worked out by hand below.
Nothing is timed; the figure never touches pyplot.
"""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure
from plot_helpers import bars

from minfer.plots.kernels import BAR_WIDTH, decode_step_bars

MS = {"numpy": 2.0, "numba": 0.5}  # ms per token
WEIGHTS = {"numpy": 16e6, "numba": 16e6}  # bytes per token
TOTAL = {"numpy": 20e6, "numba": 18e6}  # bytes per token: 4 MB and 2 MB besides the weights


def test_time_bars_are_the_measured_ms_in_the_given_order():
    fig = decode_step_bars(MS, WEIGHTS, TOTAL)
    assert isinstance(fig, Figure)
    ax_t, _ = fig.axes
    assert [b.get_height() for b in bars(ax_t, "ms")] == pytest.approx([2.0, 0.5])
    assert [t.get_text() for t in ax_t.get_xticklabels()] == ["numpy", "numba"]
    assert {"2.00", "0.50"} <= {t.get_text() for t in ax_t.texts}
    assert ax_t.get_ylabel() == "ms per token"


def test_byte_bars_stack_the_rest_on_the_weights_in_mb():
    _, ax_b = decode_step_bars(MS, WEIGHTS, TOTAL).axes
    weights, other = bars(ax_b, "weights"), bars(ax_b, "other")
    assert [b.get_height() for b in weights] == pytest.approx([16.0, 16.0])
    assert [b.get_height() for b in other] == pytest.approx([4.0, 2.0])  # 20 - 16 and 18 - 16 MB
    assert [b.get_y() for b in other] == pytest.approx([16.0, 16.0])  # on top of the weights
    assert {"20.00", "18.00"} <= {t.get_text() for t in ax_b.texts}  # the totals, above the stacks


def test_the_floor_is_total_bytes_over_bandwidth_across_each_bar():
    ax_t = decode_step_bars(MS, WEIGHTS, TOTAL, bandwidth_gbs=10.0).axes[0]
    (floor,) = [c for c in ax_t.collections if c.get_gid() == "floor"]
    segments = floor.get_segments()
    # 20 MB / 10 GB/s = 2 ms and 18 MB / 10 GB/s = 1.8 ms, each as wide as its bar
    assert [seg[0][1] for seg in segments] == pytest.approx([2.0, 1.8])
    assert [seg[1][1] for seg in segments] == pytest.approx([2.0, 1.8])
    for bar, seg in zip(bars(ax_t, "ms"), segments):
        assert (seg[0][0], seg[1][0]) == pytest.approx((bar.get_x(), bar.get_x() + BAR_WIDTH))


def test_no_bandwidth_no_floor_and_a_title_when_asked():
    fig = decode_step_bars(MS, WEIGHTS, TOTAL, title="classroom")
    assert not [c for c in fig.axes[0].collections if c.get_gid() == "floor"]
    assert fig.get_suptitle() == "classroom"
