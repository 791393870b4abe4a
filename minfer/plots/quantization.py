"""int8 weights in two pictures: what the rounding costs, and what the bytes buy (lesson 11).

- `quantization_error`: the round-trip error `w - dequantize(quantize(w))` of every weight of one
  matrix, as two histograms on the same bins: one scale for the whole matrix (gid "per-tensor")
  and one scale per output column, minfer's format (gid "per-channel"). Every error is at most
  half its scale (up to float32 rounding); the dashed lines (gid "bound") are half the per-tensor
  scale, the widest any error can be. A column of small weights gets a small scale of its own,
  so its errors shrink.
- `time_against_bytes`: measured time against the bytes moved, log-log, one point per run
  (gid "point:<name>"), under the line time = bytes / bandwidth (gid "bandwidth"). A run on the
  line is memory-bound at this machine's bandwidth; above it, something else (arithmetic, fixed
  costs) sets the pace; below it, the bytes came from a cache faster than memory.

Only the object API is used (`minfer.plots.common`), never pyplot.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.fast.kernels.quant import dequantize_int8, quantize_int8
from minfer.plots.common import figure_and_axes, is_positive, whole_number

TENSOR_COLOR, COLUMN_COLOR = "tab:red", "tab:blue"


def round_trip_errors(w: np.ndarray, axis: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(w - w_q * scale, scale): each weight's int8 rounding error, and the scales, sharing a
    scale along `axis` (0: one per column, minfer's linear weights; (0, 1): one for all).

    The error is worked out in float64, exactly, so it is the stored format's own error and not
    float32's rounding of it.

        >>> err, scale = round_trip_errors(np.array([[1.0], [0.3]], np.float32), axis=0)
        >>> bool(np.all(np.abs(err) <= scale / 2))
        True
    """
    w_q, scale = quantize_int8(w, axis=axis)  # int8 like w; scale: w's shape without axis
    w_dq = dequantize_int8(w_q, scale.astype(np.float64), axis=axis)  # like w, float64: int8 x float32 is exact
    return np.asarray(w, np.float64) - w_dq, scale  # like w, like scale


def quantization_error(
    w: np.ndarray, *, axis: int = 0, bins: int = 60, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Histograms of the int8 round-trip error of every weight of `w`: one scale per tensor
    against one scale per channel along `axis` (0: per output column of a [n_in, n_out] matrix;
    1: per row, as for the embedding wte). The legend gives each one's RMS error.

    w: a 2-D float matrix. bins: how many bins span [-s / 2, s / 2], s the per-tensor scale.

        >>> fig = quantization_error(model.weights.h[0].mlp.c_fc.weight)   # [n_embd, 4 n_embd]
    """
    w = _check_matrix(w, axis, bins)
    err_t, scale_t = round_trip_errors(w, axis=(0, 1))  # like w; scale_t: a 0-d array
    err_c, _ = round_trip_errors(w, axis=axis)  # like w
    edges = np.linspace(-scale_t / 2, scale_t / 2, bins + 1)  # [bins + 1]: every error fits
    fig, ax = figure_and_axes(ax, figsize=(8, 4))
    channel = "column" if axis == 0 else "row"
    for err, gid, color, name in [
        (err_t, "per-tensor", TENSOR_COLOR, "one scale for the matrix"),
        (err_c, "per-channel", COLUMN_COLOR, f"one scale per {channel}"),
    ]:
        # rint(w / s) runs in float32, so an error can pass s / 2 by a hair: count it in the end bin
        counts, _ = np.histogram(np.clip(err, edges[0], edges[-1]), bins=edges)  # [bins], sum = w.size
        rms = float(np.sqrt(np.mean(err**2)))
        ax.stairs(counts, edges, color=color, lw=1.8, gid=gid, label=f"{name}: RMS error {rms:.3g}")
    for x in (-scale_t / 2, scale_t / 2):
        ax.axvline(float(x), color="black", ls="--", lw=1, gid="bound")
    default = f"int8 round-trip error of a {w.shape[0]} x {w.shape[1]} matrix"
    ax.set(
        xlabel="w - w_q * scale (the rounding error of one weight)",
        ylabel="weights",
        title=default if title is None else title,
    )
    ax.text(
        0.99,
        0.97,
        f"dashed: ± half the per-tensor scale, {float(scale_t) / 2:.3g}",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
        color="dimgray",
    )
    ax.margins(y=0.15)
    ax.legend(loc="upper left", fontsize=8, framealpha=1)
    return fig


def time_against_bytes(
    runs: Mapping[str, tuple[float, float]], bandwidth_gbs: float, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Each run's measured time against the bytes it moved, under the bandwidth line, log-log.

    runs: name -> (bytes moved, seconds taken), a tuple, list or array of two numbers, e.g.
    {"float32": (16e6, 2.1e-3), "int8": ...}.
    bandwidth_gbs: this machine's read bandwidth (`minfer.perf.calibrate.measure_bandwidth_gbs`).
    The axes are in MB and ms; each point is labelled with the GB/s it reached.

        >>> fig = time_against_bytes({"f32": (113e6, 9e-3), "int8": (28e6, 3e-3)}, 15.0)
    """
    runs = _check_runs(runs, bandwidth_gbs)  # name -> (bytes, seconds) as floats
    fig, ax = figure_and_axes(ax, figsize=(7, 4.5))
    mb = np.array([b for b, _ in runs.values()], np.float64) / 1e6  # [n_runs]
    lo, hi = mb.min() / 2, mb.max() * 2
    line_mb = np.array([lo, hi])  # [2]: a straight line on log-log axes needs its two ends
    ax.plot(
        line_mb,
        line_mb / bandwidth_gbs,
        color="black",
        lw=1.5,
        gid="bandwidth",
        label=f"bytes / bandwidth ({bandwidth_gbs:.3g} GB/s)",
    )  # MB / (GB/s) = ms
    for name, (nbytes, seconds) in runs.items():
        x, y = nbytes / 1e6, seconds * 1e3
        ax.plot([x], [y], "o", ms=9, mec="black", gid=f"point:{name}", label=name, zorder=3)
        ax.annotate(
            f"{nbytes / seconds / 1e9:.1f} GB/s", (x, y), xytext=(8, -3), textcoords="offset points", fontsize=8
        )
    default = "Time against bytes: on the line, memory sets the pace"
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(lo, hi),
        xlabel="MB moved",
        ylabel="ms taken",
        title=default if title is None else title,
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", fontsize=8, framealpha=1)
    return fig


def _check_matrix(w: Any, axis: Any, bins: Any) -> np.ndarray:
    """w as a float32 matrix, once it is 2-D, finite and not all zero, and axis and bins make sense."""
    try:
        w = np.asarray(w)  # [n_in, n_out]
    except ValueError:  # a ragged list
        w = np.empty((0,))  # refused below, by shape
    if w.ndim != 2 or w.size == 0 or not np.issubdtype(w.dtype, np.floating):
        raise InvalidInputError(
            f"w must be a 2-D float matrix, got shape {w.shape} of {w.dtype}; "
            "pass one weight matrix, e.g. model.weights.h[0].mlp.c_fc.weight"
        )
    if not np.isfinite(w).all() or not np.any(w):
        raise InvalidInputError("w must be finite and not all zero: an int8 scale is max |w| / 127")
    if not isinstance(axis, Integral) or isinstance(axis, bool) or axis not in (0, 1):  # True == 1 == 1.0
        raise InvalidInputError(f"axis must be 0 (a scale per column) or 1 (a scale per row), got {axis!r}")
    whole_number(bins, "bins", 1)
    return w.astype(np.float32)


def _check_runs(runs: Any, bandwidth_gbs: Any) -> dict[str, tuple[float, float]]:
    """name -> (bytes, seconds) as floats, every one a pair of positive numbers; and a positive bandwidth."""
    if not isinstance(runs, Mapping) or not runs:
        raise InvalidInputError(f"runs must be a non-empty dict of name -> (bytes, seconds), got {runs!r}")
    checked = {name: _pair(name, pair) for name, pair in runs.items()}
    if not is_positive(bandwidth_gbs):
        raise InvalidInputError(
            f"bandwidth_gbs must be a positive number of GB/s, got {bandwidth_gbs!r}; "
            "measure it with minfer.perf.calibrate.measure_bandwidth_gbs"
        )
    return checked


def _pair(name: str, pair: Any) -> tuple[float, float]:
    """(bytes, seconds) of one run: a tuple, list or 1-D array of two positive numbers."""
    if not (isinstance(pair, tuple | list | np.ndarray) and len(pair) == 2 and all(is_positive(v) for v in pair)):
        raise InvalidInputError(f"runs[{name!r}] must be (bytes moved, seconds taken), both positive, got {pair!r}")
    return float(pair[0]), float(pair[1])
