"""Who looks at whom, one head or several, and how attention's cost grows with n (lesson 03).
Artist gids: "attention", "attention:<i>", "series:<label>", "slope:1", "slope:2".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.plots.common import figure_and_axes, figure_function, subplots

CMAP = colormaps["viridis"].with_extremes(bad="white")  # NaN, a masked cell: no weight at all, not 0


def causal_blank(n_q: int, n_k: int) -> np.ndarray:
    """True where `causal_mask(n_q, n_k)` is -inf: query i (at position n_k - n_q + i) may not
    see key j. -> bool [n_q, n_k]"""
    q_pos = np.arange(n_k - n_q, n_k)[:, None]  # [n_q, 1]
    return np.arange(n_k)[None, :] > q_pos  # [n_q, n_k]


@figure_function
def attention_map(
    probs: np.ndarray,
    tokens: Sequence[str] | None = None,
    *,
    causal: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
    colorbar: bool = True,
) -> Figure:
    """One head's weights probs [n_q, n_k], queries down and keys across (n_q < n_k: the last n_q
    positions, as in `causal_mask`); `causal` blanks what the mask forbids. tokens: a label per key.

        >>> fig = attention_map(softmax(scores + causal_mask(3, 3)), ["In", " the", " beginning"])
    """
    n_q, n_k = probs.shape
    labels = [str(j) for j in range(n_k)] if tokens is None else [str(t).replace("\n", "\\n") for t in tokens]
    fig, ax = figure_and_axes(ax, figsize=(1.5 + 0.32 * n_k, 1.2 + 0.32 * n_q))
    shown = np.where(causal_blank(n_q, n_k), np.nan, probs) if causal else probs  # [n_q, n_k]
    image = ax.imshow(shown, cmap=CMAP, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal", gid="attention")
    ax.set_xticks(range(n_k), labels, rotation=90, fontsize=8)  # keys along the top, read like the text
    ax.set_yticks(range(n_q), labels[n_k - n_q :], fontsize=8)  # queries: the last n_q tokens
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("key (the token looked at)", fontsize=9)
    ax.set_ylabel("query (the token looking)", fontsize=9)
    ax.set_title("" if title is None else title, fontsize=10)
    if colorbar:
        fig.colorbar(image, ax=ax, label="attention weight", shrink=0.8)
    return fig


@figure_function
def attention_heads(
    probs_by_head: np.ndarray,
    tokens: Sequence[str] | None = None,
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    causal: bool = True,
    title: str | None = None,
    panel_size: float = 2.6,
) -> Figure:
    """Several maps [n_maps, n_q, n_k] side by side on one colour scale, `ncols` to a row (default
    up to 4), `panel_size` inches each; titles default to "head 0", ...

        >>> fig = attention_heads(weights, tokens, titles=[f"head {h}" for h in range(n_head)])
    """
    n_maps = len(probs_by_head)
    titles = [f"head {i}" for i in range(n_maps)] if titles is None else titles
    ncols = min(n_maps, 4) if ncols is None else ncols
    nrows = -(-n_maps // ncols)  # ceil
    fig, axes = subplots(nrows, ncols, figsize=(panel_size * ncols + 1.2, panel_size * nrows + 0.6))
    for ax in axes[n_maps:]:  # the grid's spare cells
        ax.set_visible(False)
    for i, ax in enumerate(axes[:n_maps]):
        attention_map(probs_by_head[i], tokens, causal=causal, ax=ax, title=titles[i], colorbar=False)
        ax.images[0].set_gid(f"attention:{i}")
        ax.tick_params(labelsize=6)
        ax.set_xlabel("")
        if i % ncols:  # axis names on the first column only
            ax.set_ylabel("")
    fig.colorbar(axes[0].images[0], ax=list(axes[:n_maps]), label="attention weight", shrink=0.8)
    if title is not None:
        fig.suptitle(title)
    return fig


@figure_function
def attention_growth(
    n_seq: Sequence[int],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Values against the sequence length, log-log, with guides of slope 1 (n) and 2 (n**2)
    through the first series' last point. series: label -> [n_points] values at lengths n_seq.

        >>> fig = attention_growth([64, 128, 256], {"attention": [0.3, 0.7, 4.4]}, ylabel="ms")
    """
    n = np.asarray(n_seq, dtype=float)  # [n_points]
    fig, ax = figure_and_axes(ax, figsize=(7, 4.5))
    for label, values in series.items():
        ax.plot(n, values, "o-", lw=2, ms=5, gid=f"series:{label}", label=label)
    y_end = next(iter(series.values()))[-1]  # at small n fixed costs hide the trend: meet at the end
    for slope, style, label in ((1, "--", "grows with n"), (2, ":", "grows with n²")):
        ax.plot(n, y_end * (n / n[-1]) ** slope, style, color="gray", lw=1, gid=f"slope:{slope}", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [str(int(x)) for x in n])
    ax.set(yscale="log", xlabel="sequence length n (tokens)", ylabel=ylabel)
    ax.set_title(f"{ylabel} against n" if title is None else title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return fig
