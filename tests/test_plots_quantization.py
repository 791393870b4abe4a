"""Lesson 11's figures, read back from the artists they draw (by gid).

The matrix below is small enough to quantize by hand: its scales are powers of two, so every
rounding error is exact in float32 and the histogram counts and RMS errors follow on paper.
Nothing is timed; the figures never touch pyplot.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from plot_helpers import line, stairs

from minfer.plots.quantization import (
    quantization_error,
    round_trip_errors,
    time_against_bytes,
)

# column 0: max 127 -> scale 1; column 1: max 127/128 -> scale 1/128; the whole matrix: scale 1.
#   per tensor (s = 1):   127 -> 0,  -63.75 -> -64 (err +0.25),  0.9921875 -> 1 (err -0.0078125),  0.375 -> 0 (+0.375)
#   per column (1, 1/128): 127 -> 0, -63.75 -> err +0.25,  0.9921875 -> 127 (err 0),  0.375 = 48/128 (err 0)
W = np.array([[127.0, 0.9921875], [-63.75, 0.375]], np.float32)  # [2, 2]


def test_round_trip_errors_by_hand():
    err_t, scale_t = round_trip_errors(W, axis=(0, 1))
    err_c, scale_c = round_trip_errors(W, axis=0)
    assert float(scale_t) == 1.0 and scale_c.tolist() == [1.0, 1 / 128]
    assert err_t.tolist() == [[0.0, -0.0078125], [0.25, 0.375]]
    assert err_c.tolist() == [[0.0, 0.0], [0.25, 0.0]]


def test_every_error_is_within_half_its_scale():
    w = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32) * np.geomspace(0.01, 1, 48)
    for axis in [(0, 1), 0, 1]:
        err, scale = round_trip_errors(w, axis=axis)  # like w, w's shape without axis
        bound = np.expand_dims(scale, axis) / 2  # broadcasts like w
        # rint(w / scale) runs in float32, so an error can pass s / 2 by a float32 rounding of w
        assert np.all(np.abs(err) <= bound + np.abs(w) * 2.0**-23)
        assert np.abs(err).max() > 0.4 * bound.min()  # really rounded: the errors fill the steps


def test_errors_are_the_exact_difference_in_float64():
    err, scale = round_trip_errors(np.array([[1.0], [0.3]], np.float32), axis=0)
    assert err.dtype == np.float64
    q = float(np.rint(np.float32(0.3) / scale[0]))  # 38.0, the level 0.3 rounds to
    assert err[1, 0] == float(np.float32(0.3)) - q * float(scale[0])  # w - w_q * scale, no float32 rounding


def test_every_weight_is_counted_even_one_a_hair_past_half_the_scale():
    # seed 0: one per-tensor error passes s / 2 by 4e-9 (float32 rounding of w / s); it is still a weight
    w = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)  # [512, 512]
    ax = quantization_error(w).axes[0]
    for gid in ("per-tensor", "per-channel"):
        assert sum(stairs(ax, gid)[0]) == w.size


def test_histograms_count_the_errors_on_bins_spanning_half_the_tensor_scale():
    fig = quantization_error(W, bins=4)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    # edges: [-0.5, -0.25, 0, 0.25, 0.5] (s / 2 = 0.5); a bin holds its left edge
    tensor_counts, edges = stairs(ax, "per-tensor")
    assert edges == pytest.approx([-0.5, -0.25, 0.0, 0.25, 0.5])
    assert tensor_counts == [0, 1, 1, 2]  # -0.0078; 0; 0.25 and 0.375
    column_counts, column_edges = stairs(ax, "per-channel")
    assert column_edges == edges
    assert column_counts == [0, 0, 3, 1]  # three exact 0s; 0.25
    assert sorted(ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_gid() == "bound") == [-0.5, 0.5]


def test_the_legend_gives_each_rms_error():
    ax = quantization_error(W, bins=4).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # per tensor: sqrt((0 + 0.0078125^2 + 0.25^2 + 0.375^2) / 4) = 0.2254; per column: sqrt(0.25^2 / 4) = 0.125
    assert labels == ["one scale for the matrix: RMS error 0.225", "one scale per column: RMS error 0.125"]


def test_a_scale_per_row_is_named_so():
    ax = quantization_error(W.T, axis=1, bins=4).axes[0]
    assert stairs(ax, "per-channel")[0] == [0, 0, 3, 1]  # the same matrix, transposed, by rows
    assert "one scale per row" in ax.get_legend().get_texts()[1].get_text()


RUNS = {"float32": (100e6, 10e-3), "int8": (25e6, 5e-3)}  # (bytes, seconds): 10 GB/s and 5 GB/s


def test_points_sit_at_mb_and_ms_and_say_their_gbs():
    ax = time_against_bytes(RUNS, 10.0).axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    f32, int8 = line(ax, "point:float32"), line(ax, "point:int8")
    assert (f32.get_xdata()[0], f32.get_ydata()[0]) == pytest.approx((100.0, 10.0))
    assert (int8.get_xdata()[0], int8.get_ydata()[0]) == pytest.approx((25.0, 5.0))
    assert {"10.0 GB/s", "5.0 GB/s"} <= {t.get_text() for t in ax.texts}


def test_the_bandwidth_line_is_mb_over_gbs_across_the_points():
    ax = time_against_bytes(RUNS, 10.0).axes[0]
    bandwidth = line(ax, "bandwidth")
    assert list(bandwidth.get_xdata()) == pytest.approx([12.5, 200.0])  # half the least, twice the most
    assert list(bandwidth.get_ydata()) == pytest.approx([1.25, 20.0])  # 12.5 MB / 10 GB/s = 1.25 ms
    assert "10 GB/s" in bandwidth.get_label()


@pytest.mark.parametrize(
    "draw",
    [
        lambda title: quantization_error(W, bins=4, title=title),
        lambda title: time_against_bytes(RUNS, 10.0, title=title),
    ],
)
def test_no_title_is_the_default_and_an_empty_one_is_none(draw):
    assert draw(None).axes[0].get_title() != ""
    assert draw("").axes[0].get_title() == ""
