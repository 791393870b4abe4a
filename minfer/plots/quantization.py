"""int8 weights in two pictures: what the rounding costs, and what the bytes buy (lesson 11).
Artist gids: "per-tensor", "per-channel", "bound"; "point:<name>", "bandwidth".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.fast.kernels.quant import dequantize_int8, quantize_int8
from minfer.plots.common import figure_and_axes, figure_function, label

TENSOR_COLOR, COLUMN_COLOR = "tab:red", "tab:blue"


def round_trip_errors(w: np.ndarray, axis: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(w - w_q * scale, scale): each weight's int8 rounding error, in float64 so it is the format's
    own error, and the scales, shared along `axis` (0: one per column; (0, 1): one for all).

        >>> err, scale = round_trip_errors(np.array([[1.0], [0.3]], np.float32), axis=0)
        >>> bool(np.all(np.abs(err) <= scale / 2))
        True
    """
    w_q, scale = quantize_int8(w, axis=axis)  # int8 like w; scale: w's shape without axis
    w_dq = dequantize_int8(w_q, scale.astype(np.float64), axis=axis)  # like w, float64: int8 x float32 is exact
    return np.asarray(w, np.float64) - w_dq, scale  # like w, like scale


@figure_function
def quantization_error(
    w: np.ndarray, *, axis: int = 0, bins: int = 60, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Histograms of the int8 rounding error of every weight of `w` [n_in, n_out], one scale for the
    tensor against one per channel along `axis` (0: per column; 1: per row, as for wte).

        >>> fig = quantization_error(model.weights.h[0].mlp.c_fc.weight)   # [n_embd, 4 n_embd]
    """
    err_t, scale_t = round_trip_errors(w, axis=(0, 1))  # like w; scale_t: a 0-d array
    err_c, _ = round_trip_errors(w, axis=axis)  # like w
    half = float(scale_t) / 2
    edges = np.linspace(-half, half, bins + 1)  # [bins + 1]: every error fits
    fig, ax = figure_and_axes(ax, figsize=(8, 4))
    for err, gid, color, name in [
        (err_t, "per-tensor", TENSOR_COLOR, "one scale for the matrix"),
        (err_c, "per-channel", COLUMN_COLOR, "one scale per " + ("column" if axis == 0 else "row")),
    ]:
        # rint(w / s) runs in float32, so an error can pass s / 2 by a hair: count it in the end bin
        counts, _ = np.histogram(np.clip(err, -half, half), bins=edges)  # [bins], sum = w.size
        rms = np.sqrt(np.mean(err**2))
        ax.stairs(counts, edges, color=color, lw=1.8, gid=gid, label=f"{name}: RMS error {rms:.3g}")
    for x in (-half, half):
        ax.axvline(x, color="black", ls="--", lw=1, gid="bound")
    ax.set(xlabel="w - w_q * scale (the rounding error of one weight)", ylabel="weights")
    ax.set_title(f"int8 round-trip error of a {w.shape[0]} x {w.shape[1]} matrix" if title is None else title)
    note = f"dashed: ± half the per-tensor scale, {half:.3g}"
    ax.text(0.99, 0.97, note, transform=ax.transAxes, ha="right", va="top", fontsize=8, color="dimgray")
    ax.margins(y=0.15)
    ax.legend(loc="upper left", fontsize=8, framealpha=1)
    return fig


@figure_function
def time_against_bytes(
    runs: Mapping[str, tuple[float, float]], bandwidth_gbs: float, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Each run's time against the bytes it moved (name -> (bytes, seconds)), log-log, labelled with
    its GB/s, under time = bytes / `bandwidth_gbs` (this machine's): on the line, memory sets the pace.

        >>> fig = time_against_bytes({"f32": (113e6, 9e-3), "int8": (28e6, 3e-3)}, 15.0)
    """
    fig, ax = figure_and_axes(ax, figsize=(7, 4.5))
    mb = np.array([nbytes for nbytes, _ in runs.values()], float) / 1e6  # [n_runs]
    ends = np.array([mb.min() / 2, mb.max() * 2])  # [2] MB: a straight line on log-log axes
    legend_text = f"bytes / bandwidth ({bandwidth_gbs:.3g} GB/s)"
    ax.plot(ends, ends / bandwidth_gbs, color="black", lw=1.5, gid="bandwidth", label=legend_text)  # MB / (GB/s) = ms
    for name, (nbytes, seconds) in runs.items():
        x, y = nbytes / 1e6, seconds * 1e3
        ax.plot([x], [y], "o", ms=9, mec="black", gid=f"point:{name}", label=name, zorder=3)
        label(ax, f"{nbytes / seconds / 1e9:.1f} GB/s", (x, y), (8, -3), "left baseline", fontsize=8)
    ax.set(xscale="log", yscale="log", xlim=ends, xlabel="MB moved", ylabel="ms taken")
    ax.set_title("Time against bytes: on the line, memory sets the pace" if title is None else title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", fontsize=8, framealpha=1)
    return fig
