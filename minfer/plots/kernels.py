"""The decode step of each backend, its time measured beside its bytes counted (lesson 10): the
gap from a time bar down to its floor, bytes / bandwidth, is what the backend leaves on the table.
Artist gids: "ms", "floor"; "weights", "other".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from minfer.plots.common import figure_function, subplots

MS_COLOR, WEIGHT_COLOR, OTHER_COLOR = "tab:blue", "tab:orange", "tab:red"
BAR_WIDTH = 0.6


@figure_function
def decode_step_bars(
    ms_per_token: Mapping[str, float],
    weight_bytes: Mapping[str, float],
    total_bytes: Mapping[str, float],
    *,
    bandwidth_gbs: float | None = None,
    title: str | None = None,
) -> Figure:
    """A bar per backend: ms per token, measured (left; with `bandwidth_gbs`, a floor at total bytes /
    bandwidth), and MB per token, counted (right): `decode_cost(...).weight_bytes` under the rest.

        >>> fig = decode_step_bars({"numpy": 2.0, "numba": 0.8}, {"numpy": 16e6, "numba": 16e6},
        ...                        {"numpy": 17e6, "numba": 17e6}, bandwidth_gbs=20.0)
    """
    names = list(ms_per_token)
    x = np.arange(len(names))  # [n_backends]
    ms = np.array([ms_per_token[n] for n in names], float)  # [n_backends]
    weights_mb = np.array([weight_bytes[n] for n in names], float) / 1e6  # [n_backends]
    total_mb = np.array([total_bytes[n] for n in names], float) / 1e6  # [n_backends]
    fig, (ax_t, ax_b) = subplots(1, 2, figsize=(10, 3.8))
    times = ax_t.bar(x, ms, BAR_WIDTH, color=MS_COLOR, gid="ms", label="measured (median)")
    ax_t.bar_label(times, fmt="%.2f", padding=2)
    if bandwidth_gbs is not None:
        floors, label = total_mb / bandwidth_gbs, f"bytes / {bandwidth_gbs:.3g} GB/s"  # [n_backends] ms: MB / (GB/s)
        ax_t.hlines(floors, x - BAR_WIDTH / 2, x + BAR_WIDTH / 2, colors="black", lw=2.5, gid="floor", label=label)
        ax_t.legend(loc="upper right", fontsize=8, framealpha=1)
    ax_t.set(ylabel="ms per token", title="Decode step, measured", xticks=x, xticklabels=names)
    ax_t.margins(y=0.25)  # room for the bar labels and the legend
    ax_b.bar(x, weights_mb, BAR_WIDTH, color=WEIGHT_COLOR, gid="weights", label="weights")
    rest = "KV cache and activations"
    other = ax_b.bar(x, total_mb - weights_mb, BAR_WIDTH, bottom=weights_mb, color=OTHER_COLOR, gid="other", label=rest)
    ax_b.bar_label(other, labels=[f"{mb:.2f}" for mb in total_mb], padding=2)  # the totals, above the stacks
    ax_b.set(ylabel="MB per token", title="Bytes a decode step moves, counted", xticks=x, xticklabels=names)
    ax_b.margins(y=0.35)  # room for the legend above the bars
    ax_b.legend(loc="upper right", fontsize=8, framealpha=1)
    if title:
        fig.suptitle(title)
    return fig
