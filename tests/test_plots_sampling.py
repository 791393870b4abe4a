"""Lesson 06's figures, read back from the artists they draw.

Distributions here are a few round probabilities over a tiny vocabulary, so every bar height,
cumulative sum and nucleus can be worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from plot_helpers import bars, line, same, xy

from minfer.errors import InvalidInputError
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
BEFORE = [0.05, 0.50, 0.15, 0.30, 0.00]  # most likely first: 1, 3, 2, 0; token 4 never
AFTER = [0.00, 0.625, 0.00, 0.375, 0.00]  # a top-2 filter, renormalized: 0.5 / 0.8, 0.3 / 0.8
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


@pytest.mark.parametrize(
    "probs, match",
    [
        ([[0.5, 0.5]], "1-D array"),
        ([], "1-D array"),
        ("abc", "probs must be numbers"),
        ([0.5, [0.5]], "probs must be numbers"),
        ([0.5, "x"], "probs must be numbers"),
        ([0.5, -0.1, 0.6, 0, 0], "finite and >= 0"),
        ([0.5, np.nan, 0.5, 0, 0], "finite"),
        ([1.0, 1.0, 0, 0, 0], "sum to 1"),
        ([0.0] * 5, "sum to 1"),
        ([2.0, -1.0, 0, 0, 0], ">= 0"),
    ],
)
def test_what_is_not_a_distribution_is_refused(probs, match):
    with pytest.raises(InvalidInputError, match=match):
        token_probabilities(probs, WORDS)


def test_before_must_cover_the_same_vocabulary():
    with pytest.raises(InvalidInputError, match="before has 3 entries but probs has 5"):
        token_probabilities(AFTER, WORDS, before=[0.2, 0.3, 0.5])


@pytest.mark.parametrize(
    "top, match",
    [
        (0, "at least 1"),
        (np.array([0, 5]), r"outside 0\.\.4"),
        (np.array([0.5]), "count or a 1-D array"),
        (True, "count or"),
        ([1, [2]], "count or a 1-D array"),
        ("12", "count or"),
    ],
)
def test_a_bad_top_is_refused(top, match):
    with pytest.raises(InvalidInputError, match=match):
        token_probabilities(BEFORE, WORDS, top=top)


def test_labels_too_short_are_refused():
    with pytest.raises(InvalidInputError, match="labels must be"):
        token_probabilities(BEFORE, ["a", "b"])


def test_numpy_inputs_are_accepted_labels_probabilities_and_top():
    words = np.array(WORDS)  # an array of strings, as np.array(vocab) gives
    ax = token_probabilities(np.array(BEFORE, np.float32), words, before=tuple(BEFORE), top=np.int64(2)).axes[0]
    assert ticks(ax) == ["b", "d"]
    assert heights(ax, "after") == pytest.approx([0.50, 0.30])


def test_nothing_is_drawn_into_given_axes_when_an_input_is_bad():
    fig = Figure()
    ax = fig.add_subplot()
    with pytest.raises(InvalidInputError, match="labels must be"):
        token_probabilities(BEFORE, ["a", "b"], ax=ax)
    with pytest.raises(InvalidInputError, match=r"distributions\['bad'\]"):
        cumulative_probability({"good": BEFORE, "bad": [0.5, 0.6]}, ax=ax)
    with pytest.raises(InvalidInputError, match=r"extra\['p'\]"):
        repetition_by_temperature({1.0: [0.1]}, extra={"ok": (0.0, 0.1), "p": 0.1}, ax=ax)
    assert not ax.lines and not ax.patches and not ax.texts


# ---------------------------------------------------------------- panels


def test_panels_share_one_order_one_y_label_and_one_legend():
    sharper = [0.01, 0.80, 0.04, 0.15, 0.00]
    fig = token_probability_panels({"one": AFTER, "two": sharper}, WORDS, before=BEFORE, top=3, log=True)
    left, right = fig.axes
    assert ticks(left) == ticks(right) == ["b", "d", "c"]
    assert heights(right, "after") == pytest.approx([0.80, 0.15, 0.04])
    assert (left.get_title(), right.get_title()) == ("one", "two")
    assert left.get_ylabel() == "probability" and right.get_ylabel() == ""
    assert left.get_legend() is not None and right.get_legend() is None
    assert right.get_shared_y_axes().joined(left, right) and right.get_yscale() == "log"


def test_panels_without_before_rank_by_the_first_panel():
    fig = token_probability_panels({"first": [0.1, 0.2, 0.7], "second": [0.7, 0.2, 0.1]}, ["x", "y", "z"], top=2)
    assert [ticks(ax) for ax in fig.axes] == [["z", "y"], ["z", "y"]]
    assert heights(fig.axes[1], "after") == pytest.approx([0.1, 0.2])


def test_panels_must_be_a_non_empty_dict():
    with pytest.raises(InvalidInputError, match="non-empty dict"):
        token_probability_panels({}, WORDS)
    with pytest.raises(InvalidInputError, match="non-empty dict"):
        token_probability_panels([BEFORE, AFTER], WORDS)


def test_every_panel_is_checked_and_named_over_one_vocabulary():
    with pytest.raises(InvalidInputError, match=r"panels\['b'\] has 2 entries but the first has 5"):
        token_probability_panels({"a": BEFORE, "b": [0.5, 0.5]}, WORDS)
    with pytest.raises(InvalidInputError, match=r"panels\['b'\] must sum to 1"):
        token_probability_panels({"a": BEFORE, "b": [0.5, 0.5, 0.5, 0, 0]}, WORDS)


# ---------------------------------------------------------------- cumulative probability


def test_nucleus_is_what_top_p_keeps():
    assert nucleus_size(BEFORE, 0.9) == 3  # 0.5 + 0.3 = 0.8 < 0.9 <= 0.95
    assert nucleus_size(BEFORE, 0.7) == 2  # 0.5 < 0.7 <= 0.8
    assert nucleus_size(BEFORE, 0.4) == 1
    assert nucleus_size(BEFORE, 1.0) == 4  # off: every token that can be drawn, not token 4


def test_cumulative_curves_add_up_the_sorted_probabilities_and_mark_the_nucleus():
    flat = [0.25, 0.25, 0.25, 0.25, 0.0]
    ax = cumulative_probability({"peaked": BEFORE, "flat": flat}, top_p=0.9).axes[0]
    same(xy(line(ax, "cumulative:peaked")), [(1, 0.5), (2, 0.8), (3, 0.95), (4, 1.0), (5, 1.0)])
    same(xy(line(ax, "nucleus:peaked")), [(3, 0.95)])
    same(xy(line(ax, "nucleus:flat")), [(4, 1.0)])  # 0.75 < 0.9: all four
    assert list(line(ax, "top_p").get_ydata()) == [0.9, 0.9]
    assert ax.get_xscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["peaked: nucleus of 3 tokens", "flat: nucleus of 4 tokens"]
    assert line(ax, "nucleus:flat").get_color() == line(ax, "cumulative:flat").get_color()


@pytest.mark.parametrize("top_p", [0, 1.5, float("nan"), "0.9"])
def test_top_p_outside_its_range_is_refused(top_p):
    with pytest.raises(InvalidInputError, match="top_p"):
        cumulative_probability({"p": BEFORE}, top_p=top_p)


def test_cumulative_needs_a_dict_of_distributions():
    with pytest.raises(InvalidInputError, match="non-empty dict"):
        cumulative_probability(BEFORE)
    with pytest.raises(InvalidInputError, match=r"distributions\['bad'\]"):
        cumulative_probability({"bad": [[0.5, 0.5]]})


@pytest.mark.parametrize("probs", [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.2, 0.1]])
def test_cumulative_needs_real_distributions_so_the_dot_sits_on_its_curve(probs):
    # [1, 1, 0] drew the curve to 2 and the dot (from top_p_filter, renormalized) off it;
    # all zeros put the dot at rank 0 on a log axis
    with pytest.raises(InvalidInputError, match=r"distributions\['p'\] must sum to 1"):
        cumulative_probability({"p": probs})


def test_cumulative_takes_numpy_numbers_tuples_and_a_softmax_renormalized_filter():
    logits = np.log(np.array(BEFORE[:4]))  # [4]
    kept = softmax(top_p_filter(logits, 0.7))  # [4]: tokens 1 and 3, renormalized to 0.625, 0.375
    ax = cumulative_probability({"tuple": tuple(BEFORE), "filtered": kept}, top_p=np.float64(0.9)).axes[0]
    same(xy(line(ax, "nucleus:tuple")), [(3, 0.95)])
    same(xy(line(ax, "nucleus:filtered"))[:, 0], [2])
    assert line(ax, "nucleus:filtered").get_ydata()[0] == pytest.approx(1.0)
    assert nucleus_size(np.array(BEFORE, np.float32), np.float32(0.9)) == 3


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


def test_runs_and_extra_take_numpy_numbers_arrays_and_tuples():
    runs = {np.float64(0.0): np.array([0.8]), 1.0: (np.float32(0.0), 0.2)}
    ax = repetition_by_temperature(runs, extra={"penalty": np.array([0.0, 0.05]), "list": [1.0, 0.1]}).axes[0]
    same(xy(line(ax, "mean")), [(0.0, 0.8), (1.0, 0.1)])
    same(xy(line(ax, "extra:penalty")), [(0.0, 0.05)])
    same(xy(line(ax, "extra:list")), [(1.0, 0.1)])


@pytest.mark.parametrize(
    "runs, extra, match",
    [
        ({}, None, "non-empty dict"),
        ({1.0: []}, None, r"runs\[1\.0\]"),
        ({1.0: [1.2]}, None, "between 0 and 1"),
        ({-1.0: [0.1]}, None, "temperature"),
        ({1.0: [0.1]}, {"p": 0.1}, r"extra\['p'\]"),
        ({1.0: [0.1]}, {"p": (0.0, 2.0)}, "fraction"),
        ({1.0: [0.1]}, {"p": "ab"}, r"extra\['p'\]"),
        ({1.0: [0.1]}, {"p": np.array([[0.0, 0.1]])}, r"extra\['p'\]"),
        ({1.0: "ab"}, None, r"runs\[1\.0\]"),
        ({1.0: [0.1, [0.2]]}, None, r"runs\[1\.0\]"),
        ([0.1, 0.2], None, "non-empty dict"),
        ({1.0: [0.1]}, [(0.0, 0.1)], "extra must be a dict"),
    ],
)
def test_bad_runs_are_refused(runs, extra, match):
    with pytest.raises(InvalidInputError, match=match):
        repetition_by_temperature(runs, extra=extra)


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
