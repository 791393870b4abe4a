"""Lesson 08's figures, read back from the artists they draw.

They are pure functions of the counts, so each drawn value is checked against the Cost it
promises to show; the KV cache's bytes are also worked out by hand from GPT-2 small's shape.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from plot_helpers import area, line

from minfer.perf.counts import ARCHS, Arch, decode_cost, prefill_cost
from minfer.plots.costs import byte_shares, decode_byte_shares, intensity_by_length

GPT2 = ARCHS["gpt2"]  # 12 layers, 768 wide, 1024 positions, float32
SMALL = Arch("tiny", n_layer=2, n_embd=64, n_head=4, n_kv_head=4, d_head=16, d_ff=256, n_vocab=100, n_ctx=32)


def top_edge(collection, xs) -> np.ndarray:
    """[len(xs)]: the highest y of a filled area at each x (its upper boundary)."""
    vertices = collection.get_paths()[0].vertices  # [n_vertices, 2]
    return np.array([vertices[np.isclose(vertices[:, 0], x), 1].max() for x in xs])


def shares_of(arch, t: int, n_batch: int = 1) -> tuple[float, float, float]:
    """(weights, KV cache, activations) shares of one decode step's bytes, straight from its Cost."""
    c = decode_cost(arch, n_past=t - 1, n_batch=n_batch)
    return c.weight_bytes / c.bytes, (c.kv_read + c.kv_write) / c.bytes, (c.act_read + c.act_write) / c.bytes


# ---------------------------------------------------------------- byte shares


def test_the_kv_share_is_the_cache_read_and_written_over_all_the_bytes():
    t = GPT2.n_ctx
    kv = 4 * 2 * 12 * 768 * t + 4 * 2 * 12 * 768  # T keys and values read per layer, one of each written
    shares = decode_byte_shares(GPT2, [1, t])
    assert shares.shape == (2, 3)
    assert shares[1, 1] == pytest.approx(kv / decode_cost(GPT2, t - 1).bytes, rel=1e-12)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-12)
    assert shares[1, 1] > shares[0, 1]  # the cache grows with the context, the weights do not


def test_the_stack_is_weights_then_kv_cache_then_activations_up_to_one():
    fig = byte_shares(SMALL, compare_batch=None)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    ts = [1, 16, 32]  # 48 points over 1..32 positions: every whole context is drawn
    expected = np.array([shares_of(SMALL, t) for t in ts])  # [3, 3]
    np.testing.assert_allclose(top_edge(area(ax, "share:weights"), ts), expected[:, 0], rtol=1e-12)
    np.testing.assert_allclose(top_edge(area(ax, "share:kv_cache"), ts), expected[:, :2].sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(top_edge(area(ax, "share:activations"), ts), 1.0, rtol=1e-12)
    assert ax.get_xlim() == (1, 32) and ax.get_ylim() == (0, 1)
    assert ax.get_title() == "tiny: one decode step's bytes"
    colors = [to_rgba(area(ax, f"share:{name}").get_facecolor()[0], None) for name in ("weights", "kv_cache")]
    assert colors == [to_rgba("tab:blue", 0.8), to_rgba("tab:red", 0.8)]
    assert not [ln for ln in ax.get_lines() if ln.get_gid() == "batch_weights"]


def test_the_dashed_line_is_the_weights_share_of_a_batched_step():
    ax = byte_shares(GPT2, compare_batch=16, points=5, title="GPT-2 small").axes[0]
    batched = line(ax, "batch_weights")
    xs = np.asarray(batched.get_xdata())
    assert list(xs) == [1, 256, 512, 768, 1024]  # np.linspace(1, 1024, 5): 1, 256.75, 512.5, 768.25, 1024
    np.testing.assert_allclose(batched.get_ydata(), [shares_of(GPT2, int(t), 16)[0] for t in xs], rtol=1e-12)
    assert batched.get_label() == "batch 16: weights below, the rest above"
    assert ax.get_title() == "GPT-2 small"


def test_byte_shares_draws_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert byte_shares(SMALL, ax=ax, title="") is fig
    assert fig.axes == [ax] and ax.get_title() == ""  # "" means no title
    np.testing.assert_allclose(top_edge(area(ax, "share:activations"), [1, 32]), 1.0, rtol=1e-12)
    assert line(ax, "batch_weights").get_label() == "batch 16: weights below, the rest above"


# ---------------------------------------------------------------- prefill against decode


def test_prefill_and_decode_lines_are_their_counts_flop_per_byte():
    ax = intensity_by_length({"classroom": SMALL, "GPT-2 small": GPT2}, 3.9, points=12).axes[0]
    for name, arch in [("classroom", SMALL), ("GPT-2 small", GPT2)]:
        pre, dec = line(ax, f"prefill:{name}"), line(ax, f"decode:{name}")
        n = np.asarray(pre.get_xdata(), int)
        assert n[0] == 1 and n[-1] == arch.n_ctx
        np.testing.assert_allclose(pre.get_ydata(), [prefill_cost(arch, k).flop_per_byte for k in n], rtol=1e-12)
        np.testing.assert_allclose(dec.get_ydata(), [decode_cost(arch, k - 1).flop_per_byte for k in n], rtol=1e-12)
        assert pre.get_ydata()[0] == dec.get_ydata()[0]  # a prefill of one token is a decode step with none cached
        assert pre.get_color() == dec.get_color() and pre.get_linestyle() == "-" and dec.get_linestyle() == "--"
    assert 0.45 < line(ax, "decode:GPT-2 small").get_ydata()[-1] < 0.55  # a matrix-vector product: 2 FLOP / 4 B


def test_the_ridge_and_the_half_line_are_where_they_say():
    ax = intensity_by_length([GPT2], 3.9, ridge_label="this core's ridge point").axes[0]
    assert list(line(ax, "ridge").get_ydata()) == [3.9, 3.9]
    assert line(ax, "ridge").get_label() == "this core's ridge point (3.90)"  # as minfer.perf.report.fmt writes it
    half = line(ax, "half")
    np.testing.assert_allclose(half.get_ydata(), np.asarray(half.get_xdata()) / 2)
    assert half.get_xdata()[-1] == 1024
    assert line(ax, "prefill:gpt2").get_label() == "gpt2: prefill of n tokens"  # a list: labelled by name
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")


def test_a_small_ridge_is_labelled_with_its_digits_not_zero():
    ax = intensity_by_length([GPT2], 0.0123).axes[0]
    assert line(ax, "ridge").get_label() == "ridge point of this machine (0.0123)"


def test_intensity_by_length_draws_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot(1, 2, 1)
    assert intensity_by_length({"classroom": SMALL}, 3.9, points=6, ax=ax, title="") is fig
    assert fig.axes == [ax] and ax.get_title() == ""
    assert line(ax, "prefill:classroom") and line(ax, "decode:classroom") and line(ax, "ridge") and line(ax, "half")
