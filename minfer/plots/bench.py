"""Benchmark results as bars, each with the roofline bound it could reach (docs' Performance page).

`benchmark_bars(summary, ceilings)` reads the `summary` of `benchmarks/peers.py --json-out`:
per system, per run (`"prefill_512"`, `"decode_16"`, ...), the measured tokens per second and
what the bound needs: GFLOP/s achieved for prefill (so FLOPs per token = GFLOP/s / tok/s) and
bytes per token for decode. Each bar gets a tick at its roofline bound: peak / FLOPs per token
for prefill, bandwidth / bytes per token for decode. The gap between bar and tick is the time a
system leaves on the table; a system that moves fewer bytes (int8, f16) has a higher tick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.plots.common import subplots

PHASE_COLORS = {"prefill": "tab:orange", "decode": "tab:blue"}


def bound_tokens_per_s(run: str, entry: Mapping[str, float], peak_gflops: float, bandwidth_gbs: float) -> float:
    """The roofline bound of one run in tokens/s: compute for prefill, memory for decode."""
    if run.startswith("prefill"):
        flops_per_token = entry["gflops"] * 1e9 / entry["tok_s"]
        return peak_gflops * 1e9 / flops_per_token
    return bandwidth_gbs * 1e9 / entry["bytes_per_token"]


def _check(summary: Any, runs: Sequence[str], ceilings: Mapping[str, float]) -> list[str]:
    """The systems that have every run; raise if none do or the ceilings are missing."""
    if not isinstance(summary, Mapping) or not summary:
        raise InvalidInputError("summary must be the 'summary' dict of benchmarks/peers.py --json-out")
    for key in ("peak_gflops", "bandwidth_gbs"):
        if not ceilings.get(key, 0) > 0:
            raise InvalidInputError(f"ceilings need a positive {key!r}; run `minfer calibrate` or pass them")
    systems = [name for name, runs_of in summary.items() if all(r in runs_of for r in runs)]
    if not systems:
        raise InvalidInputError(f"no system in the summary has all of {list(runs)}: "
                                f"it has {sorted({r for v in summary.values() for r in v})}")
    return systems


def benchmark_bars(summary: Mapping[str, Mapping[str, Mapping[str, float]]], ceilings: Mapping[str, float],
                   runs: Sequence[str] = ("prefill_512", "decode_16"), title: str | None = None) -> Figure:
    """One panel per run: tokens/s of each system as a bar, its roofline bound as a tick.

        >>> data = json.load(open("benchmarks/results/peers-2026-11-27.json"))
        >>> benchmark_bars(data["summary"], {"peak_gflops": 161, "bandwidth_gbs": 29.6})
    """
    systems = _check(summary, runs, ceilings)
    fig, axes = subplots(1, len(runs), figsize=(5.2 * len(runs), 0.45 * len(systems) + 1.6))
    for ax, run in zip(axes, runs):
        phase = "prefill" if run.startswith("prefill") else "decode"
        entries = [summary[s][run] for s in systems]
        y = np.arange(len(systems))  # [n_systems], the first system on top
        speeds = np.array([e["tok_s"] for e in entries])  # [n_systems]
        bounds = np.array([bound_tokens_per_s(run, e, ceilings["peak_gflops"], ceilings["bandwidth_gbs"])
                           for e in entries])  # [n_systems]
        ax.barh(y, speeds, color=PHASE_COLORS[phase], gid=f"bars:{run}")
        ax.scatter(bounds, y, marker="|", s=400, color="black", zorder=3, gid=f"bounds:{run}")
        for yi, speed, bound in zip(y, speeds, bounds):  # right of the bar or the tick, whichever is further
            ax.annotate(f"{speed:,.0f} ({speed / bound:.0%})", (max(speed, bound), yi), xytext=(5, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.set_yticks(y, systems)
        ax.invert_yaxis()
        ax.set_xlim(0, max(bounds.max(), speeds.max()) * 1.3)
        what = f"{run.split('_')[1]} tokens" if phase == "prefill" else f"context {run.split('_')[1]}"
        ax.set(xlabel="tokens/s (share of the bound)", title=f"{phase}, {what}")
    fig.suptitle(title or "Measured tokens/s (bars) and each system's roofline bound (|)", fontsize=10)
    return fig
