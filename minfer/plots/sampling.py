"""The pictures of sampling: what each step does to one next-token distribution (lesson 06).

- `token_probabilities`: bars of the most likely tokens, optionally over the distribution
  before a step (grey), so that the step's effect on the same tokens shows. On a log axis a
  token a filter removed has no bar, next to the ones it kept and renormalized.
- `token_probability_panels`: several of those side by side on one y axis (temperatures,
  filters), always the same tokens in the same order.
- `cumulative_probability`: the probability of the tokens added up, most likely first, and
  the rank where top-p's nucleus ends, for one distribution or several.
- `repetition_by_temperature`: how much generated text repeats itself, run by run, against
  the temperature it was sampled at.

Artists carry a gid ("after", "before", "cumulative:<name>", "nucleus:<name>", "top_p",
"runs", "mean", "extra:<name>") so tests and notebooks can find them again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.plots.common import check_probabilities, figure_and_axes, float_array, nonempty_mapping, subplots
from minfer.sampling import SamplingParams, top_p_filter

Labels = Sequence[str] | Callable[[int], str]  # a token id -> the text shown under its bar
CUMULATIVE_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")


# ---------------------------------------------------------------- checking what comes in


def _probabilities(values, name: str, n_vocab: int | None = None, other: str = "probs") -> np.ndarray:
    """values as a float64 [n_vocab] distribution (>= 0, summing to 1); else a named error.

    A filtered distribution counts once renormalized, e.g. softmax(top_p_filter(logits, 0.9)).
    """
    p = float_array(values, name)  # [n_vocab]
    if p.ndim != 1 or p.size == 0:
        raise InvalidInputError(
            f"{name} must be a 1-D array of probabilities [n_vocab], got shape {p.shape}; "
            "pass softmax(logits) of one position"
        )
    if n_vocab is not None and p.size != n_vocab:
        raise InvalidInputError(
            f"{name} has {p.size} entries but {other} has {n_vocab}: both must be "
            "distributions over the same vocabulary"
        )
    check_probabilities(p, name)
    return p


def _shown_ids(top, ranking: np.ndarray) -> np.ndarray:
    """The token ids to draw, in order: the `top` most likely of `ranking`, or `top` itself."""
    if isinstance(top, Integral) and not isinstance(top, bool):
        if top < 1:
            raise InvalidInputError(f"top={top} must be at least 1: the number of tokens to show")
        return np.argsort(-ranking, kind="stable")[:top]  # [top] ids, most likely first
    try:
        ids = np.asarray(top)  # [n_shown]
    except ValueError:  # a ragged list
        ids = np.empty((0,))  # refused below, by shape
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise InvalidInputError(f"top must be a count or a 1-D array of token ids, got {top!r}")
    if ids.min() < 0 or ids.max() >= ranking.size:
        raise InvalidInputError(f"top holds token ids outside 0..{ranking.size - 1} (n_vocab = {ranking.size})")
    return ids


def _label_texts(labels: Labels, ids: np.ndarray) -> list[str]:
    """The text under each bar, from a function of the id or a sequence (or 1-D array) indexed by id."""
    if callable(labels):
        return [str(labels(int(i))) for i in ids]
    listed = isinstance(labels, Sequence) and not isinstance(labels, str)  # a list, a tuple
    listed = listed or isinstance(labels, np.ndarray) and labels.ndim == 1  # np.array(vocab)
    if not listed or len(labels) <= ids.max():
        raise InvalidInputError(
            "labels must be a function token id -> text (e.g. lambda i: tok.decode([i])) "
            "or a sequence of texts indexed by token id, long enough for every id shown"
        )
    return [str(labels[int(i)]) for i in ids]


def _number(value, name: str, low: float, high: float) -> float:
    """A finite real in [low, high] (not a bool); else a named error."""
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
        raise InvalidInputError(f"{name}={value!r} must be a number between {low:g} and {high:g}")
    return float(value)


def _top_p(value) -> float:
    """top_p in (0, 1], checked by `SamplingParams` itself, so the figure allows what sampling does."""
    return float(SamplingParams(top_p=value).top_p)


# ---------------------------------------------------------------- bars of the likely tokens


def token_probabilities(
    probs,
    labels: Labels,
    *,
    before=None,
    top=30,
    log: bool = False,
    color: str = "C0",
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Bars of the probabilities of the most likely tokens, over `before` in grey if given.

    probs, before: [n_vocab] probabilities, each summing to 1. top: how many tokens to show,
    the most likely of `before` if given (so the same tokens as before the step), else of
    `probs`; or an array of token ids to show in that order. labels: token id -> text (a
    function, or a sequence or array indexed by id).
    log: a log y axis, where a renormalized token many times its old height and a removed one
    (no bar) both show.

        >>> token_probabilities(softmax(logits), lambda i: tok.decode([i]), top=30)
    """
    p = _probabilities(probs, "probs")  # [n_vocab]
    old = None if before is None else _probabilities(before, "before", p.size)  # [n_vocab]
    ids = _shown_ids(top, p if old is None else old)  # [n_shown]
    texts = _label_texts(labels, ids)  # [n_shown], checked before anything is drawn
    fig, ax = figure_and_axes(ax, figsize=(10, 3.2))
    x = np.arange(len(ids))  # [n_shown]
    if old is not None:
        ax.bar(x, old[ids], width=0.9, color="lightgrey", label="before", gid="before")
    ax.bar(x, p[ids], width=0.8 if old is None else 0.5, color=color, label="after", gid="after")
    ax.set_xticks(x, texts, rotation=90, fontsize=7)
    ax.set_ylabel("probability")
    if log:
        ax.set_yscale("log")
    if old is not None:
        ax.legend(fontsize=8)
    ax.set_title(f"the {len(ids)} most likely tokens" if title is None else title, fontsize=10)
    return fig


def token_probability_panels(
    panels: Mapping[str, object],
    labels: Labels,
    *,
    before=None,
    top=30,
    log: bool = False,
    color: str = "C0",
) -> Figure:
    """`token_probabilities` for several distributions side by side, one shared y axis.

    panels: title -> [n_vocab] probabilities. Every panel shows the same tokens in the same
    order: the `top` most likely of `before` if given, else of the first panel (or the ids in
    `top`). The y label and the legend appear once, on the left.

        >>> token_probability_panels({f"T = {t}": softmax(logits / t) for t in (0.5, 1, 1.5)}, label)
    """
    dists = _distributions(panels, "panels", one_vocab=True)  # title -> [n_vocab]
    first = next(iter(dists.values()))  # [n_vocab]
    ids = _shown_ids(top, first if before is None else _probabilities(before, "before", first.size))
    fig, axes = subplots(1, len(dists), figsize=(4.33 * len(dists), 3.4), sharey=True)
    for i, (ax, (name, probs)) in enumerate(zip(axes, dists.items())):
        token_probabilities(probs, labels, before=before, top=ids, log=log, color=color, ax=ax, title=name)
        if i > 0:  # the shared axis says it once
            ax.set_ylabel("")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
    return fig


def _distributions(value, name: str, one_vocab: bool) -> dict[str, np.ndarray]:
    """A non-empty dict of key -> [n_vocab] distribution, each checked (one_vocab: all the same size)."""
    nonempty_mapping(value, name, "{'T = 1': softmax(logits)}")
    dists = {}
    for key, probs in value.items():
        n_vocab = next(iter(dists.values())).size if one_vocab and dists else None  # the first one's
        dists[key] = _probabilities(probs, f"{name}[{key!r}]", n_vocab, "the first")  # [n_vocab]
    return dists


# ---------------------------------------------------------------- the nucleus


def nucleus_size(probs, top_p: float) -> int:
    """How many tokens `minfer.sampling.top_p_filter` keeps from these probabilities.

    >>> nucleus_size([0.5, 0.3, 0.15, 0.05], 0.9)   # 0.5 + 0.3 < 0.9 <= 0.5 + 0.3 + 0.15
    3
    """
    p = _probabilities(probs, "probs")  # [n_vocab]
    with np.errstate(divide="ignore"):  # log(0) = -inf: a token that already has no chance
        kept = top_p_filter(np.log(p), _top_p(top_p))  # [n_vocab], -inf = removed
    return int(np.count_nonzero((kept > -np.inf) & (p > 0)))


def cumulative_probability(
    distributions: Mapping[str, object],
    *,
    top_p: float = 0.9,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """The probability of the k most likely tokens against k (log x), one curve per distribution,
    with a dot where the top-p nucleus ends: the rank at which the curve reaches `top_p`.

    distributions: name -> [n_vocab] probabilities, each summing to 1 (one per temperature, say).
    The nucleus is counted by `minfer.sampling.top_p_filter` itself, so it is the set sampling
    would keep.

        >>> cumulative_probability({f"T = {t}": softmax(logits / t) for t in (0.5, 1.0)}, top_p=0.9)
    """
    dists = _distributions(distributions, "distributions", one_vocab=False)  # name -> [n_vocab]
    top_p = _top_p(top_p)
    fig, ax = figure_and_axes(ax, figsize=(7, 3.6))
    for (name, p), color in zip(dists.items(), CUMULATIVE_COLORS * len(dists)):
        _draw_cumulative(ax, name, p, top_p, color)
    ax.axhline(top_p, color="grey", linestyle="--", linewidth=1, gid="top_p")
    ax.set_xscale("log")
    ax.set_xlabel("tokens, most likely first (log scale)")
    ax.set_ylabel("cumulative probability")
    ax.set_title(f"top_p = {top_p:g} keeps the tokens up to the dashed line" if title is None else title)
    ax.legend(fontsize=8)
    return fig


def _draw_cumulative(ax: Axes, name: str, p: np.ndarray, top_p: float, color: str) -> None:
    """One distribution's curve and the dot where its nucleus ends."""
    cumulative = np.cumsum(np.sort(p)[::-1])  # [n_vocab], most likely first
    n = nucleus_size(p, top_p)
    ax.plot(
        np.arange(1, p.size + 1),
        cumulative,
        color=color,
        gid=f"cumulative:{name}",
        label=f"{name}: nucleus of {n:,} tokens",
    )
    ax.plot([n], [cumulative[n - 1]], "o", color=color, gid=f"nucleus:{name}")


# ---------------------------------------------------------------- repetition


def repetition_by_temperature(
    runs: Mapping[float, Sequence[float]],
    *,
    extra: Mapping[str, tuple[float, float]] | None = None,
    ylabel: str = "fraction of repeated 3-grams",
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """A repetition measure of generated texts (a fraction, 0 to 1) against temperature: one
    faint dot per run (seed), and a line through the mean at each temperature.

    runs: temperature (0 = greedy) -> the fractions of its runs (a list or array). extra:
    settings off the temperature axis, name -> (temperature, fraction) as a tuple, list or array,
    drawn as squares (a repetition penalty).

        >>> repetition_by_temperature({0.0: [0.74], 1.0: [0.0, 0.02]}, extra={"penalty 1.3": (0.0, 0.02)})
    """
    by_t = _runs(runs)  # [(temperature, fractions)], coldest first
    if extra is not None and not isinstance(extra, Mapping):
        raise InvalidInputError(f"extra must be a dict, name -> (temperature, fraction), or None; got {extra!r:.60}")
    points = {name: _extra_point(name, point) for name, point in (extra or {}).items()}  # name -> (t, fraction)
    fig, ax = figure_and_axes(ax, figsize=(7, 3.6))
    xs = np.concatenate([np.full(len(r), t) for t, r in by_t])  # [n_runs]
    ax.plot(xs, np.concatenate([r for _, r in by_t]), "o", color="C0", alpha=0.4, gid="runs")
    ax.plot([t for t, _ in by_t], [r.mean() for _, r in by_t], "-", color="C0", gid="mean", label="mean over seeds")
    for i, (name, (t, value)) in enumerate(points.items()):
        ax.plot([t], [value], "s", color=f"C{i + 1}", markersize=9, gid=f"extra:{name}", label=name)
    ax.set_xlabel("temperature (0 = greedy)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.05, 1.05)  # a fraction: the whole range, so that runs compare across figures
    ax.set_title("repetition by temperature" if title is None else title)
    ax.legend(fontsize=8)
    return fig


def _runs(runs: Mapping[float, Sequence[float]]) -> list[tuple[float, np.ndarray]]:
    """(temperature, [n_runs] fractions) sorted by temperature, each checked."""
    nonempty_mapping(runs, "runs", "{0.0: [0.74], 1.0: [0.0, 0.02]} (temperature -> fractions)")
    checked = []
    for t, values in runs.items():
        r = float_array(values, f"runs[{t!r}]")  # [n_runs]
        if r.ndim != 1 or r.size == 0 or not np.all((r >= 0) & (r <= 1)):
            raise InvalidInputError(
                f"runs[{t!r}] must be a non-empty list of fractions between 0 and 1, got {values!r}"
            )
        checked.append((_number(t, "a temperature", 0, math.inf), r))
    return sorted(checked, key=lambda tr: tr[0])


def _extra_point(name: str, point) -> tuple[float, float]:
    """(temperature, fraction) of one extra setting; else a named error."""
    if not isinstance(point, tuple | list | np.ndarray) or len(point) != 2:
        raise InvalidInputError(f"extra[{name!r}] must be (temperature, fraction), got {point!r}")
    return _number(point[0], f"extra[{name!r}]'s temperature", 0, math.inf), _number(
        point[1], f"extra[{name!r}]'s fraction", 0, 1
    )
