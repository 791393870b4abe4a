"""Lesson 14's figures, read back from the artists they draw: the reservations worked out by
hand for four sequences, and every position of a small pool found where `slot_of` puts it."""

from __future__ import annotations

import numpy as np
import pytest
from plot_helpers import bars, image, line, same, xy

from minfer.errors import InvalidInputError
from minfer.plots.common import subplots
from minfer.plots.paging import block_states, filled_share_by_block_size, pool_map, reserved_memory

LENGTHS = [20, 5, 16, 40]  # positions filled; blocks of 8 reserve 24, 8, 16, 40


def heights(ax, gid: str) -> list[float]:
    return [p.get_height() for p in bars(ax, gid)]


def test_reserved_memory_sorts_sequences_and_rounds_up_to_blocks():
    ax = reserved_memory(LENGTHS, n_ctx=64, block_size=8).axes[0]
    assert heights(ax, "filled") == [5, 16, 20, 40]
    assert heights(ax, "paged") == [8, 16, 24, 40]
    assert heights(ax, "contiguous") == [64] * 4
    contiguous, paged, _ = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "(32% filled)" in contiguous  # 81 of 256
    assert "(92% filled)" in paged  # 81 of 88


def test_filled_share_falls_with_the_block_size_to_the_contiguous_share():
    ax = filled_share_by_block_size(LENGTHS, [1, 8, 64], n_ctx=64).axes[0]
    same(xy(line(ax, "share")), [(1, 1.0), (8, 81 / 88), (64, 81 / 256)])
    same(xy(line(ax, "contiguous share"))[:, 1], [81 / 256, 81 / 256])  # one block of n_ctx is the contiguous cache
    assert ax.get_xscale() == "log"


def test_pool_map_puts_each_position_where_its_table_says():
    fig = pool_map({"A": [3, 0], "B": [1, 3]}, {"A": 6, "B": 2}, n_blocks=4, block_size=4)
    owner = image(fig, "pool").get_array()  # [block_size, n_blocks]
    # A: positions 0-3 in block 3, 4-5 in block 0; B: positions 0-1 in block 1 (and shares block 3's table entry)
    want = np.full((4, 4), -1)
    want[:, 3], want[:2, 0], want[:2, 1] = 0, 0, 1
    np.testing.assert_array_equal(owner, want)
    texts = {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text() for t in fig.axes[0].texts}
    assert texts[(3, 2)] == "2" and texts[(0, 1)] == "5" and texts[(1, 1)] == "1"
    assert not [p for p in fig.axes[0].patches if p.get_gid() == "shared"]


def test_pool_map_hatches_blocks_two_sequences_share():
    fig = pool_map({"A": [2, 0], "B": [2, 1]}, {"A": 6, "B": 5}, n_blocks=3, block_size=4)
    shared = [p.get_xy() for p in fig.axes[0].patches if p.get_gid() == "shared"]
    assert sorted(shared) == [(1.5, o - 0.5) for o in range(4)]  # block 2, all four offsets


def test_block_states_one_cell_per_block_with_counts():
    fig = block_states(["used", "cached", "free", "free", "used"])
    np.testing.assert_array_equal(image(fig, "blocks").get_array(), [[0, 1, 2, 2, 0]])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["used: 2", "cached: 1", "free: 2"]
    fig = block_states(["cached", "cached", "free"], ["A", "B", ""])
    assert [(t.get_position()[0], t.get_text()) for t in fig.axes[0].texts if t.get_gid() == "label"] == [
        (0, "A"),
        (1, "B"),
        (2, ""),
    ]


def test_figures_draw_into_given_axes_and_refuse_a_wrong_argument():
    fig, axes = subplots(1, 2)
    assert reserved_memory(LENGTHS, 64, 8, ax=axes[0]) is fig
    assert filled_share_by_block_size(LENGTHS, [1, 8], ax=axes[1]) is fig
    with pytest.raises(InvalidInputError, match="block_states"):
        block_states(["used", "borrowed"])
