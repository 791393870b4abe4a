"""Lesson 15's figures, read back from the artists they draw, on timelines and steps small
enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from plot_helpers import bars, image, line, same, xy

from minfer.errors import InvalidInputError
from minfer.plots.scheduling import N_COLORS, slot_timeline, step_tokens, throughput_latency

REQUESTS = np.array([[0, 0, 2, -1], [1, 1, 1, 1]])  # [n_slots, n_steps]: slot 0 frees up after request 2
PREFILL = np.array([[1, 0, 1, 1], [1, 0, 0, 0]], bool)


def test_slot_timeline_colours_requests_and_hatches_prefill():
    fig = slot_timeline(REQUESTS, PREFILL)
    np.testing.assert_array_equal(image(fig, "timeline").get_array(), [[1, 1, 3, 0], [2, 2, 2, 2]])
    ax = fig.axes[0]
    hatched = sorted(p.get_xy() for p in ax.patches if p.get_gid() == "prefill")
    assert hatched == [(-0.5, -0.5), (-0.5, 0.5), (1.5, -0.5)]  # an empty slot is never hatched
    labels = sorted((t.get_position(), t.get_text()) for t in ax.texts if t.get_gid() == "request")
    assert labels == [((0, 0), "0"), ((0, 1), "1"), ((2, 0), "2")]  # each run labelled once
    assert ax.get_title() == "88% of slot-steps in use"  # 7 of 8


def test_slot_timeline_reuses_colours_after_twenty_requests():
    fig = slot_timeline(np.array([[N_COLORS + 3, -1]]))
    np.testing.assert_array_equal(image(fig, "timeline").get_array(), [[4, 0]])


def test_step_tokens_stacks_prefill_on_decode_and_draws_milliseconds():
    fig = step_tokens([3, 3, 4], [29, 5, 0], [0.06, 0.03, 0.02])
    ax = fig.axes[0]
    assert [p.get_height() for p in bars(ax, "decode")] == [3, 3, 4]
    assert [(p.get_y(), p.get_height()) for p in bars(ax, "prefill")] == [(3, 29), (3, 5), (4, 0)]
    same(xy(line(fig.axes[1], "seconds")), [(0, 60), (1, 30), (2, 20)])


def test_throughput_latency_one_labelled_point_per_batch():
    ax = throughput_latency([1, 4], [0.010, 0.025], [100.0, 160.0]).axes[0]
    same(xy(line(ax, "measured")), [(10, 100), (25, 160)])
    assert [t.get_text() for t in ax.texts if t.get_gid() == "batch"] == ["B = 1", "B = 4"]


def test_a_wrong_argument_is_one_clear_error():
    with pytest.raises(InvalidInputError, match="slot_timeline"):
        slot_timeline([1, 2, 3])
