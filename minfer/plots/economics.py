"""Roofline projections (`minfer.perf.whatif.Projection`) on other chips, by batch and by chip:
bounds from datasheets, never measurements (lesson 12). Artist gids: "tokens_per_s:<hardware>",
"linear", "usd:<hardware>", "tokens_per_watt", "note".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from minfer.perf.whatif import Projection
from minfer.plots.common import figure_and_axes, figure_function, subplots

FEW_CHIPS, MANY_CHIPS = "C0", "C3"  # bar colours: a reachable setup, and an ideal pile of chips


def _each(values: Iterable) -> str:
    """The distinct values in order, joined: "512", or "512 / 128" when projections differ."""
    return " / ".join(dict.fromkeys(str(v) for v in values))


def _workload(projections: Sequence[Projection]) -> str:
    """ "llama-3-8b bfloat16": what was projected (each one, in order, when they differ)."""
    return _each(f"{p.arch} {p.dtype}" for p in projections)


def _lines_by_batch(ax: Axes, projections: Sequence[Projection], field: str, gid: str) -> dict[str, list[Projection]]:
    """A line per chip through (batch, `field`), log-log, a tick per batch; hardware -> its projections."""
    groups: dict[str, list[Projection]] = {}
    for p in projections:
        groups.setdefault(p.hardware, []).append(p)
    for hardware, ps in groups.items():
        ps.sort(key=lambda p: p.batch)
        values = [getattr(p, field) for p in ps]
        ax.plot([p.batch for p in ps], values, "o-", ms=3, gid=f"{gid}:{hardware}", label=hardware)
    batches = sorted({p.batch for p in projections})
    ax.set(xscale="log", yscale="log", xlabel="batch")
    ax.set_xticks(batches, [str(b) for b in batches])
    return groups


@figure_function
def projected_throughput(
    projections: Sequence[Projection],
    *,
    linear_from: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Decode tokens/s (bound) against the batch, a line per chip; with `linear_from` (a chip drawn)
    its smallest batch's rate times the batch, the perfect sharing memory-bound decode nears.

        >>> ps = [project("llama-3-8b", hw, batch=b) for hw in ("h100-sxm", "l4") for b in (1, 8, 64)]
        >>> projected_throughput(ps, linear_from="h100-sxm")
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 4.2))
    groups = _lines_by_batch(ax, projections, "tokens_per_s", "tokens_per_s")
    if linear_from is not None:
        base = groups[linear_from][0]  # its smallest batch
        batch = np.array(sorted({p.batch for p in projections}), dtype=float)  # [n_batches]
        label = f"{linear_from}, batch x (batch {base.batch})"
        ax.plot(batch, base.tokens_per_s * batch / base.batch, ":", color="grey", gid="linear", label=label)
    default = f"{_workload(projections)}: throughput bound"
    ax.set(ylabel="decode tokens/s (bound)", title=default if title is None else title)
    ax.legend(fontsize=8)
    return fig


@figure_function
def projected_cost(projections: Sequence[Projection], *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Dollars per million output tokens (bound) against the batch, a line per chip: a chip costs
    the same per hour busy or idle, so the more tokens/s, the cheaper each token.

        >>> projected_cost([project("llama-3-8b", "h100-sxm", batch=b) for b in (1, 8, 64)])
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 4.2))
    _lines_by_batch(ax, projections, "usd_per_million_tokens", "usd")
    default = f"{_workload(projections)}: cost per token bound"
    ax.set(ylabel="$ per million output tokens (bound)", title=default if title is None else title)
    ax.legend(fontsize=8)
    return fig


@figure_function
def batch_economics(
    projections: Sequence[Projection], *, linear_from: str | None = None, title: str | None = None
) -> Figure:
    """`projected_throughput` beside `projected_cost`, under a title that says these are bounds,
    and for which prompt and output lengths.

        >>> batch_economics([project("llama-3-8b", hw, batch=b) for hw in CATALOG for b in (1, 64)])
    """
    fig, (left, right) = subplots(1, 2, figsize=(12, 4.2))
    projected_throughput(projections, linear_from=linear_from, ax=left)
    projected_cost(projections, ax=right)
    prompt, output = _each(p.prompt_tokens for p in projections), _each(p.output_tokens for p in projections)
    default = f"Roofline bounds, not measurements (prompt {prompt}, output {output})"
    fig.suptitle(default if title is None else title, fontsize=10)
    return fig


@figure_function
def tokens_per_watt(
    projections: Sequence[Projection], *, many_chips: int = 8, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Tokens/s per watt (bound), a bar per projection labelled with the chips it needs, red past
    `many_chips` (counted as one ideal chip); a note names the chips without a published power.

        >>> tokens_per_watt(project_many("llama-3-8b", list(CATALOG), batch=64))
    """
    shown = [p for p in projections if p.tokens_per_s_per_watt is not None]
    unpowered = [p.hardware for p in projections if p.tokens_per_s_per_watt is None]
    fig, ax = figure_and_axes(ax, figsize=(8, 3.2))
    x = np.arange(len(shown))  # [n_bars]
    colors = [MANY_CHIPS if p.chips > many_chips else FEW_CHIPS for p in shown]
    bars = ax.bar(x, [p.tokens_per_s_per_watt for p in shown], color=colors, gid="tokens_per_watt")
    ax.bar_label(bars, [f"{p.chips} chip{'s' if p.chips > 1 else ''}" for p in shown], fontsize=8)
    mixed = len({p.batch for p in shown}) > 1  # then each bar names its batch, not the title
    names = [p.hardware for p in shown]
    ax.set_xticks(x, [f"{n}\nbatch {p.batch}" if mixed or names.count(n) > 1 else n for n, p in zip(names, shown)])
    ax.margins(y=0.12)  # room above the tallest bar for its label
    if MANY_CHIPS in colors:
        few_patch = Patch(color=FEW_CHIPS, label=f"up to {many_chips} chips")
        many_patch = Patch(color=MANY_CHIPS, label=f"more than {many_chips} chips, counted as one ideal chip")
        ax.legend(handles=[few_patch, many_patch], fontsize=8, loc="upper left")
    if unpowered:
        note = f"no published power: {', '.join(unpowered)}"
        ax.text(0.99, 0.97, note, transform=ax.transAxes, ha="right", va="top", fontsize=7, color="dimgray", gid="note")
    default = f"{_workload(shown)}{'' if mixed else f', batch {shown[0].batch}'}: tokens/s per W, roofline bounds"
    ax.set(ylabel="tokens/s per W (bound)", title=default if title is None else title)
    return fig
