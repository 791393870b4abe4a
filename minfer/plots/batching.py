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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.perf import counts
from minfer.perf.counts import Arch, decode_cost
from minfer.plots.common import ceilings_pair, check_arch, figure_and_axes, positive, whole_number

SWEEP_KEYS = ("batch", "tokens", "seconds")  # what the throughput reads; the bound adds flops, bytes


# ---------------------------------------------------------------- checking what comes in


def _sweep_rows(sweep: Any, bound: bool) -> list[Mapping]:
    """The rows sorted by batch, each with the keys the figure reads (and flops, bytes for the bound)."""
    if isinstance(sweep, Mapping) or not isinstance(sweep, Sequence) or not sweep:
        raise InvalidInputError(
            "sweep must be a non-empty list of rows {'batch', 'tokens', 'seconds', ...}, "
            "one per batch size (minfer.perf.profiler.decode_sweep returns one)"
        )
    keys = SWEEP_KEYS + (("flops", "bytes") if bound else ())
    for i, row in enumerate(sweep):
        missing = [k for k in keys if not isinstance(row, Mapping) or k not in row]
        if missing:
            raise InvalidInputError(
                f"sweep[{i}] has no {missing}"
                + (" (the roofline bound needs them)" if bound and set(missing) <= {"flops", "bytes"} else "")
            )
        whole_number(row["batch"], f"sweep[{i}]['batch']", 1)
        for key in keys[1:]:
            positive(row[key], f"sweep[{i}][{key!r}]")
    batches = [row["batch"] for row in sweep]
    if len(set(batches)) != len(batches):
        raise InvalidInputError(f"sweep has a batch size twice: {batches}; keep one row per batch size")
    return sorted(sweep, key=lambda row: row["batch"])


# ---------------------------------------------------------------- tokens per second


def throughput_by_batch(
    sweep: Sequence[Mapping],
    ceilings: Any = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Decode tokens/s against the batch size, log-log: measured, perfect sharing, and with
    `ceilings` the roofline bound, the most tokens/s the machine allows.

    sweep: one row per batch size, {"batch", "tokens", "seconds"}: `tokens` made in `seconds`
    (one step's B tokens, or a whole run's, as `minfer.perf.profiler.decode_sweep` returns them),
    plus "flops" and "bytes" of that work when `ceilings` is given. ceilings: `peak_gflops`
    and `bandwidth_gbs` (attributes or dict keys, as `minfer calibrate` measures them); the
    bound is tokens / max(flops / peak, bytes / bandwidth). title: None for the default, "" for
    none. Everything is checked before anything is drawn into `ax`.

        >>> throughput_by_batch([{"batch": 1, "tokens": 1, "seconds": 0.004},
        ...                      {"batch": 8, "tokens": 8, "seconds": 0.006}])
    """
    rows = _sweep_rows(sweep, bound=ceilings is not None)  # batch order
    pair = None if ceilings is None else ceilings_pair(ceilings)
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    batch = np.array([row["batch"] for row in rows], dtype=float)  # [n_rows]
    measured = np.array([row["tokens"] / row["seconds"] for row in rows], dtype=float)  # [n_rows] tokens/s
    ax.plot(batch, measured, "o-", color="C0", gid="measured", label="measured")
    if pair is not None:
        ax.plot(batch, _bound_rates(rows, *pair), "s--", color="C1", gid="bound", label="roofline bound")
    ax.plot(
        batch,
        measured[0] * batch / batch[0],
        ":",
        color="grey",
        gid="linear",
        label=f"B x the B = {rows[0]['batch']} rate",
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size B",
        ylabel="decode tokens/s",
        title="tokens per second" if title is None else title,
    )
    ax.set_xticks(batch, [str(row["batch"]) for row in rows])
    ax.legend(fontsize=8)
    return fig


def _bound_rates(rows: list[Mapping], peak_gflops: float, bandwidth_gbs: float) -> np.ndarray:
    """[n_rows] tokens/s if each row's work ran at the roofline: its FLOPs at the peak or its
    bytes at the bandwidth, whichever takes longer."""
    seconds = [max(row["flops"] / (peak_gflops * 1e9), row["bytes"] / (bandwidth_gbs * 1e9)) for row in rows]
    return np.array([row["tokens"] for row in rows], dtype=float) / np.array(seconds)  # [n_rows]


# ---------------------------------------------------------------- FLOP per byte


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
    check_arch(arch)
    n_past, max_batch = whole_number(n_past, "n_past", 0), whole_number(max_batch, "max_batch", 1)
    ridge = positive(ridge, "ridge")
    timed = [whole_number(b, "a timed batch", 1) for b in _batch_list(timed)]
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
    ax.axhline(counts.intensity_limit(arch, n_past), color="C2", linestyle=":", gid="limit", label="limit as B grows")
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


def _batch_list(timed: Any) -> Sequence:
    """`timed` if it is a list, tuple or array of batch sizes; a string or a lone number is refused."""
    if isinstance(timed, (str, bytes)) or not isinstance(timed, (Sequence, np.ndarray)):
        raise InvalidInputError(f"timed must be a list of batch sizes such as [1, 2, 4, 8], got {timed!r}")
    return timed


def _intensity(arch: Arch, n_past: int, batch: int) -> float:
    """FLOP per byte of one decode step of `batch` sequences."""
    return decode_cost(arch, n_past, int(batch)).flop_per_byte


def ridge_batch(arch: Arch, n_past: int, ridge: float) -> int | None:
    """`minfer.perf.counts.ridge_batch` with its arguments checked: the smallest batch whose decode
    step does at least `ridge` FLOP per byte; None if no batch does.

        >>> ridge_batch(ARCHS["gpt2"], n_past=63, ridge=7.3)
    """
    check_arch(arch)
    return counts.ridge_batch(arch, whole_number(n_past, "n_past", 0), positive(ridge, "ridge"))
