"""Lesson 12's figures, read back from the artists they draw.

Projections are real ones from `minfer.perf.whatif.project` with their rates replaced by round
numbers (`dataclasses.replace`), so every point and bar is known by hand.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from plot_helpers import bars, line, xy

from minfer.perf.whatif import project
from minfer.plots.economics import batch_economics, projected_cost, projected_throughput, tokens_per_watt

BASE = project("llama-3-8b", "h100-sxm", batch=1)  # prompt 512, output 256


def proj(
    hardware: str, batch: int, tokens_per_s: float, usd: float = 1.0, per_watt: float | None = 1.0, chips: int = 1
):
    """A Projection with round numbers where the figures read."""
    return replace(
        BASE,
        hardware=hardware,
        batch=batch,
        tokens_per_s=tokens_per_s,
        usd_per_million_tokens=usd,
        tokens_per_s_per_watt=per_watt,
        chips=chips,
    )


SWEEP = [
    proj("a", 4, 350.0, usd=0.5),
    proj("b", 1, 20.0, usd=9.0),
    proj("a", 1, 100.0, usd=2.0),
    proj("a", 16, 1000.0, usd=0.2),
    proj("b", 16, 250.0, usd=1.0),
]  # out of order on purpose


# ---------------------------------------------------------------- against the batch


def test_one_throughput_line_per_chip_in_batch_order():
    fig = projected_throughput(SWEEP)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    np.testing.assert_array_equal(xy(line(ax, "tokens_per_s:a")), [(1, 100.0), (4, 350.0), (16, 1000.0)])
    np.testing.assert_array_equal(xy(line(ax, "tokens_per_s:b")), [(1, 20.0), (16, 250.0)])
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "4", "16"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]  # chips in the order they come
    assert ax.get_title() == "llama-3-8b bfloat16: throughput bound"
    assert not [ln for ln in ax.get_lines() if ln.get_gid() == "linear"]


def test_perfect_sharing_is_the_chips_smallest_batch_rate_times_the_batch():
    ax = projected_throughput(SWEEP, linear_from="b").axes[0]
    np.testing.assert_allclose(xy(line(ax, "linear")), [(1, 20.0), (4, 80.0), (16, 320.0)])
    assert line(ax, "linear").get_label() == "b, batch x (batch 1)"
    ax = projected_throughput([proj("a", 2, 50.0), proj("a", 8, 150.0)], linear_from="a").axes[0]
    np.testing.assert_allclose(xy(line(ax, "linear")), [(2, 50.0), (8, 200.0)])


def test_cost_lines_are_the_dollars_per_million_tokens():
    ax = projected_cost(SWEEP, title="mine").axes[0]
    np.testing.assert_array_equal(xy(line(ax, "usd:a")), [(1, 2.0), (4, 0.5), (16, 0.2)])
    np.testing.assert_array_equal(xy(line(ax, "usd:b")), [(1, 9.0), (16, 1.0)])
    assert ax.get_yscale() == "log" and ax.get_title() == "mine"


def test_batch_economics_puts_both_side_by_side_under_the_workload():
    fig = batch_economics(SWEEP, linear_from="a")
    left, right = fig.axes
    assert line(left, "tokens_per_s:a") and line(left, "linear") and line(right, "usd:b")
    assert fig.get_suptitle() == "Roofline bounds, not measurements (prompt 512, output 256)"


def test_the_figures_draw_into_given_axes():
    fig = Figure()
    left, middle, right = fig.subplots(1, 3)
    assert projected_cost(SWEEP, ax=left) is fig
    assert projected_throughput(SWEEP, linear_from="a", ax=middle) is fig
    assert tokens_per_watt(SWEEP, ax=right) is fig
    np.testing.assert_array_equal(xy(line(left, "usd:b")), [(1, 9.0), (16, 1.0)])
    np.testing.assert_array_equal(xy(line(middle, "tokens_per_s:a")), [(1, 100.0), (4, 350.0), (16, 1000.0)])
    assert line(middle, "linear") and len(bars(right, "tokens_per_watt")) == 5
    assert fig.axes == [left, middle, right]  # nothing drawn anywhere else


def test_an_empty_title_means_no_title():
    assert projected_cost(SWEEP, title="").axes[0].get_title() == ""
    assert projected_throughput(SWEEP, title="").axes[0].get_title() == ""
    assert tokens_per_watt(SWEEP, title="").axes[0].get_title() == ""
    assert batch_economics(SWEEP, title="").get_suptitle() == ""


def test_titles_name_every_workload_they_show():
    other = replace(proj("c", 1, 5.0), arch="gpt2", dtype="float32", prompt_tokens=128)
    assert projected_throughput([*SWEEP, other]).axes[0].get_title() == (
        "llama-3-8b bfloat16 / gpt2 float32: throughput bound"
    )
    assert batch_economics([*SWEEP, other]).get_suptitle() == (
        "Roofline bounds, not measurements (prompt 512 / 128, output 256)"
    )


# ---------------------------------------------------------------- tokens per watt


def test_bars_are_tokens_per_watt_red_past_many_chips_labelled_with_the_chips():
    ps = [
        proj("x", 64, 1.0, per_watt=14.5),
        proj("groq", 64, 1.0, per_watt=40.8, chips=98),
        proj("y", 64, 1.0, per_watt=3.0, chips=2),
    ]
    ax = tokens_per_watt(ps).axes[0]
    assert [b.get_height() for b in bars(ax, "tokens_per_watt")] == [14.5, 40.8, 3.0]
    assert [b.get_facecolor() for b in bars(ax, "tokens_per_watt")] == [to_rgba("C0"), to_rgba("C3"), to_rgba("C0")]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "groq", "y"]
    assert [t.get_text() for t in ax.texts] == ["1 chip", "98 chips", "2 chips"]
    assert ax.get_legend() is not None
    assert ax.get_title() == "llama-3-8b bfloat16, batch 64: tokens/s per W, roofline bounds"


def test_chips_without_power_are_left_out_and_named():
    ps = [proj("x", 1, 1.0, per_watt=2.0), proj("nopower", 1, 1.0, per_watt=None)]
    ax = tokens_per_watt(ps, many_chips=0).axes[0]  # every bar past 0 chips: all red
    assert [b.get_height() for b in bars(ax, "tokens_per_watt")] == [2.0]
    assert [b.get_facecolor() for b in bars(ax, "tokens_per_watt")] == [to_rgba("C3")]
    assert [t.get_text() for t in ax.texts if t.get_gid() == "note"] == ["no published power: nopower"]


def test_the_title_names_the_batch_only_when_every_bar_shares_it():
    ax = tokens_per_watt([proj("x", 1, 1.0, per_watt=1.0), proj("y", 64, 1.0, per_watt=9.0)]).axes[0]
    assert ax.get_title() == "llama-3-8b bfloat16: tokens/s per W, roofline bounds"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x\nbatch 1", "y\nbatch 64"]  # the batch goes under


def test_many_chips_moves_the_line_between_blue_and_red():
    ps = [proj("x", 64, 1.0, per_watt=14.5), proj("groq", 64, 1.0, per_watt=40.8, chips=98)]
    ax = tokens_per_watt(ps, many_chips=100).axes[0]
    assert [b.get_facecolor() for b in bars(ax, "tokens_per_watt")] == [to_rgba("C0"), to_rgba("C0")]
    assert ax.get_legend() is None  # nothing red, nothing to explain


def test_a_chip_twice_gets_its_batch_under_the_bar_and_no_red_means_no_legend():
    ax = tokens_per_watt([proj("x", 1, 1.0, per_watt=1.0), proj("x", 64, 1.0, per_watt=9.0)]).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x\nbatch 1", "x\nbatch 64"]
    assert ax.get_legend() is None
