"""Benchmark results as bars, each with the roofline bound it could reach (docs' Performance page).

`benchmark_bars(summary, ceilings)` reads the `summary` of `benchmarks/peers.py --json-out`:
per system, per run (`"prefill_512"`, `"decode_16"`, ...), the measured tokens per second and
what the bound needs: GFLOP/s achieved for prefill (so FLOPs per token = GFLOP/s / tok/s) and
bytes per token for decode. Each bar gets a tick at its roofline bound: peak / FLOPs per token
for prefill, bandwidth / bytes per token for decode. The gap between bar and tick is the time a
system leaves on the table; a system that moves fewer bytes (int8, f16) has a higher tick.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.plots.common import ceilings_pair, phase_style, positive, subplots

RUN_NAME = re.compile(r"(prefill|decode)_(\d+)")  # "prefill_512": 512 tokens; "decode_16": context 16
NEEDS = {"prefill": ("tok_s", "gflops"), "decode": ("tok_s", "bytes_per_token")}  # what each bound reads


def bound_tokens_per_s(run: str, entry: Mapping[str, float], peak_gflops: float, bandwidth_gbs: float) -> float:
    """The roofline bound of one run in tokens/s: compute for prefill, memory for decode.

    >>> bound_tokens_per_s("decode_16", {"tok_s": 30.0, "bytes_per_token": 5e8}, 100.0, 20.0)
    40.0
    """
    phase, _ = _parse_run(run)
    values = _measured(phase, entry, f"the entry of {run!r}")
    if phase == "prefill":
        flops_per_token = values["gflops"] * 1e9 / values["tok_s"]
        return peak_gflops * 1e9 / flops_per_token
    return bandwidth_gbs * 1e9 / values["bytes_per_token"]


# ---------------------------------------------------------------- checking what comes in


def _parse_run(run: Any) -> tuple[str, str]:
    """("prefill", "512") from "prefill_512"; else an error that shows the names it takes."""
    match = RUN_NAME.fullmatch(run) if isinstance(run, str) else None
    if match is None:
        raise InvalidInputError(
            f"run {run!r} must be named prefill_<n> or decode_<n>, "
            "e.g. 'prefill_512' (512 tokens) or 'decode_16' (context 16)"
        )
    return match.group(1), match.group(2)


def _runs(runs: Any) -> list[tuple[str, str, str]]:
    """[(run, phase, n)] of a non-empty list of run names; a single string is refused, not spelt out."""
    if isinstance(runs, (str, bytes)) or not isinstance(runs, Sequence) or not runs:
        raise InvalidInputError(f"runs must be a list of run names such as ('prefill_512', 'decode_16'), got {runs!r}")
    return [(run, *_parse_run(run)) for run in runs]


def _measured(phase: str, entry: Any, where: str) -> dict[str, float]:
    """The positive numbers a run's bound reads (NEEDS[phase]), each named if missing or bad."""
    if not isinstance(entry, Mapping):
        raise InvalidInputError(f"{where} must be a dict of measurements, got {entry!r}")
    for key in NEEDS[phase]:
        if key not in entry:
            raise InvalidInputError(
                f"{where} has no {key!r} (it has {sorted(entry)}); a {phase} bound needs {list(NEEDS[phase])}"
            )
    return {key: positive(entry[key], f"{where}[{key!r}]") for key in NEEDS[phase]}


def _systems(summary: Any, runs: list[tuple[str, str, str]]) -> list[str]:
    """The systems that have every run, each run's numbers checked; raise if none has them all."""
    if not isinstance(summary, Mapping) or not summary:
        raise InvalidInputError("summary must be the 'summary' dict of benchmarks/peers.py --json-out")
    for name, runs_of in summary.items():
        if not isinstance(runs_of, Mapping):
            raise InvalidInputError(f"summary[{name!r}] must be a dict run -> measurements, got {runs_of!r}")
    systems = [name for name, runs_of in summary.items() if all(run in runs_of for run, _, _ in runs)]
    if not systems:
        raise InvalidInputError(
            f"no system in the summary has all of {[run for run, _, _ in runs]}: "
            f"it has {sorted({r for v in summary.values() for r in v})}"
        )
    for name in systems:
        for run, phase, _ in runs:
            _measured(phase, summary[name][run], f"summary[{name!r}][{run!r}]")
    return systems


# ---------------------------------------------------------------- the figure


def benchmark_bars(
    summary: Mapping[str, Mapping[str, Mapping[str, float]]],
    ceilings: Any,
    *,
    runs: Sequence[str] = ("prefill_512", "decode_16"),
    title: str | None = None,
) -> Figure:
    """One panel per run: tokens/s of each system as a bar, its roofline bound as a tick.

    ceilings: `peak_gflops` and `bandwidth_gbs` (attributes, as `minfer calibrate` measures
    them, or dict keys). runs: names like "prefill_512" or "decode_16", one panel each.
    title: None for the default, "" for none.

        >>> data = json.load(open("benchmarks/results/peers-2026-11-27.json"))
        >>> benchmark_bars(data["summary"], {"peak_gflops": 161, "bandwidth_gbs": 29.6})
    """
    parsed = _runs(runs)
    systems = _systems(summary, parsed)
    peak, bandwidth = ceilings_pair(ceilings)
    fig, axes = subplots(1, len(parsed), figsize=(5.2 * len(parsed), 0.45 * len(systems) + 1.6))
    for ax, (run, phase, n) in zip(axes, parsed):
        entries = [summary[s][run] for s in systems]
        speeds = np.array([float(e["tok_s"]) for e in entries])  # [n_systems]
        bounds = np.array([bound_tokens_per_s(run, e, peak, bandwidth) for e in entries])  # [n_systems]
        _draw_run(ax, run, phase, systems, speeds, bounds)
        ax.set_title(f"{phase}, {n} tokens" if phase == "prefill" else f"{phase}, context {n}")
    default = "Measured tokens/s (bars) and each system's roofline bound (|)"
    fig.suptitle(default if title is None else title, fontsize=10)
    return fig


def _draw_run(ax: Axes, run: str, phase: str, systems: list[str], speeds: np.ndarray, bounds: np.ndarray) -> None:
    """One panel: a bar per system (first on top), a tick at its bound, and "tok/s (share of bound)"."""
    y = np.arange(len(systems))  # [n_systems]
    ax.barh(y, speeds, color=phase_style(phase)[0], gid=f"bars:{run}")
    ax.scatter(bounds, y, marker="|", s=400, color="black", zorder=3, gid=f"bounds:{run}")
    for yi, speed, bound in zip(y, speeds, bounds):  # right of the bar or the tick, whichever is further
        ax.annotate(
            f"{speed:,.0f} ({speed / bound:.0%})",
            (max(speed, bound), yi),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(y, systems)
    ax.invert_yaxis()
    ax.set_xlim(0, max(bounds.max(), speeds.max()) * 1.3)
    ax.set_xlabel("tokens/s (share of the bound)")
