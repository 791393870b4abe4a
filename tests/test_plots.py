"""The roofline and timeline figures, read back from the artists they draw.

Profiles here are synthetic dicts in the schema of `Profiler.to_dict()` (which the figures check
once and convert to a `Profile`; tests/test_profile.py tests that), with round numbers so every
expected coordinate can be worked out by hand. Nothing is timed. No backend is chosen:
the figures never touch pyplot, and savefig renders PNG and SVG without one.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.perf.profile import SweepRow
from minfer.plots import roofline, save_figure, timeline

PEAK, BANDWIDTH = 400.0, 20.0  # GFLOP/s, GB/s -> ridge at 20 FLOP/byte
CEILINGS = {"peak_gflops": PEAK, "bandwidth_gbs": BANDWIDTH}


def phase(calls: int, tokens: int, flops: float, nbytes: float, seconds: float) -> dict:
    """A phase entry with the derived rates filled in as the profiler does."""
    ran = calls > 0  # a phase that never ran reports 0 everywhere
    rates = {
        "flop_per_byte": flops / nbytes if ran else 0,
        "gflops": flops / seconds / 1e9 if ran else 0,
        "gbs": nbytes / seconds / 1e9 if ran else 0,
    }
    return {
        "calls": calls,
        "tokens": tokens,
        "flops": flops,
        "bytes": nbytes,
        "bytes_read": nbytes,
        "bytes_written": 0,
        "seconds": seconds,
        **rates,
    }


def op(ph: str, layer: int | None, name: str, flops: float, nbytes: float, seconds: float | None) -> dict:
    """One op of one layer (layer None: outside the blocks); seconds None: not timed."""
    return {
        "phase": ph,
        "layer": layer,
        "op": name,
        "calls": 1,
        "flops": flops,
        "bytes_read": nbytes,
        "bytes_written": 0,
        "bytes": nbytes,
        "seconds": seconds,
    }


def step(ph: str, tokens: int, context: int, seconds: float, batch: int = 1, kv_bytes: int | None = None) -> dict:
    """A model call of 2 GFLOP per token over 1 GB; the KV cache holds 1000 bytes per position."""
    kv = context * 1000 * batch if kv_bytes is None else kv_bytes
    return {
        "phase": ph,
        "tokens": tokens,
        "batch": batch,
        "context": context,
        "kv_bytes": kv,
        "flops": 2e9 * tokens,
        "bytes": 1e9,
        "seconds": seconds,
    }


def make_profile(ops: list[dict] | None = None, mode: str = "ops") -> dict:
    """Prefill of 8 tokens (16 GFLOP over 2 GB: 8 FLOP/byte, 0.1 s: 160 GFLOP/s) and 3 decode
    steps (6 GFLOP over 6 GB: 1 FLOP/byte, 0.6 s: 10 GFLOP/s); forward never ran."""
    if ops is None:
        ops = [
            op("prefill", 0, "mlp.c_fc", 8e9, 1e9, 0.04),
            op("prefill", 1, "mlp.c_fc", 4e9, 2e9, 0.01),
            op("decode", 0, "mlp.c_fc", 1e9, 1e9, 0.1),
            op("decode", 1, "mlp.c_fc", 2e9, 4e9, 0.1),
            op("decode", None, "lm_head", 3e9, 3e9, 0.3),
        ]
    return {
        "model": {"name": "tiny", "n_params": 1000, "weight_bytes": 4000, "backend": "numpy"},
        "mode": mode,
        "phases": {
            "prefill": phase(1, 8, 16e9, 2e9, 0.1),
            "decode": phase(3, 3, 6e9, 6e9, 0.6),
            "forward": phase(0, 0, 0, 0, 0),
        },
        "ops": ops,
        "steps": [
            step("prefill", 8, 8, 0.1),
            step("decode", 1, 9, 0.2),
            step("decode", 1, 10, 0.2),
            step("decode", 1, 11, 0.2),
        ],
    }


def artist(ax, gid: str):
    """The one line drawn with this gid."""
    found = [line for line in ax.get_lines() if line.get_gid() == gid]
    assert len(found) == 1, f"expected one line with gid {gid!r}, got {len(found)}"
    return found[0]


def points(line) -> list[tuple[float, float]]:
    """The (x, y) a line was drawn through."""
    return list(zip(np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)))


def texts(ax) -> list[str]:
    """Every text and annotation on the axes."""
    return [t.get_text() for t in ax.texts]


# ---------------------------------------------------------------- roofline


def test_roofline_is_a_log_log_figure():
    fig = roofline(make_profile(), CEILINGS)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")


def test_roof_is_bandwidth_times_intensity_then_flat_at_peak():
    ax = roofline(make_profile(), CEILINGS).axes[0]
    x, y = np.asarray(artist(ax, "roof").get_xdata()), np.asarray(artist(ax, "roof").get_ydata())
    ridge = PEAK / BANDWIDTH
    below, above = x < ridge, x > ridge
    assert below.any() and above.any()
    np.testing.assert_allclose(y[below], BANDWIDTH * x[below], rtol=1e-12)
    np.testing.assert_allclose(y[above], PEAK, rtol=1e-12)
    assert x.min() <= 0.05 and x.max() >= 10 * ridge
    assert ridge in x  # the corner is drawn exactly, not cut by a chord
    assert any(t.startswith("compute roof: 400 GFLOP/s") for t in texts(ax))
    assert any(t.startswith("memory: 20.0 GB/s") for t in texts(ax))  # 3 figures, as minfer.perf.report.fmt
    assert any("ridge" in t and "20.0 FLOP/byte" in t for t in texts(ax))


def test_ceilings_may_be_an_object_or_a_dict():
    as_dict = artist(roofline(make_profile(), CEILINGS).axes[0], "roof")
    as_object = artist(roofline(make_profile(), SimpleNamespace(**CEILINGS)).axes[0], "roof")
    np.testing.assert_array_equal(as_dict.get_ydata(), as_object.get_ydata())


def test_phase_points_sit_at_intensity_and_achieved_rate():
    ax = roofline(make_profile(), CEILINGS).axes[0]
    assert points(artist(ax, "phase:prefill")) == [pytest.approx((16e9 / 2e9, 16e9 / 0.1 / 1e9))]
    assert points(artist(ax, "phase:decode")) == [pytest.approx((6e9 / 6e9, 6e9 / 0.6 / 1e9))]
    assert not [line for line in ax.get_lines() if line.get_gid() == "phase:forward"]  # 0 calls
    labels = texts(ax)
    assert any(t.startswith("prefill 8 tok") for t in labels)
    assert any(t.startswith("decode, batch 1") for t in labels)
    assert "decode, batch 1\n50% of roof" in labels  # 10 GFLOP/s under the roof's 20 GB/s * 1 FLOP/B


def test_ops_are_summed_over_layers_into_one_point_per_name():
    ax = roofline(make_profile(), CEILINGS).axes[0]
    # prefill mlp.c_fc: (8 + 4 GFLOP, 1 + 2 GB, 0.04 + 0.01 s) -> 4 FLOP/B at 240 GFLOP/s, which
    # is neither layer's point (8, 200), (2, 400) nor the mean of them (5, 300)
    assert points(artist(ax, "ops:prefill")) == [pytest.approx((4.0, 240.0))]
    # decode mlp.c_fc: (1 + 2 GFLOP, 1 + 4 GB, 0.1 + 0.1 s); lm_head stays its own point
    assert sorted(points(artist(ax, "ops:decode"))) == [pytest.approx((0.6, 15.0)), pytest.approx((1.0, 10.0))]
    assert {"mlp.c_fc", "lm_head"} <= set(texts(ax))


def test_only_the_three_slowest_ops_of_a_phase_are_named():
    ops = [op("decode", 0, f"op{i}", 1e9, 1e9, 0.01 * i) for i in range(1, 6)]  # op5 slowest
    ax = roofline(make_profile(ops), CEILINGS).axes[0]
    assert len(artist(ax, "ops:decode").get_xdata()) == 5
    named = set(texts(ax))
    assert {"op5", "op4", "op3"} <= named and not {"op2", "op1"} & named


def test_ops_that_cannot_sit_on_log_axes_are_skipped_and_noted():
    ops = [
        op("decode", 0, "mlp.c_fc", 1e9, 1e9, 0.1),
        op("decode", 0, "residual", 0, 1e6, 0.001),  # no FLOPs
        op("decode", 0, "gelu", 1e6, 1e6, 0.0),
    ]  # not timed
    ax = roofline(make_profile(ops), CEILINGS).axes[0]
    assert points(artist(ax, "ops:decode")) == [pytest.approx((1.0, 10.0))]
    note = [t for t in ax.texts if t.get_gid() == "note"]
    assert len(note) == 1 and "skipped 2" in note[0].get_text()
    assert "decode residual" in note[0].get_text() and "decode gelu" in note[0].get_text()


def test_phase_only_profiles_place_no_ops_and_say_why():
    ops = [op("decode", 0, "mlp.c_fc", 1e9, 1e9, None)]
    ax = roofline(make_profile(ops, mode="phases"), CEILINGS).axes[0]
    assert not [line for line in ax.get_lines() if (line.get_gid() or "").startswith("ops:")]
    assert any("phases only" in t for t in texts(ax))


def test_a_clean_profile_gets_no_note():
    ax = roofline(make_profile(), CEILINGS, ops=False).axes[0]
    assert not [t for t in ax.texts if t.get_gid() == "note"]
    assert not [line for line in ax.get_lines() if (line.get_gid() or "").startswith("ops:")]


def test_sweep_points_are_joined_in_batch_order_and_labelled():
    sweep = [SweepRow(2e9 * b, 1e9 + 1e8 * b, 0.05 + 0.001 * b, batch=b, tokens=b) for b in (8, 1, 32)]
    ax = roofline(make_profile(), CEILINGS, sweep=sweep).axes[0]
    xs = [x for x, _ in points(artist(ax, "sweep"))]
    assert xs == pytest.approx([2e9 * b / (1e9 + 1e8 * b) for b in (1, 8, 32)])
    assert xs == sorted(xs)  # a bigger batch moves decode right
    assert {"B=1", "B=8", "B=32"} <= set(texts(ax))


def test_roofline_draws_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert roofline(make_profile(), CEILINGS, ax=ax, title="mine") is fig
    assert ax.get_title() == "mine" and ax.get_xscale() == "log"


def test_the_note_stays_inside_axes_that_no_layout_engine_will_make_room_for():
    ops = [op("decode", 0, "residual", 0, 1e6, 0.001)]
    inside = roofline(make_profile(ops), CEILINGS, ax=Figure().add_subplot())
    outside = roofline(make_profile(ops), CEILINGS)
    (note_in,), (note_out,) = ([t for t in f.axes[0].texts if t.get_gid() == "note"] for f in (inside, outside))
    assert note_in.xyann[1] > 0 > note_out.xyann[1]  # offset in points above / below the axes' bottom


# ---------------------------------------------------------------- timeline


def test_timeline_has_a_bar_per_step_and_a_kv_axis():
    profile = make_profile()
    fig = timeline(profile)
    ax, kv_ax = fig.axes
    bars = ax.containers[0]
    assert len(bars) == len(profile["steps"])
    assert [b.get_height() for b in bars] == pytest.approx([100.0, 200.0, 200.0, 200.0])  # ms
    assert bars[0].get_facecolor() != bars[1].get_facecolor()  # the first token's wait stands out
    assert bars[1].get_facecolor() == bars[3].get_facecolor()
    assert any("100 ms" in t for t in texts(ax))
    kv = artist(kv_ax, "kv")
    assert list(kv.get_ydata()) == pytest.approx([s["kv_bytes"] / 1e6 for s in profile["steps"]])
    assert "MB" in kv_ax.get_ylabel()
    assert ax.get_ylabel() == "ms per step"


def test_timeline_shows_positions_when_kv_bytes_are_unknown_and_tokens_per_batched_step():
    profile = make_profile()
    profile["steps"] = [step("prefill", 8, 8, 0.1, kv_bytes=0)] + [
        step("decode", 4, 9 + i, 0.2, batch=4, kv_bytes=0) for i in range(3)
    ]
    ax, kv_ax = timeline(profile).axes
    assert list(artist(kv_ax, "kv").get_ydata()) == [8, 9, 10, 11]
    assert ax.get_ylabel() == "ms per step (4 tokens)"


def test_timeline_with_ceilings_draws_each_steps_roofline_bound():
    ax = timeline(make_profile(), ceilings=CEILINGS).axes[0]
    # prefill: max(16 GFLOP / 400, 1 GB / 20) = 0.05 s; decode: max(2 / 400, 1 / 20) = 0.05 s
    assert list(artist(ax, "bound").get_ydata()) == pytest.approx([50.0, 50.0, 50.0, 50.0])


def test_timeline_draws_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert timeline(make_profile(), ax=ax, title="steps") is fig
    assert ax.get_title() == "steps"


# ---------------------------------------------------------------- saving and checking


def test_save_figure_writes_png_and_svg(tmp_path):
    fig = timeline(make_profile())
    png = save_figure(fig, tmp_path / "out" / "t.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    svg = save_figure(roofline(make_profile(), CEILINGS), str(tmp_path / "r.SVG"))
    assert "<svg" in svg.read_text()


def test_save_figure_rejects_other_suffixes(tmp_path):
    with pytest.raises(InvalidInputError, match=r"^the figure.s path must end in \.png or \.svg, got .*t\.jpg"):
        save_figure(timeline(make_profile()), tmp_path / "t.jpg")
    assert not (tmp_path / "t.jpg").exists()


def test_a_figure_shows_itself_in_jupyter_without_pyplot():
    assert roofline(make_profile(), CEILINGS)._repr_png_().startswith(b"\x89PNG")


def test_ceilings_without_two_positive_numbers_send_you_to_calibrate():
    for ceilings in (None, {"peak_gflops": 100.0}, {"peak_gflops": 100.0, "bandwidth_gbs": 0.0}):
        with pytest.raises(InvalidInputError, match="minfer calibrate"):
            roofline(make_profile(), ceilings)


# ---------------------------------------------------------------- what the review found


def test_numbers_are_written_as_the_report_writes_them():
    ax = roofline(make_profile(), SimpleNamespace(peak_gflops=400.0, bandwidth_gbs=29.6)).axes[0]
    assert any(t.startswith("memory: 29.6 GB/s") for t in texts(ax))
    assert any("ridge I* = 13.5 FLOP/byte" in t for t in texts(ax))  # 400 / 29.6 = 13.51...
    profile = make_profile()
    profile["steps"][0]["seconds"] = 1.234e-8  # 0.00001234 ms: 3 figures, never scientific notation
    assert any("0.0000123 ms" in t for t in texts(timeline(profile).axes[0]))


def test_an_empty_title_means_no_title():
    assert roofline(make_profile(), CEILINGS, title="").axes[0].get_title() == ""
    assert timeline(make_profile(), title="").axes[0].get_title() == ""


def test_every_public_figure_names_itself_and_an_example_call_when_it_cannot_draw():
    import inspect

    import minfer.plots as plots

    figures = [f for name, f in vars(plots).items() if inspect.isfunction(f) and hasattr(f, "__wrapped__")]
    assert len(figures) >= 20  # every figure function of every lesson
    for f in figures:
        params = inspect.signature(f).parameters.values()
        required = [p for p in params if p.default is p.empty and p.kind == p.POSITIONAL_OR_KEYWORD]
        args = [CEILINGS if p.name == "ceilings" else object() for p in required]  # the right count, wrong kinds
        if f in (plots.roofline, plots.timeline):  # a profile from outside is checked by Profile.from_dict
            match = "profile must be a dict"
        else:
            match = r"^\w+\(\) cannot draw these arguments \(.*\); call it as its docstring shows: "  # or a part's
        with pytest.raises(InvalidInputError, match=match):
            f(*args)
