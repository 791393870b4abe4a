"""What each sampling step does to a next-token distribution, and temperature to a text (lesson 06).
Artist gids: "after", "before", "cumulative:<name>", "nucleus:<name>", "top_p", "runs", "mean",
"extra:<name>".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.plots.common import figure_and_axes, figure_function, subplots
from minfer.sampling import top_p_filter


@figure_function
def token_probabilities(
    probs: np.ndarray,
    labels: Callable[[int], str] | Sequence[str],
    *,
    before: np.ndarray | None = None,
    top: int | np.ndarray = 30,
    log: bool = False,
    color: str = "C0",
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Bars of the `top` most likely tokens of probs [n_vocab] (or the ids `top` lists), over
    `before` in grey if given. labels: token id -> text. log: a log y axis, where a removed token shows.

        >>> token_probabilities(softmax(logits), lambda i: tok.decode([i]), top=30)
    """
    ranking = probs if before is None else before  # [n_vocab]: after a step, the tokens likely before it
    ids = np.argsort(-ranking, kind="stable")[:top] if np.ndim(top) == 0 else top  # [n_shown], in order
    texts = [str(labels(int(i)) if callable(labels) else labels[int(i)]) for i in ids]  # [n_shown]
    fig, ax = figure_and_axes(ax, figsize=(10, 3.2))
    x = np.arange(len(ids))  # [n_shown]
    if before is not None:
        ax.bar(x, before[ids], width=0.9, color="lightgrey", label="before", gid="before")
    ax.bar(x, probs[ids], width=0.8 if before is None else 0.5, color=color, label="after", gid="after")
    if before is not None:
        ax.legend(fontsize=8)
    ax.set_xticks(x, texts, rotation=90, fontsize=7)
    ax.set(ylabel="probability", yscale="log" if log else "linear")
    ax.set_title(f"the {len(ids)} most likely tokens" if title is None else title, fontsize=10)
    return fig


@figure_function
def token_probability_panels(
    panels: Mapping[str, np.ndarray],
    labels: Callable[[int], str] | Sequence[str],
    *,
    before: np.ndarray | None = None,
    top: int | np.ndarray = 30,
    log: bool = False,
    color: str = "C0",
) -> Figure:
    """`token_probabilities` of several distributions (title -> [n_vocab]) side by side, each the
    same tokens: the most likely of `before`, else of the first panel.

        >>> token_probability_panels({f"T = {t}": softmax(logits / t) for t in (0.5, 1, 1.5)}, label)
    """
    ranking = next(iter(panels.values())) if before is None else before  # [n_vocab]
    ids = np.argsort(-ranking, kind="stable")[:top] if np.ndim(top) == 0 else top  # [n_shown], every panel's
    fig, axes = subplots(1, len(panels), figsize=(4.33 * len(panels), 3.4), sharey=True)
    for ax, (name, probs) in zip(axes, panels.items()):
        token_probabilities(probs, labels, before=before, top=ids, log=log, color=color, ax=ax, title=name)
    for ax in axes[1:]:  # the shared axis says it once
        ax.set_ylabel("")
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    return fig


def nucleus_size(probs: np.ndarray, top_p: float) -> int:
    """How many tokens `minfer.sampling.top_p_filter` keeps from these probabilities.

    >>> nucleus_size(np.array([0.5, 0.3, 0.15, 0.05]), 0.9)   # 0.5 + 0.3 < 0.9 <= 0.5 + 0.3 + 0.15
    3
    """
    with np.errstate(divide="ignore"):  # log(0) = -inf: a token that already has no chance
        kept = top_p_filter(np.log(probs), top_p)  # [n_vocab], -inf = removed
    return int(np.count_nonzero((kept > -np.inf) & (probs > 0)))


@figure_function
def cumulative_probability(
    distributions: Mapping[str, np.ndarray], *, top_p: float = 0.9, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """The probability of the k most likely tokens against k, a curve per distribution (name ->
    [n_vocab]), with a dot where the nucleus `top_p_filter` keeps ends.

        >>> cumulative_probability({f"T = {t}": softmax(logits / t) for t in (0.5, 1.0)}, top_p=0.9)
    """
    fig, ax = figure_and_axes(ax, figsize=(7, 3.6))
    for i, (name, p) in enumerate(distributions.items()):
        cumulative = np.cumsum(np.sort(p)[::-1])  # [n_vocab], most likely first
        n = nucleus_size(p, top_p)
        label = f"{name}: nucleus of {n:,} tokens"
        ax.plot(np.arange(1, p.size + 1), cumulative, color=f"C{i}", gid=f"cumulative:{name}", label=label)
        ax.plot([n], [cumulative[n - 1]], "o", color=f"C{i}", gid=f"nucleus:{name}")
    ax.axhline(top_p, color="grey", linestyle="--", linewidth=1, gid="top_p")
    ax.set(xscale="log", xlabel="tokens, most likely first (log scale)", ylabel="cumulative probability")
    ax.set_title(f"top_p = {top_p:g} keeps the tokens up to the dashed line" if title is None else title)
    ax.legend(fontsize=8)
    return fig


@figure_function
def repetition_by_temperature(
    runs: Mapping[float, Sequence[float]],
    *,
    extra: Mapping[str, tuple[float, float]] | None = None,
    ylabel: str = "fraction of repeated 3-grams",
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Repetition (0 to 1) against temperature: runs, temperature -> [n_runs] fractions, as dots and
    a line through the means; `extra`, name -> (temperature, fraction), as squares.

        >>> repetition_by_temperature({0.0: [0.74], 1.0: [0.0, 0.02]}, extra={"penalty 1.3": (0.0, 0.02)})
    """
    temps = sorted(runs)  # [n_temps], coldest first
    fig, ax = figure_and_axes(ax, figsize=(7, 3.6))
    xs = np.concatenate([np.full(len(runs[t]), t) for t in temps])  # [n_runs]
    ax.plot(xs, np.concatenate([runs[t] for t in temps]), "o", color="C0", alpha=0.4, gid="runs")
    ax.plot(temps, [np.mean(runs[t]) for t in temps], "-", color="C0", gid="mean", label="mean over seeds")
    for i, (name, (t, value)) in enumerate((extra or {}).items()):
        ax.plot([t], [value], "s", color=f"C{i + 1}", markersize=9, gid=f"extra:{name}", label=name)
    ax.set(xlabel="temperature (0 = greedy)", ylabel=ylabel, ylim=(-0.05, 1.05))  # all of 0..1: figures compare
    ax.set_title("repetition by temperature" if title is None else title)
    ax.legend(fontsize=8)
    return fig
