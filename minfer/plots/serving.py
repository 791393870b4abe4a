"""What users of a server waited (`minfer loadtest --plot`, lesson 15): for each latency, TTFT,
TPOT and end-to-end, a histogram above its empirical CDF with the p50 and p99 marked and the
latency objective when one was set. Artist gids: "histogram", "cdf", "p50", "p99", "slo".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from minfer.plots.common import figure_function, subplots


@figure_function
def latency_distributions(
    samples: Mapping[str, Sequence[float]], slo: Mapping[str, float | None] | None = None, *, title: str | None = None
) -> Figure:
    """One column per latency (seconds in, milliseconds drawn): its histogram on top, its
    empirical CDF below (the share of requests at or under each latency), p50 and p99 as dotted
    lines and the objective from `slo` as a dashed one.

        >>> latency_distributions({"TTFT": ttfts, "TPOT": tpots, "end-to-end": e2es}, {"TTFT": 0.5})
    """
    slo = slo or {}
    fig, axes = subplots(2, len(samples), figsize=(4 * len(samples), 6))
    for col, (name, values) in enumerate(samples.items()):
        ms = np.sort(np.asarray(values, dtype=float)) * 1e3  # [n_requests] ascending
        hist, cdf = axes[col], axes[len(samples) + col]
        if ms.size:
            counts, edges = np.histogram(ms, bins=min(30, max(5, ms.size // 2)))  # [n_bins], [n_bins + 1]
            hist.stairs(counts, edges, fill=True, alpha=0.6, color=f"C{col}", gid="histogram")
            share = np.arange(1, ms.size + 1) / ms.size  # [n_requests]: share at or below each latency
            cdf.step(ms, share, where="post", color=f"C{col}", gid="cdf")
            for q, style in ((50, ":"), (99, "-.")):
                at = float(np.percentile(ms, q))
                cdf.axvline(at, color="grey", linestyle=style, gid=f"p{q}", label=f"p{q} {at:.1f} ms")
        if slo.get(name) is not None:
            cdf.axvline(
                1e3 * slo[name], color="C3", linestyle="--", gid="slo", label=f"objective {1e3 * slo[name]:g} ms"
            )
        hist.set(title=name, ylabel="requests")
        cdf.set(xlabel=f"{name} (ms)", ylabel="share of requests", ylim=(0, 1.02))
        if cdf.get_legend_handles_labels()[0]:
            cdf.legend(fontsize=8, loc="lower right")
    if title != "":
        fig.suptitle("latency per request" if title is None else title)
    return fig
