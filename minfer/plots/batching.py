"""The pictures of batched decode: what a bigger batch buys, measured and counted (lesson 07).

- `throughput_by_batch`: decode tokens/s against the batch size, as measured, under the
  roofline's bound (given the machine's ceilings), and next to perfect sharing: B times the
  smallest batch's rate, as if a step took no longer with more sequences in it.
- `intensity_by_batch`: a decode step's FLOP per byte against the batch, counted by
  `minfer.perf.counts.decode_cost`. The weights are read once for the whole batch, so it grows
  about as B / 2, then flattens towards the FLOP/byte of one sequence's own traffic (mostly
  its KV cache). Where it crosses the machine's ridge point, decode stops waiting on memory.

Artists carry a gid ("measured", "bound", "linear"; "count", "timed", "limit", "ridge",
"crossing") so tests and notebooks can find them again.
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

# ---------------------------------------------------------------- tokens per second


@figure_function
def throughput_by_batch(
    sweep: Sequence[SweepRow],
    ceilings: Any = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Decode tokens/s against the batch size, log-log: measured, perfect sharing, and with
    `ceilings` the roofline bound, the most tokens/s the machine allows.

    sweep: one row per batch size (`minfer.perf.profiler.decode_sweep`): `tokens` made in
    `seconds`, and the `flops` and `bytes` of that work for the bound. ceilings: `peak_gflops`
    and `bandwidth_gbs` (attributes or dict keys, as `minfer calibrate` measures them); the bound
    is tokens / max(flops / peak, bytes / bandwidth). title: None for the default, "" for none.

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
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size B",
        ylabel="decode tokens/s",
        title="tokens per second" if title is None else title,
    )
    ax.set_xticks(batch, [str(row.batch) for row in rows])
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------- FLOP per byte


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
    """FLOP per byte of one decode step against the batch size B (log-log), counted for `arch`
    with `n_past` cached positions per sequence (so T = n_past + 1 keys), from B = 1 to
    `max_batch`; its limit as B grows without end; the ridge point `ridge` (FLOP/byte, peak /
    bandwidth); and the first batch at or past the ridge, if there is one up to `max_batch`.

    timed: batch sizes to mark with a dot (the ones a benchmark measured). ridge_label: the
    ridge line's legend entry (whose ridge it is). title: None for the default, "" for none.

        >>> intensity_by_batch(Arch.from_model(model), n_past=71, ridge=7.3, timed=[1, 2, 4, 8, 16])
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    batch = np.unique(np.geomspace(1, max_batch, 200).astype(int))  # [n_b] batch sizes
    ax.plot(
        batch,
        [_intensity(arch, n_past, b) for b in batch],
        "-",
        color="C2",
        gid="count",
        label=f"count, T = {n_past + 1}",
    )
    if timed:
        ax.plot(
            timed, [_intensity(arch, n_past, b) for b in timed], "o", color="C2", gid="timed", label="the batches timed"
        )
    ax.axhline(intensity_limit(arch, n_past), color="C2", linestyle=":", gid="limit", label="limit as B grows")
    ax.axhline(ridge, color="C3", linestyle="--", gid="ridge", label=ridge_label)
    crossing = ridge_batch(arch, n_past, ridge)
    if crossing is not None and crossing <= max_batch:
        ax.axvline(crossing, color="grey", linestyle=":", gid="crossing", label=f"compute-bound from B = {crossing}")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size B",
        ylabel="FLOP / byte",
        title="arithmetic intensity of one decode step" if title is None else title,
    )
    ax.legend(fontsize=8)
    return fig


def _intensity(arch: Arch, n_past: int, batch: int) -> float:
    """FLOP per byte of one decode step of `batch` sequences."""
    return decode_cost(arch, n_past, int(batch)).flop_per_byte
