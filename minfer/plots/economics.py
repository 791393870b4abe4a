"""The pictures of inference economics: roofline projections on other chips (lesson 12).

Every figure is drawn from `minfer.perf.whatif.Projection`s, so every number in it is a BOUND (the
time a step cannot beat on the datasheet's peak and bandwidth), never a measurement:

- `projected_throughput`: decode tokens/s against the batch, one line per chip, and perfect
  sharing (batch times one chip's smallest-batch rate) for reference.
- `projected_cost`: dollars per million output tokens against the batch, one line per chip.
- `batch_economics`: the two side by side, titled with the workload.
- `tokens_per_watt`: tokens/s per watt of board power, a bar per projection, each labelled with
  the chips it needs; a bar that needs many chips (counted as one ideal chip) is red.

Artists carry a gid ("tokens_per_s:<hardware>", "linear", "usd:<hardware>",
"tokens_per_watt") so tests and notebooks can find them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from minfer.errors import InvalidInputError
from minfer.perf.whatif import Projection
from minfer.plots.common import figure_and_axes, subplots, whole_number

FEW_CHIPS, MANY_CHIPS = "C0", "C3"  # bar colours: a reachable setup, and an ideal pile of chips


# ---------------------------------------------------------------- checking what comes in


def _projections(projections: Any) -> list[Projection]:
    """A non-empty list of Projection, each with a decode step; else a named error."""
    if not isinstance(projections, Sequence) or isinstance(projections, str) or not projections:
        raise InvalidInputError(
            "projections must be a non-empty list of minfer.perf.whatif.Projection (from project() or project_many())"
        )
    for i, p in enumerate(projections):
        if not isinstance(p, Projection):
            raise InvalidInputError(f"projections[{i}] is a {type(p).__name__}, not a minfer.perf.whatif.Projection")
        if p.tokens_per_s is None:
            raise InvalidInputError(
                f"projections[{i}] ({p.hardware}, batch {p.batch}) has no decode step "
                "(output_tokens=1): project with output_tokens >= 2"
            )
    return list(projections)


def _by_hardware(projections: Any) -> dict[str, list[Projection]]:
    """hardware -> its projections in batch order, chips in the order they first come."""
    groups: dict[str, list[Projection]] = {}
    for p in _projections(projections):
        groups.setdefault(p.hardware, []).append(p)
    for hardware, ps in groups.items():
        batches = [p.batch for p in ps]
        if len(set(batches)) != len(batches):
            raise InvalidInputError(
                f"{hardware} has a batch size twice ({batches}): one projection per "
                "chip and batch, or the line would double back"
            )
        ps.sort(key=lambda p: p.batch)
    return groups


def _workload(projections: Sequence[Projection]) -> str:
    """ "llama-3-8b bfloat16": what was projected; every one, in order, when they differ."""
    return _each(f"{p.arch} {p.dtype}" for p in projections)


def _each(values) -> str:
    """The distinct values in order, joined: "512", or "512 / 128" when projections differ."""
    return " / ".join(dict.fromkeys(str(v) for v in values))


# ---------------------------------------------------------------- against the batch


def projected_throughput(
    projections: Sequence[Projection],
    *,
    linear_from: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Decode tokens/s (bound) against the batch, log-log, one line per chip.

    projections: any mix of chips and batch sizes (e.g. `project` in a loop over both).
    linear_from: a chip whose smallest batch's rate, times the batch, is drawn dotted grey:
    perfect sharing, which a memory-bound decode nearly follows until the caches grow.
    title: None for the default (the workload), "" for none.

        >>> ps = [project("llama-3-8b", hw, batch=b) for hw in ("h100-sxm", "l4") for b in (1, 8, 64)]
        >>> projected_throughput(ps, linear_from="h100-sxm")
    """
    groups = _by_hardware(projections)
    if linear_from is not None and linear_from not in groups:  # refused before anything is drawn
        raise InvalidInputError(f"linear_from={linear_from!r} is not among the projections' chips: {list(groups)}")
    fig, ax = figure_and_axes(ax, figsize=(6, 4.2))
    for hardware, ps in groups.items():
        ax.plot(
            [p.batch for p in ps],
            [p.tokens_per_s for p in ps],
            "o-",
            ms=3,
            gid=f"tokens_per_s:{hardware}",
            label=hardware,
        )
    if linear_from is not None:
        _draw_linear(ax, groups, linear_from)
    default = f"{_workload(projections)}: throughput bound"
    _finish_batch_axes(ax, groups, "decode tokens/s (bound)", default if title is None else title)
    return fig


def _draw_linear(ax: Axes, groups: dict[str, list[Projection]], hardware: str) -> None:
    """Batch times the chip's smallest-batch rate, over every batch drawn."""
    base = groups[hardware][0]  # its smallest batch
    batch = np.array(_all_batches(groups), dtype=float)  # [n_batches]
    ax.plot(
        batch,
        base.tokens_per_s * batch / base.batch,
        ":",
        color="grey",
        gid="linear",
        label=f"{hardware}, batch x (batch {base.batch})",
    )


def projected_cost(
    projections: Sequence[Projection],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Dollars per million output tokens (bound) against the batch, log-log, one line per chip.

    A chip costs the same per hour busy or idle, so the more tokens/s, the cheaper each token.
    title: None for the default (the workload), "" for none.

        >>> projected_cost([project("llama-3-8b", "h100-sxm", batch=b) for b in (1, 8, 64)])
    """
    groups = _by_hardware(projections)
    fig, ax = figure_and_axes(ax, figsize=(6, 4.2))
    for hardware, ps in groups.items():
        ax.plot(
            [p.batch for p in ps],
            [p.usd_per_million_tokens for p in ps],
            "o-",
            ms=3,
            gid=f"usd:{hardware}",
            label=hardware,
        )
    default = f"{_workload(projections)}: cost per token bound"
    _finish_batch_axes(ax, groups, "$ per million output tokens (bound)", default if title is None else title)
    return fig


def _all_batches(groups: dict[str, list[Projection]]) -> list[int]:
    """Every batch size drawn, ascending."""
    return sorted({p.batch for ps in groups.values() for p in ps})


def _finish_batch_axes(ax: Axes, groups: dict[str, list[Projection]], ylabel: str, title: str) -> None:
    """Log-log, a tick at every batch drawn (they are few), labels, legend."""
    batches = _all_batches(groups)
    ax.set(xscale="log", yscale="log", xlabel="batch", ylabel=ylabel, title=title)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.legend(fontsize=8)


def batch_economics(
    projections: Sequence[Projection],
    *,
    linear_from: str | None = None,
    title: str | None = None,
) -> Figure:
    """`projected_throughput` and `projected_cost` side by side, under a title that says these
    are bounds and for which workload (prompt and output tokens); "" for no title.

        >>> batch_economics([project("llama-3-8b", hw, batch=b) for hw in CATALOG for b in (1, 64)])
    """
    every = _projections(projections)
    fig, (left, right) = subplots(1, 2, figsize=(12, 4.2))
    projected_throughput(projections, linear_from=linear_from, ax=left)
    projected_cost(projections, ax=right)
    default = (
        f"Roofline bounds, not measurements (prompt {_each(p.prompt_tokens for p in every)}, "
        f"output {_each(p.output_tokens for p in every)})"
    )
    fig.suptitle(default if title is None else title, fontsize=10)
    return fig


# ---------------------------------------------------------------- energy


def tokens_per_watt(
    projections: Sequence[Projection],
    *,
    many_chips: int = 8,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Tokens/s per watt of board power (bound), a bar per projection, labelled with the chips
    it needs. Bars needing more than `many_chips` are red: the bound counts them as one ideal
    chip (free communication), far from reachable. Projections without a published power are
    left out, and a note names them. The title names the batch when every bar shares it; else
    each bar names its own. title: None for that default, "" for none.

        >>> tokens_per_watt(project_many("llama-3-8b", list(CATALOG), batch=64))
    """
    every = _projections(projections)
    many_chips = whole_number(many_chips, "many_chips", 0)
    shown = [p for p in every if p.tokens_per_s_per_watt is not None]
    if not shown:
        raise InvalidInputError(
            "no projection has a board power (power_w), so none has tokens/s per watt; "
            "choose chips whose datasheet publishes one"
        )
    fig, ax = figure_and_axes(ax, figsize=(8, 3.2))
    x = np.arange(len(shown))  # [n_bars]
    many = [p.chips > many_chips for p in shown]
    ax.bar(
        x,
        [p.tokens_per_s_per_watt for p in shown],
        color=[MANY_CHIPS if m else FEW_CHIPS for m in many],
        gid="tokens_per_watt",
    )
    for i, p in enumerate(shown):
        ax.annotate(
            f"{p.chips} chip{'s' if p.chips > 1 else ''}",
            (i, p.tokens_per_s_per_watt),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(x, _bar_names(shown))
    ax.margins(y=0.12)  # room above the tallest bar for its label
    _legend_and_note(ax, any(many), many_chips, [p.hardware for p in every if p.tokens_per_s_per_watt is None])
    ax.set(ylabel="tokens/s per W (bound)", title=_watt_title(shown) if title is None else title)
    return fig


def _watt_title(shown: list[Projection]) -> str:
    """The workload, and the batch when every bar shares it (else each bar names its own)."""
    batch = f", batch {shown[0].batch}" if len({p.batch for p in shown}) == 1 else ""
    return f"{_workload(shown)}{batch}: tokens/s per W, roofline bounds"


def _bar_names(shown: list[Projection]) -> list[str]:
    """The chip's name under its bar; with the batch too when a chip comes more than once or the
    bars' batches differ (then the title cannot name one)."""
    names, mixed = [p.hardware for p in shown], len({p.batch for p in shown}) > 1
    return [f"{p.hardware}\nbatch {p.batch}" if mixed or names.count(p.hardware) > 1 else p.hardware for p in shown]


def _legend_and_note(ax: Axes, any_many: bool, many_chips: int, unpowered: list[str]) -> None:
    """Say what red means (if a bar is red), and which chips were left out for lack of a power figure."""
    if any_many:
        ax.legend(
            handles=[
                Patch(color=FEW_CHIPS, label=f"up to {many_chips} chips"),
                Patch(color=MANY_CHIPS, label=f"more than {many_chips} chips, counted as one ideal chip"),
            ],
            fontsize=8,
            loc="upper left",
        )
    if unpowered:
        ax.annotate(
            f"no published power: {', '.join(unpowered)}",
            (1, 1),
            xycoords="axes fraction",
            xytext=(-4, -4),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=7,
            color="dimgray",
            gid="note",
        )
