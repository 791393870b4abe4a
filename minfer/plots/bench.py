"""Benchmark results as bars, each with the roofline bound it could reach (docs' Performance page):
the gap is what a system leaves on the table. Artist gids: "bars:<run>", "bounds:<run>".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.plots.common import ceilings_pair, figure_function, label, phase_style, subplots

NEEDS = {"prefill": "gflops", "decode": "bytes_per_token"}  # what a phase's bound reads, with tok_s


def bound_tokens_per_s(run: str, entry: Mapping[str, float], peak_gflops: float, bandwidth_gbs: float) -> float:
    """The roofline bound of one run in tokens/s: compute for prefill, memory for decode.

    >>> bound_tokens_per_s("decode_16", {"tok_s": 30.0, "bytes_per_token": 5e8}, 100.0, 20.0)
    40.0
    """
    if run.startswith("prefill"):
        return peak_gflops / (entry["gflops"] / entry["tok_s"])  # peak / GFLOP per token
    return bandwidth_gbs * 1e9 / entry["bytes_per_token"]


@figure_function
def benchmark_bars(
    summary: Mapping[str, Mapping[str, Mapping[str, float]]],
    ceilings: Any,
    *,
    runs: Sequence[str] = ("prefill_512", "decode_16"),
    title: str | None = None,
) -> Figure:
    """A panel per run ("prefill_<tokens>", "decode_<context>") of what `benchmarks/peers.py --json-out`
    writes: a bar per system at its tok/s, a tick at its bound (systems without the bound's input skipped).

        >>> data = json.load(open("benchmarks/results/peers-2026-11-27.json"))
        >>> benchmark_bars(data["summary"], {"peak_gflops": 161, "bandwidth_gbs": 29.6})
    """
    peak, bandwidth = ceilings_pair(ceilings)
    systems = [s for s, by_run in summary.items() if all(NEEDS[r.split("_")[0]] in by_run.get(r, {}) for r in runs)]
    fig, axes = subplots(1, len(runs), figsize=(5.2 * len(runs), 0.45 * len(systems) + 1.6))
    for ax, run in zip(axes, runs):
        phase, n = run.split("_")  # "decode_16": decode at context 16
        speeds = np.array([summary[s][run]["tok_s"] for s in systems], float)  # [n_systems]
        bounds = np.array([bound_tokens_per_s(run, summary[s][run], peak, bandwidth) for s in systems])  # [n_systems]
        _draw_run(ax, run, phase, systems, speeds, bounds)
        ax.set_title(f"prefill, {n} tokens" if phase == "prefill" else f"decode, context {n}")
    default = "Measured tokens/s (bars) and each system's roofline bound (|)"
    fig.suptitle(default if title is None else title, fontsize=10)
    return fig


def _draw_run(ax: Axes, run: str, phase: str, systems: list[str], speeds: np.ndarray, bounds: np.ndarray) -> None:
    """A bar per system (first on top), a tick at its bound, "tok/s (share of bound)" beyond both."""
    y = np.arange(len(systems))  # [n_systems]
    ax.barh(y, speeds, color=phase_style(phase)[0], gid=f"bars:{run}")
    ax.scatter(bounds, y, marker="|", s=400, color="black", zorder=3, gid=f"bounds:{run}")
    for yi, speed, bound in zip(y, speeds, bounds):
        label(ax, f"{speed:,.0f} ({speed / bound:.0%})", (max(speed, bound), yi), (5, 0), "left center", fontsize=8)
    ax.set_yticks(y, systems)
    ax.invert_yaxis()
    ax.set(xlim=(0, max(bounds.max(), speeds.max()) * 1.3), xlabel="tokens/s (share of the bound)")
