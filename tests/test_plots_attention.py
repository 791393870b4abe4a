"""The attention figures, read back from the artists they draw.

The weights here are small hand-made softmax rows, so every expected pixel value, blank cell and
label can be checked by eye. No model is loaded and nothing is timed.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from plot_helpers import image, line

from minfer.attention import causal_mask
from minfer.layers import softmax
from minfer.plots.attention import attention_growth, attention_heads, attention_map, causal_blank

TOKENS = ["In", " the", " beginning"]
# a causal head on 3 tokens: row i spreads its weight over keys 0..i, nothing right of the diagonal
PROBS = np.array([[1.0, 0.0, 0.0], [0.25, 0.75, 0.0], [0.5, 0.2, 0.3]], dtype=np.float32)  # [n_q, n_k]


def tick_texts(ticks) -> list[str]:
    return [t.get_text() for t in ticks]


# ---------------------------------------------------------------- attention_map


def test_the_image_is_the_weights_with_the_future_blank():
    fig = attention_map(PROBS, TOKENS)
    data = np.ma.filled(image(fig, "attention").get_array().astype(float), np.nan)  # [3, 3]
    expected = np.array([[1.0, np.nan, np.nan], [0.25, 0.75, np.nan], [0.5, 0.2, 0.3]])
    np.testing.assert_allclose(data, expected, rtol=1e-6)  # NaN where expected is NaN, equal elsewhere


def test_blank_cells_are_drawn_white_not_as_weight_zero():
    im = image(attention_map(PROBS, TOKENS), "attention")
    assert im.get_clim() == (0.0, 1.0)  # one scale for every head
    assert im.cmap.get_bad()[:3] == pytest.approx((1.0, 1.0, 1.0))  # masked: white
    assert im.cmap(0.0)[:3] != pytest.approx((1.0, 1.0, 1.0))  # weight 0: a colour, not white


def test_tick_labels_are_the_tokens_keys_across_queries_down():
    ax = attention_map(PROBS, TOKENS).axes[0]
    assert tick_texts(ax.get_xticklabels()) == TOKENS
    assert tick_texts(ax.get_yticklabels()) == TOKENS
    assert "key" in ax.get_xlabel() and "query" in ax.get_ylabel()


def test_queries_after_a_cache_are_the_last_tokens_and_see_everything_before_them():
    # 1 query at position 2 after 2 cached keys: causal_mask(1, 3) is a row of zeros, so nothing is blank
    row = np.array([[0.2, 0.3, 0.5]])  # [1, 3]
    fig = attention_map(row, TOKENS)
    assert not np.isnan(np.ma.filled(image(fig, "attention").get_array().astype(float), np.nan)).any()
    assert tick_texts(fig.axes[0].get_yticklabels()) == [" beginning"]
    # 2 queries after 1 cached key: only the first query has a future (key 2)
    two = np.array([[0.4, 0.6, 0.0], [0.1, 0.1, 0.8]])  # [2, 3]
    data = np.ma.filled(image(attention_map(two, TOKENS), "attention").get_array().astype(float), np.nan)
    assert np.isnan(data).tolist() == [[False, False, True], [False, False, False]]


def test_causal_blank_is_where_the_library_mask_is_minus_inf():
    for n_q, n_k in [(1, 1), (4, 4), (1, 5), (2, 5), (3, 7)]:
        np.testing.assert_array_equal(causal_blank(n_q, n_k), np.isneginf(causal_mask(n_q, n_k)))


def test_real_softmax_output_is_accepted_and_drawn_unchanged():
    scores = np.random.default_rng(0).standard_normal((5, 5)).astype(np.float32)  # [5, 5]
    probs = softmax(scores + causal_mask(5, 5))  # [5, 5], exact zeros in the future
    data = np.ma.filled(image(attention_map(probs), "attention").get_array().astype(float), np.nan)
    lower = np.tril(np.ones((5, 5), bool))
    np.testing.assert_allclose(data[lower], probs[lower], rtol=1e-6)
    assert np.isnan(data[~lower]).all()
    assert tick_texts(attention_map(probs).axes[0].get_xticklabels()) == ["0", "1", "2", "3", "4"]


def test_without_the_mask_every_cell_is_drawn():
    full = np.full((3, 3), 1 / 3)  # [3, 3] uniform: weight on the future too
    data = np.asarray(image(attention_map(full, TOKENS, causal=False), "attention").get_array(), float)
    np.testing.assert_allclose(data, full)


def test_newlines_in_tokens_do_not_break_the_axis():
    ax = attention_map(PROBS, ["a", "\n", "b"]).axes[0]
    assert tick_texts(ax.get_xticklabels())[1] == "\\n"


def test_title_colorbar_and_drawing_into_given_axes():
    fig = attention_map(PROBS, TOKENS, title="layer 0, head 1")
    assert fig.axes[0].get_title() == "layer 0, head 1"
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "attention weight"  # the colour bar
    mine = Figure()
    ax = mine.add_subplot(1, 2, 2)
    assert attention_map(PROBS, TOKENS, ax=ax, colorbar=False) is mine
    assert len(mine.axes) == 1 and image(mine, "attention") is ax.images[0]


def test_a_figure_renders_to_png():
    assert attention_map(PROBS, TOKENS)._repr_png_().startswith(b"\x89PNG")


# ---------------------------------------------------------------- attention_heads


def test_one_panel_per_head_each_image_its_own_weights():
    other = np.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0]])  # [3, 3]: a "first token" head
    maps = np.stack([PROBS, other])  # [2, 3, 3]
    fig = attention_heads(maps, TOKENS, titles=["prev", "first"])
    for i, expected in enumerate(maps):
        data = np.ma.filled(image(fig, f"attention:{i}").get_array().astype(float), np.nan)
        lower = np.tril(np.ones((3, 3), bool))
        np.testing.assert_allclose(data[lower], expected[lower], rtol=1e-6)
        assert np.isnan(data[~lower]).all()
    titled = [ax.get_title() for ax in fig.axes if ax.images]
    assert titled == ["prev", "first"]
    assert sum(ax.get_ylabel() == "attention weight" for ax in fig.axes) == 1  # one shared colour bar


def test_the_grid_wraps_at_ncols_and_hides_its_spare_cells():
    maps = np.stack([PROBS] * 5)  # [5, 3, 3]
    fig = attention_heads(maps, TOKENS, ncols=2, title="layer 0")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 5
    hidden = [ax for ax in fig.axes if not ax.get_visible()]
    assert len(hidden) == 1  # a 3 x 2 grid holds 6
    assert fig.get_suptitle() == "layer 0"
    assert [ax.get_title() for ax in panels] == [f"head {i}" for i in range(5)]


# ---------------------------------------------------------------- attention_growth


def test_growth_draws_each_series_and_guides_through_the_last_point():
    n = [64, 128, 256]
    series = {"attention": np.array([1.0, 4.0, 16.0]), "projections": np.array([2.0, 4.0, 8.0])}  # as lesson 03's
    fig = attention_growth(n, series, ylabel="ms")
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert list(line(ax, "series:attention").get_ydata()) == [1.0, 4.0, 16.0]
    assert list(line(ax, "series:projections").get_xdata()) == [64, 128, 256]
    # through (256, 16): slope 1 halves per halving of n, slope 2 quarters
    assert list(line(ax, "slope:1").get_ydata()) == pytest.approx([4.0, 8.0, 16.0])
    assert list(line(ax, "slope:2").get_ydata()) == pytest.approx([1.0, 4.0, 16.0])
    assert tick_texts(ax.get_xticklabels()) == ["64", "128", "256"]
    assert ax.get_ylabel() == "ms"


def test_growth_has_a_default_title_and_none_when_it_is_empty():
    series = {"a": np.array([1.0, 2.0])}
    assert attention_growth([64, 128], series, ylabel="ms").axes[0].get_title() == "ms against n"
    assert attention_growth([64, 128], series, ylabel="ms", title="").axes[0].get_title() == ""
