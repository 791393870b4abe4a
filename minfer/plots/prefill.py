"""How prefill scales with the prompt, and what the KV cache saves (lessons 04 and 05). Artist
gids: "time", "time_at_peak", "gflops", "peak", "share"; "cached", "recompute", "ratio" (with
"flops_" in front on the FLOP panel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from minfer.perf.report import fmt
from minfer.plots.common import figure_function, phase_style, root_figure, subplots

CACHED_COLOR, RECOMPUTE_COLOR = "tab:blue", "tab:red"
BOLD = {"fontsize": 9, "fontweight": "bold"}  # the numbers written on the curves


@figure_function
def prefill_scaling(
    rows: Sequence[Mapping],
    peak_gflops: float | None = None,
    *,
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
) -> Figure:
    """Prefill time and achieved GFLOP/s against prompt length (rows in any order), beside FLOPs /
    `peak_gflops` (the matmul peak) and a line at the peak when it is given.

        >>> prefill_scaling([{"tokens": 64, "flops": prefill_cost(arch, 64).flops, "seconds": 4e-3}], 70.0)
    """
    fig, (ax_time, ax_rate) = _figure(axes, 2)
    rows = sorted(rows, key=lambda row: row["tokens"])
    tokens, flops, seconds = np.array([(r["tokens"], r["flops"], r["seconds"]) for r in rows], float).T  # [n_rows] each
    _draw_time(ax_time, tokens, flops, seconds, peak_gflops)
    _draw_rate(ax_rate, tokens, flops / seconds / 1e9, peak_gflops)
    for ax in (ax_time, ax_rate):  # prompt lengths on a log2 axis, written 1, 2, 4, ... rather than 2^0, 2^1, ...
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.set_xlabel("prompt length (tokens)")
        ax.grid(True, which="major", alpha=0.3)
    if title is not None:
        fig.suptitle(title)
    return fig


def _draw_time(ax: Axes, tokens: np.ndarray, flops: np.ndarray, seconds: np.ndarray, peak: float | None) -> None:
    """ms per prefill; with a peak, the least time the same FLOPs need at that rate."""
    color, marker = phase_style("prefill")  # prefill's colour in every figure (the roofline's too)
    ax.plot(tokens, seconds * 1e3, "-", marker=marker, color=color, mec="black", gid="time", label="measured")
    if peak is not None:
        at_peak = flops / peak / 1e6  # [n_rows] ms: FLOP / (GFLOP/s) is ns
        ax.plot(tokens, at_peak, ":", color="black", gid="time_at_peak", label=f"FLOPs / peak ({fmt(peak)} GFLOP/s)")
    ax.set(yscale="log", ylabel="ms per prefill", title="time: fixed costs first, then linear in tokens")
    ax.legend(loc="upper left", fontsize=8)


def _draw_rate(ax: Axes, tokens: np.ndarray, gflops: np.ndarray, peak: float | None) -> None:
    """Achieved GFLOP/s; with a peak, a line at it and the longest prompt's share of it."""
    color, marker = phase_style("prefill")
    ax.plot(tokens, gflops, "-", marker=marker, color=color, mec="black", gid="gflops", label="prefill, achieved")
    if peak is not None:
        ax.axhline(peak, color="black", lw=1.5, gid="peak", label=f"matmul peak: {fmt(peak)} GFLOP/s")
        # halfway up to the peak, right-aligned at the last point: above the curve, which rises from the left
        at, text_at = (tokens[-1], gflops[-1]), (tokens[-1], (gflops[-1] + peak) / 2)
        share, arrow = f"{gflops[-1] / peak:.0%} of peak", {"arrowstyle": "->", "color": color}
        ax.annotate(share, at, text_at, ha="right", va="center", color=color, gid="share", arrowprops=arrow, **BOLD)
    top = max(gflops.max(), peak or 0.0) * 1.15
    ax.set(ylim=(0, top), ylabel="achieved GFLOP/s", title="rate: more rows share each weight read")
    ax.legend(loc="lower right", fontsize=8)  # under the curve, which rises to the right


@figure_function
def generation_cost(
    seconds_cached: Sequence[float],
    seconds_recompute: Sequence[float],
    flops_cached: Sequence[float] | None = None,
    flops_recompute: Sequence[float] | None = None,
    *,
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
) -> Figure:
    """Running totals after each new token ([n_new] each) with the KV cache and recomputing every
    step: seconds measured and, if given, FLOPs counted (a second panel). axes: one or two Axes.

        >>> fig = generation_cost([1.0, 2.0, 3.0], [1.0, 3.0, 6.0], [2e9, 4e9, 6e9], [2e9, 6e9, 12e9])
    """
    panels = [("s", seconds_cached, seconds_recompute)]
    if flops_cached is not None:
        panels.append(("FLOP", flops_cached, flops_recompute))
    fig, axes = _figure(axes, len(panels))
    for ax, (unit, cached, recompute) in zip(axes, panels):
        _draw_running_totals(ax, unit, np.asarray(cached, float), np.asarray(recompute, float))  # [n_new] each
    if title is not None:
        fig.suptitle(title)
    return fig


def _draw_running_totals(ax: Axes, unit: str, cached: np.ndarray, recompute: np.ndarray) -> None:
    """Both running totals against tokens generated, and the final ratio."""
    n = np.arange(1, len(cached) + 1)  # [n_new]: tokens generated
    scale, label, how, prefix = (1e3, "ms", "measured", "") if unit == "s" else (1e-9, "GFLOP", "counted", "flops_")
    ax.plot(n, cached * scale, color=CACHED_COLOR, lw=2, gid=prefix + "cached", label="KV cache: prefill, then decode")
    no_cache = "no cache: recompute every step"
    ax.plot(n, recompute * scale, color=RECOMPUTE_COLOR, lw=2, gid=prefix + "recompute", label=no_cache)
    ratio, end = f"{recompute[-1] / cached[-1]:.1f}x", (n[-1], recompute[-1] * scale)
    ax.annotate(ratio, end, ha="right", va="bottom", color=RECOMPUTE_COLOR, gid=prefix + "ratio", **BOLD)
    ax.set(xlim=(0, n[-1] * 1.02), ylim=(0, max(cached[-1], recompute[-1]) * scale * 1.08))
    ax.set(xlabel="tokens generated (N)", ylabel=f"{label} to generate N tokens ({how})")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)


def _figure(axes: Sequence[Axes] | None, n: int) -> tuple[Figure, Sequence[Axes]]:
    """A new figure with `n` panels side by side, or the given axes and their figure."""
    return subplots(1, n, figsize=(5.5 * n, 4)) if axes is None else (root_figure(axes[0]), axes)
