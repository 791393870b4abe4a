"""The decode step of each backend, its time measured next to its bytes counted (lesson 10).

`decode_step_bars` draws two panels with one bar per backend in each:

- left, **ms per token, measured** (gid "ms"), and, given this machine's bandwidth, the floor
  that counting sets: the step's bytes / bandwidth, a black bar across each column (gid "floor");
- right, **MB a step moves, counted** (`minfer.perf.counts`): the weights (gid "weights") under
  everything else, the KV cache and the activations (gid "other").

A decode step is memory-bound, so the right panel says how long a step *should* take and the
left how long it did; the gap between a bar and its floor is what the backend leaves on the table.
Only the object API is used (`minfer.plots.common`), never pyplot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.plots.common import is_positive, subplots

MS_COLOR, WEIGHT_COLOR, OTHER_COLOR = "tab:blue", "tab:orange", "tab:red"
BAR_WIDTH = 0.6


def decode_step_bars(
    ms_per_token: Mapping[str, float],
    weight_bytes: Mapping[str, float],
    total_bytes: Mapping[str, float],
    *,
    bandwidth_gbs: float | None = None,
    title: str | None = None,
) -> Figure:
    """Decode time per token, measured, beside the bytes per token, counted, one bar per backend.

    ms_per_token: backend -> milliseconds per decode step (a median of timed runs).
    weight_bytes, total_bytes: backend -> bytes one step moves, the weights and all of it
    (`decode_cost(Arch.from_model(model), n_past).weight_bytes` and `.bytes`).
    bandwidth_gbs: if given, each time bar gets its floor, total bytes / bandwidth.
    Backends are drawn in the order of `ms_per_token`.

        >>> fig = decode_step_bars({"numpy": 2.0, "numba": 0.8}, {"numpy": 16e6, "numba": 16e6},
        ...                        {"numpy": 17e6, "numba": 17e6}, bandwidth_gbs=20.0)
    """
    names = _check_bars(ms_per_token, weight_bytes, total_bytes)
    if bandwidth_gbs is not None and not is_positive(bandwidth_gbs):
        raise InvalidInputError(
            f"bandwidth_gbs must be a positive number of GB/s, got {bandwidth_gbs!r}; "
            "measure it with minfer.perf.calibrate.measure_bandwidth_gbs, or leave it out"
        )
    fig, (ax_t, ax_b) = subplots(1, 2, figsize=(10, 3.8))
    x = list(range(len(names)))
    bars = ax_t.bar(x, [ms_per_token[n] for n in names], BAR_WIDTH, color=MS_COLOR, gid="ms", label="measured (median)")
    ax_t.bar_label(bars, fmt="%.2f", padding=2)
    if bandwidth_gbs is not None:
        floors = [total_bytes[n] / (bandwidth_gbs * 1e9) * 1e3 for n in names]  # ms
        ax_t.hlines(
            floors,
            [i - BAR_WIDTH / 2 for i in x],
            [i + BAR_WIDTH / 2 for i in x],
            color="black",
            lw=2.5,
            gid="floor",
            label=f"bytes / {bandwidth_gbs:.3g} GB/s",
        )
        ax_t.legend(loc="upper right", fontsize=8, framealpha=1)
    ax_t.set(ylabel="ms per token", title="Decode step, measured", xticks=x, xticklabels=names)
    ax_t.margins(y=0.25)  # room for the bar labels and the legend
    _draw_bytes(ax_b, names, x, weight_bytes, total_bytes)
    if title:
        fig.suptitle(title)
    return fig


def _draw_bytes(ax: Axes, names: list[str], x: list[int], weight_bytes: Mapping, total_bytes: Mapping) -> None:
    """Stacked MB per token: the weights, then the rest (KV cache and activations) on top."""
    weights_mb = [weight_bytes[n] / 1e6 for n in names]
    other_mb = [(total_bytes[n] - weight_bytes[n]) / 1e6 for n in names]
    ax.bar(x, weights_mb, BAR_WIDTH, color=WEIGHT_COLOR, gid="weights", label="weights")
    tops = ax.bar(
        x, other_mb, BAR_WIDTH, bottom=weights_mb, color=OTHER_COLOR, gid="other", label="KV cache and activations"
    )
    ax.bar_label(tops, labels=[f"{total_bytes[n] / 1e6:.2f}" for n in names], padding=2)
    ax.set(ylabel="MB per token", title="Bytes a decode step moves, counted", xticks=x, xticklabels=names)
    ax.margins(y=0.35)  # room for the legend above the bars
    ax.legend(loc="upper right", fontsize=8, framealpha=1)


def _check_bars(ms_per_token: Any, weight_bytes: Any, total_bytes: Any) -> list[str]:
    """The backends' names, once every mapping names the same backends with sensible numbers."""
    for what, values in [("ms_per_token", ms_per_token), ("weight_bytes", weight_bytes), ("total_bytes", total_bytes)]:
        if not isinstance(values, Mapping) or not values:
            raise InvalidInputError(f"{what} must be a non-empty dict of backend -> number, got {values!r}")
        for name, value in values.items():
            if not is_positive(value):
                raise InvalidInputError(f"{what}[{name!r}] must be a positive number, got {value!r}")
    names = list(ms_per_token)
    for what, values in [("weight_bytes", weight_bytes), ("total_bytes", total_bytes)]:
        if set(values) != set(names):
            raise InvalidInputError(
                f"{what} names backends {sorted(values)} but ms_per_token names "
                f"{sorted(names)}: give every backend a time and both byte counts"
            )
    for name in names:
        if total_bytes[name] < weight_bytes[name]:
            raise InvalidInputError(
                f"total_bytes[{name!r}] = {total_bytes[name]:,} is less than its "
                f"weight_bytes {weight_bytes[name]:,}: pass Cost.bytes, all bytes moved"
            )
    return names
