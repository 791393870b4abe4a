"""Benchmark results as bars, each with the roofline bound it could reach (docs' Performance page).

`benchmark_bars(summary, ceilings)` reads the `summary` of `benchmarks/peers.py --json-out`: per
system, per run ("prefill_512", "decode_16", ...), the measured `tok_s` and what the bound needs:
`gflops` achieved for prefill (FLOPs per token = GFLOP/s / tok/s), `bytes_per_token` for decode.
Each bar gets a tick at its bound, peak / FLOPs per token or bandwidth / bytes per token: the gap
is what a system leaves on the table, and one that moves fewer bytes (int8, f16) has a higher tick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.plots.common import ceilings_pair, figure_function, phase_style, subplots

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
    """One panel per run: tokens/s of each system as a bar, its roofline bound as a tick.

    ceilings: `peak_gflops` and `bandwidth_gbs` (attributes, as `minfer calibrate` measures them,
    or dict keys). runs: "prefill_<tokens>" or "decode_<context>", a panel each; a system is drawn
    if it has every run with its bound's input (a decoder without a cache has no bytes per token).
    title: None for the default, "" for none.

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
    """One panel: a bar per system (first on top), a tick at its bound, and "tok/s (share of bound)"
    right of the bar or the tick, whichever is further."""
    y = np.arange(len(systems))  # [n_systems]
    ax.barh(y, speeds, color=phase_style(phase)[0], gid=f"bars:{run}")
    ax.scatter(bounds, y, marker="|", s=400, color="black", zorder=3, gid=f"bounds:{run}")
    for yi, speed, bound in zip(y, speeds, bounds):
        label = f"{speed:,.0f} ({speed / bound:.0%})"
        ax.annotate(label, (max(speed, bound), yi), xytext=(5, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(y, systems)
    ax.invert_yaxis()
    ax.set(xlim=(0, max(bounds.max(), speeds.max()) * 1.3), xlabel="tokens/s (share of the bound)")
