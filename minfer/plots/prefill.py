"""The figures of lessons 04 and 05: how prefill scales with the prompt, and what the KV cache saves.

- `prefill_scaling`: prefill time and achieved GFLOP/s against prompt length, beside the time
  the same FLOPs would take at the machine's matmul peak and the peak itself. Short prompts
  leave most of the arithmetic units idle; long ones multiply each weight by many rows
  (matrix-matrix) and climb towards the peak.
- `generation_cost`: generating N tokens with the KV cache (one prefill, then one decode per
  token) against recomputing the whole sequence for every token: time measured and FLOPs
  counted, both cumulative, so the straight line and the parabola sit side by side.

Only the object API is used (never pyplot). Artists carry a `gid` ("time", "time_at_peak",
"gflops", "peak", "cached", "recompute", "flops_cached", "flops_recompute") so tests and
notebooks can find what was drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from minfer.errors import InvalidInputError
from minfer.perf.report import fmt
from minfer.plots.common import float_array, is_positive, phase_style, root_figure, subplots, whole_number

ROW_KEYS = ("tokens", "flops", "seconds")  # what prefill_scaling reads from each row
CACHED_COLOR, RECOMPUTE_COLOR = "tab:blue", "tab:red"


# ---------------------------------------------------------------- checking what comes in


def _check_rows(rows: Any) -> list[Mapping]:
    """The rows sorted by prompt length; raise InvalidInputError naming the first bad one."""
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence) or not rows:
        raise InvalidInputError(
            f"rows must be a non-empty list of dicts with {', '.join(ROW_KEYS)} (one per prompt "
            f"length), got {type(rows).__name__} {rows!r:.60}"
        )
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or any(key not in row for key in ROW_KEYS):
            raise InvalidInputError(
                f"rows[{i}] must be a dict with keys {list(ROW_KEYS)}, got {row!r}; e.g. "
                "{'tokens': 64, 'flops': prefill_cost(arch, 64).flops, 'seconds': 0.012}"
            )
        whole_number(row["tokens"], f"rows[{i}]['tokens']", 1)
        for key in ("flops", "seconds"):
            if not is_positive(row[key]):
                raise InvalidInputError(
                    f"rows[{i}][{key!r}] must be a positive finite number, got {row[key]!r}: "
                    "a rate needs FLOPs counted and a time measured"
                )
    tokens = [row["tokens"] for row in rows]
    if len(set(tokens)) != len(tokens):
        raise InvalidInputError(
            f"rows repeat a prompt length ({sorted(tokens)}); give one row per length, e.g. the median of the repeats"
        )
    return sorted(rows, key=lambda row: row["tokens"])


def _check_peak(peak_gflops: Any) -> float | None:
    """None, or the peak as a float."""
    if peak_gflops is None:
        return None
    if not is_positive(peak_gflops):
        raise InvalidInputError(
            f"peak_gflops must be a positive finite number or None, got {peak_gflops!r}; "
            "measure it with minfer.perf.calibrate.measure_matmul_gflops()"
        )
    return float(peak_gflops)


def _check_axes(axes: Any, n: int) -> Sequence[Axes] | None:
    """None, or `n` Axes to draw into."""
    if axes is None:
        return None
    if not isinstance(axes, (Sequence, np.ndarray)) or len(axes) != n or not all(isinstance(a, Axes) for a in axes):
        raise InvalidInputError(
            f"axes must be None or {n} matplotlib Axes (left panel, right panel), got {axes!r}; "
            f"e.g. fig, axes = minfer.plots.subplots(1, {n})"
        )
    return axes


def _check_cumulative(name: str, values: Any) -> np.ndarray:
    """A non-empty 1-D array of positive, finite, non-decreasing running totals."""
    arr = float_array(values, name)  # [n_new]
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInputError(
            f"{name} must be a non-empty 1-D sequence of running totals, one per token generated, got {values!r:.60}"
        )
    if np.any(arr <= 0) or np.any(np.diff(arr) < 0):
        raise InvalidInputError(
            f"{name} must be positive, finite and non-decreasing (entry i: the total after token "
            f"i + 1), got {arr[:6]}...; pass np.cumsum of per-token values"
        )
    return arr  # [n_new]


# ---------------------------------------------------------------- prefill_scaling


def prefill_scaling(
    rows: Sequence[Mapping],
    peak_gflops: float | None = None,
    *,
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
) -> Figure:
    """Prefill time (left, log-log) and achieved GFLOP/s (right) against prompt length.

    rows: one dict per prompt length, {"tokens": n, "flops": FLOPs of the pass (counted, e.g.
    `minfer.perf.counts.prefill_cost(arch, n).flops`), "seconds": its measured time}. peak_gflops:
    this machine's matmul peak (`minfer.perf.calibrate.measure_matmul_gflops()`); when given, the
    left panel adds the least time each pass could take (FLOPs / peak) and the right panel a
    line at the peak. axes: two Axes to draw into instead of a new figure.

        >>> rows = [{"tokens": 1, "flops": 2e6, "seconds": 1e-3},
        ...         {"tokens": 64, "flops": 1.3e8, "seconds": 4e-3}]
        >>> fig = prefill_scaling(rows, peak_gflops=70.0)
        >>> fig.axes[1].get_lines()[0].get_ydata()  # GFLOP/s: 2e6 / 1e-3 / 1e9, 1.3e8 / 4e-3 / 1e9
        array([ 2. , 32.5])
    """
    rows = _check_rows(rows)
    peak = _check_peak(peak_gflops)
    axes = _check_axes(axes, 2)
    if axes is None:
        fig, axes = subplots(1, 2, figsize=(11, 4))
    else:
        fig = root_figure(axes[0])
    tokens = np.array([row["tokens"] for row in rows], dtype=float)  # [n_rows]
    flops = np.array([row["flops"] for row in rows], dtype=float)  # [n_rows]
    seconds = np.array([row["seconds"] for row in rows], dtype=float)  # [n_rows]
    _draw_prefill_time(axes[0], tokens, flops, seconds, peak)
    _draw_prefill_rate(axes[1], tokens, flops / seconds / 1e9, peak)
    if title is not None:
        fig.suptitle(title)
    return fig


def _draw_prefill_time(
    ax: Axes, tokens: np.ndarray, flops: np.ndarray, seconds: np.ndarray, peak: float | None
) -> None:
    """ms per prefill; with a peak, the least time the same FLOPs need at that rate."""
    color, marker = phase_style("prefill")  # prefill's colour in every figure (the roofline's too)
    ax.plot(tokens, seconds * 1e3, "-", marker=marker, color=color, mec="black", gid="time", label="measured")
    if peak is not None:
        ax.plot(
            tokens,
            flops / (peak * 1e9) * 1e3,
            ":",
            color="black",
            gid="time_at_peak",
            label=f"FLOPs / peak ({fmt(peak)} GFLOP/s)",
        )
    _tokens_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel("ms per prefill")
    ax.set_title("time: fixed costs first, then linear in tokens")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)


def _draw_prefill_rate(ax: Axes, tokens: np.ndarray, gflops: np.ndarray, peak: float | None) -> None:
    """Achieved GFLOP/s; with a peak, a line at it and the longest prompt's share of it."""
    color, marker = phase_style("prefill")
    ax.plot(tokens, gflops, "-", marker=marker, color=color, mec="black", gid="gflops", label="prefill, achieved")
    top = max(gflops.max(), peak or 0.0)
    if peak is not None:
        ax.axhline(peak, color="black", lw=1.5, gid="peak", label=f"matmul peak: {fmt(peak)} GFLOP/s")
        # between the point and the peak, arrow down: the curve rises from the left, so the
        # text (right-aligned at the last x) stays above it
        ax.annotate(
            f"{gflops[-1] / peak:.0%} of peak",
            (tokens[-1], gflops[-1]),
            xytext=(tokens[-1], (gflops[-1] + peak) / 2),
            ha="right",
            va="center",
            fontsize=9,
            color=color,
            fontweight="bold",
            gid="share",
            arrowprops={"arrowstyle": "->", "color": color},
        )
    _tokens_axis(ax)
    ax.set_ylim(0, top * 1.15)
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title("rate: more rows share each weight read")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)  # under the curve, which rises to the right


def _tokens_axis(ax: Axes) -> None:
    """Prompt lengths on a log2 axis, written 1, 2, 4, ... rather than 2^0, 2^1, 2^2."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_xlabel("prompt length (tokens)")


# ---------------------------------------------------------------- generation_cost


def generation_cost(
    seconds_cached: Sequence[float],
    seconds_recompute: Sequence[float],
    flops_cached: Sequence[float] | None = None,
    flops_recompute: Sequence[float] | None = None,
    *,
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
) -> Figure:
    """Generating N tokens with the KV cache against recomputing every step, as running totals.

    seconds_*: seconds elapsed after each new token ([n_new] each, entry i after token i + 1),
    measured; flops_*: FLOPs done after each new token, counted (`minfer.perf.counts`). Left panel:
    time; right panel (only when both FLOP totals are given): FLOPs. With the cache each token
    costs about the same, a straight line; recomputing, each token costs more than the last.
    axes: one Axes (time only) or two to draw into instead of a new figure.

        >>> fig = generation_cost([1.0, 2.0, 3.0], [1.0, 3.0, 6.0], [2e9, 4e9, 6e9], [2e9, 6e9, 12e9])
        >>> [line.get_gid() for line in fig.axes[0].get_lines()]
        ['cached', 'recompute']
    """
    cached = _check_cumulative("seconds_cached", seconds_cached)  # [n_new]
    recompute = _check_cumulative("seconds_recompute", seconds_recompute)  # [n_new]
    if (flops_cached is None) != (flops_recompute is None):
        raise InvalidInputError("give both flops_cached and flops_recompute, or neither")
    series = [("s", cached, recompute)]
    if flops_cached is not None:
        series.append(
            (
                "FLOP",
                _check_cumulative("flops_cached", flops_cached),  # [n_new]
                _check_cumulative("flops_recompute", flops_recompute),
            )
        )  # [n_new]
    lengths = {len(a) for _, *pair in series for a in pair}
    if len(lengths) != 1:
        raise InvalidInputError(
            f"every running total needs one entry per token generated; got lengths {sorted(lengths)}"
        )
    axes = _check_axes(axes, len(series))
    if axes is None:
        fig, axes = subplots(1, len(series), figsize=(5.5 * len(series), 4))
    else:
        fig = root_figure(axes[0])
    for ax, (unit, with_cache, without) in zip(axes, series):
        _draw_running_totals(ax, unit, with_cache, without)
    if title is not None:
        fig.suptitle(title)
    return fig


def _draw_running_totals(ax: Axes, unit: str, cached: np.ndarray, recompute: np.ndarray) -> None:
    """Both running totals against tokens generated, and the final ratio."""
    n = np.arange(1, len(cached) + 1)  # [n_new]: tokens generated
    scale, label = (1e3, "ms") if unit == "s" else (1e-9, "GFLOP")
    prefix = "" if unit == "s" else "flops_"
    ax.plot(
        n, cached * scale, "-", color=CACHED_COLOR, lw=2, gid=f"{prefix}cached", label="KV cache: prefill, then decode"
    )
    ax.plot(
        n,
        recompute * scale,
        "-",
        color=RECOMPUTE_COLOR,
        lw=2,
        gid=f"{prefix}recompute",
        label="no cache: recompute every step",
    )
    ax.annotate(
        f"{recompute[-1] / cached[-1]:.1f}x",
        (n[-1], recompute[-1] * scale),
        xytext=(-4, 0),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=9,
        color=RECOMPUTE_COLOR,
        fontweight="bold",
        gid=f"{prefix}ratio",
    )
    ax.set_xlim(0, n[-1] * 1.02)
    ax.set_ylim(0, max(cached[-1], recompute[-1]) * scale * 1.08)
    ax.set_xlabel("tokens generated (N)")
    ax.set_ylabel(f"{label} to generate N tokens ({'measured' if unit == 's' else 'counted'})")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
