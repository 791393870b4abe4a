"""Lesson 06's figures, read back from the artists they draw.

Distributions here are a few round probabilities over a tiny vocabulary, so every bar height,
cumulative sum and nucleus can be worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from plot_helpers import bars, line, same, xy

from minfer.layers import softmax
from minfer.plots.sampling import (
    cumulative_probability,
    nucleus_size,
    repetition_by_temperature,
    token_probabilities,
    token_probability_panels,
)
from minfer.sampling import top_p_filter

# token id:    0     1     2     3     4
BEFORE = np.array([0.05, 0.50, 0.15, 0.30, 0.00])  # most likely first: 1, 3, 2, 0; token 4 never
AFTER = np.array([0.00, 0.625, 0.00, 0.375, 0.00])  # a top-2 filter, renormalized: 0.5 / 0.8, 0.3 / 0.8
WORDS = ["a", "b", "c", "d", "e"]


def heights(ax, gid: str) -> list[float]:
    return [b.get_height() for b in bars(ax, gid)]


def ticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


# ---------------------------------------------------------------- token_probabilities


def test_bars_are_the_most_likely_tokens_in_order_with_their_probabilities():
    fig = token_probabilities(BEFORE, WORDS, top=3)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert heights(ax, "after") == pytest.approx([0.50, 0.30, 0.15])
    assert ticks(ax) == ["b", "d", "c"]
    assert not bars(ax, "before") and ax.get_legend() is None
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "probability"


def test_after_a_step_the_bars_keep_the_tokens_of_before_and_sit_on_grey():
    ax = token_probabilities(AFTER, WORDS, before=BEFORE, top=4, log=True).axes[0]
    assert ticks(ax) == ["b", "d", "c", "a"]  # ranked by before: the removed tokens stay in place
    assert heights(ax, "before") == pytest.approx([0.50, 0.30, 0.15, 0.05])
    assert heights(ax, "after") == pytest.approx([0.625, 0.375, 0.0, 0.0])
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["before", "after"]


def test_labels_may_be_a_function_and_top_a_list_of_ids():
    ax = token_probabilities(BEFORE, lambda i: f"<{i}>", top=np.array([4, 0]), title="mine").axes[0]
    assert ticks(ax) == ["<4>", "<0>"]
    assert heights(ax, "after") == pytest.approx([0.0, 0.05])
    assert ax.get_title() == "mine"


def test_bars_draw_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert token_probabilities(BEFORE, WORDS, ax=ax) is fig
    assert len(heights(ax, "after")) == 5  # top=30 of a 5-token vocabulary: all of them


# ---------------------------------------------------------------- panels


def test_panels_share_one_order_one_y_label_and_one_legend():
    sharper = np.array([0.01, 0.80, 0.04, 0.15, 0.00])
    fig = token_probability_panels({"one": AFTER, "two": sharper}, WORDS, before=BEFORE, top=3, log=True)
    left, right = fig.axes
    assert ticks(left) == ticks(right) == ["b", "d", "c"]
    assert heights(right, "after") == pytest.approx([0.80, 0.15, 0.04])
    assert (left.get_title(), right.get_title()) == ("one", "two")
    assert left.get_ylabel() == "probability" and right.get_ylabel() == ""
    assert left.get_legend() is not None and right.get_legend() is None
    assert right.get_shared_y_axes().joined(left, right) and right.get_yscale() == "log"


def test_panels_without_before_rank_by_the_first_panel():
    panels = {"first": np.array([0.1, 0.2, 0.7]), "second": np.array([0.7, 0.2, 0.1])}
    fig = token_probability_panels(panels, ["x", "y", "z"], top=2)
    assert [ticks(ax) for ax in fig.axes] == [["z", "y"], ["z", "y"]]
    assert heights(fig.axes[1], "after") == pytest.approx([0.1, 0.2])


# ---------------------------------------------------------------- cumulative probability


def test_nucleus_is_what_top_p_keeps():
    assert nucleus_size(BEFORE, 0.9) == 3  # 0.5 + 0.3 = 0.8 < 0.9 <= 0.95
    assert nucleus_size(BEFORE, 0.7) == 2  # 0.5 < 0.7 <= 0.8
    assert nucleus_size(BEFORE, 0.4) == 1
    assert nucleus_size(BEFORE, 1.0) == 4  # off: every token that can be drawn, not token 4


def test_cumulative_curves_add_up_the_sorted_probabilities_and_mark_the_nucleus():
    flat = np.array([0.25, 0.25, 0.25, 0.25, 0.0])
    ax = cumulative_probability({"peaked": BEFORE, "flat": flat}, top_p=0.9).axes[0]
    same(xy(line(ax, "cumulative:peaked")), [(1, 0.5), (2, 0.8), (3, 0.95), (4, 1.0), (5, 1.0)])
    same(xy(line(ax, "nucleus:peaked")), [(3, 0.95)])
    same(xy(line(ax, "nucleus:flat")), [(4, 1.0)])  # 0.75 < 0.9: all four
    assert list(line(ax, "top_p").get_ydata()) == [0.9, 0.9]
    assert ax.get_xscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["peaked: nucleus of 3 tokens", "flat: nucleus of 4 tokens"]
    assert line(ax, "nucleus:flat").get_color() == line(ax, "cumulative:flat").get_color()


def test_the_nucleus_of_a_filtered_distribution_is_what_the_filter_kept():
    logits = np.log(BEFORE[:4])  # [4]
    kept = softmax(top_p_filter(logits, 0.7))  # [4]: tokens 1 and 3, renormalized to 0.625, 0.375
    ax = cumulative_probability({"filtered": kept}, top_p=0.9).axes[0]
    same(xy(line(ax, "nucleus:filtered"))[:, 0], [2])
    assert line(ax, "nucleus:filtered").get_ydata()[0] == pytest.approx(1.0)
    assert nucleus_size(BEFORE.astype(np.float32), 0.9) == 3  # the float32 a model's softmax gives


# ---------------------------------------------------------------- repetition by temperature


def test_every_run_is_a_dot_and_the_mean_a_line_in_temperature_order():
    runs = {1.0: [0.0, 0.2], 0.0: [0.8], 0.5: [0.1, 0.3, 0.5]}
    ax = repetition_by_temperature(runs, extra={"penalty": (0.0, 0.05)}, title="t").axes[0]
    same(
        sorted(map(tuple, xy(line(ax, "runs")))),
        sorted([(1.0, 0.0), (1.0, 0.2), (0.0, 0.8), (0.5, 0.1), (0.5, 0.3), (0.5, 0.5)]),
    )
    same(xy(line(ax, "mean")), [(0.0, 0.8), (0.5, 0.3), (1.0, 0.1)])
    same(xy(line(ax, "extra:penalty")), [(0.0, 0.05)])
    assert ax.get_ylim() == pytest.approx((-0.05, 1.05)) and ax.get_title() == "t"


@pytest.mark.parametrize(
    "draw",
    [
        lambda title: token_probabilities(BEFORE, WORDS, title=title),
        lambda title: cumulative_probability({"p": BEFORE}, title=title),
        lambda title: repetition_by_temperature({1.0: [0.1]}, title=title),
    ],
)
def test_no_title_is_the_default_and_an_empty_one_is_none(draw):
    assert draw(None).axes[0].get_title() != ""
    assert draw("").axes[0].get_title() == ""
