"""What a bigger decode batch buys, measured and counted (lesson 07). The weights are read once
for the whole batch, so FLOP per byte grows about as B / 2, then flattens towards one sequence's
own traffic (mostly its KV cache). Artist gids: "measured", "bound", "linear"; "count", "timed",
"limit", "ridge", "crossing".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.perf.counts import Arch, decode_cost, intensity_limit, ridge_batch
from minfer.perf.profile import SweepRow
from minfer.plots.common import ceilings_pair, figure_and_axes, figure_function


@figure_function
def throughput_by_batch(
    sweep: Sequence[SweepRow], ceilings: Any = None, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Decode tokens/s against the batch size, log-log: measured (a `decode_sweep`), B times the
    smallest batch's rate and, with `ceilings`, the bound tokens / max(flops / peak, bytes / bandwidth).

        >>> throughput_by_batch(decode_sweep(model, prompt, 17, [1, 2, 4, 8]), ceilings)
    """
    rows = sorted(sweep, key=lambda row: row.batch)
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    batch = np.array([row.batch for row in rows], dtype=float)  # [n_rows]
    measured = np.array([row.tokens_per_s for row in rows])  # [n_rows] tokens/s
    ax.plot(batch, measured, "o-", color="C0", gid="measured", label="measured")
    if ceilings is not None:
        peak, bandwidth = ceilings_pair(ceilings)
        bound_s = [max(row.flops / (peak * 1e9), row.bytes / (bandwidth * 1e9)) for row in rows]
        bound = np.array([row.tokens for row in rows]) / np.array(bound_s)  # [n_rows] tokens/s at the roof
        ax.plot(batch, bound, "s--", color="C1", gid="bound", label="roofline bound")
    linear = measured[0] * batch / batch[0]  # [n_rows]
    ax.plot(batch, linear, ":", color="grey", gid="linear", label=f"B x the B = {rows[0].batch} rate")
    ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="decode tokens/s")
    ax.set_title("tokens per second" if title is None else title)
    ax.set_xticks(batch, [str(row.batch) for row in rows])
    ax.legend(fontsize=8)
    return fig


@figure_function
def intensity_by_batch(
    arch: Arch,
    n_past: int,
    ridge: float,
    *,
    timed: Sequence[int] = (),
    max_batch: int = 1024,
    ridge_label: str = "ridge point of this machine",
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """FLOP per byte of a decode step of `arch` with `n_past` cached positions against the batch, up
    to `max_batch`: its limit, this machine's `ridge`, the first batch at or past it, dots at `timed`.

        >>> intensity_by_batch(Arch.from_model(model), n_past=71, ridge=7.3, timed=[1, 2, 4, 8, 16])
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    batch = np.unique(np.geomspace(1, max_batch, 200).astype(int))  # [n_b] batch sizes
    count = [decode_cost(arch, n_past, int(b)).flop_per_byte for b in batch]  # [n_b]
    ax.plot(batch, count, "-", color="C2", gid="count", label=f"count, T = {n_past + 1}")
    if timed:
        timed_count = [decode_cost(arch, n_past, int(b)).flop_per_byte for b in timed]  # [n_timed]
        ax.plot(timed, timed_count, "o", color="C2", gid="timed", label="the batches timed")
    ax.axhline(intensity_limit(arch, n_past), color="C2", linestyle=":", gid="limit", label="limit as B grows")
    ax.axhline(ridge, color="C3", linestyle="--", gid="ridge", label=ridge_label)
    crossing = ridge_batch(arch, n_past, ridge)
    if crossing is not None and crossing <= max_batch:
        ax.axvline(crossing, color="grey", linestyle=":", gid="crossing", label=f"compute-bound from B = {crossing}")
    ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="FLOP / byte")
    ax.set_title("arithmetic intensity of one decode step" if title is None else title)
    ax.legend(fontsize=8)
    return fig
