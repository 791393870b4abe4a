"""The pictures of attention: who looks at whom, and how the cost grows (lesson 03).

Three figures, drawn from arrays the lesson computes with `minfer.attention`:

- `attention_map`: one head's weights as a heatmap, a row per query and a column per key,
  labelled with the tokens. With the causal mask the cells right of the diagonal (a query's
  future) are left blank, not drawn as 0, so the triangle a query may see stands out.
- `attention_heads`: the same for several heads (or layers) side by side, on one colour scale.
- `attention_growth`: measured or counted numbers against the sequence length on log-log axes,
  with guides of slope 1 and 2: the projections grow with n, attention with n**2.

Only the object API is used (`Figure`, never pyplot). Artists carry a `gid` ("attention",
"attention:3", "series:<label>", "slope:1", "slope:2") so tests and notebooks can find them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.plots.common import (
    check_probabilities,
    figure_and_axes,
    float_array,
    nonempty_mapping,
    positive,
    subplots,
    whole_number,
)

MASKED_TOL = 1e-6  # weight a causal head may leave in its future: exactly 0 from exp(-inf)
CMAP = "viridis"
BLANK = "white"  # the masked cells: not a weight of 0, no weight at all


# ---------------------------------------------------------------- checking what comes in


def _check_probs(probs, causal: bool, name: str = "probs") -> np.ndarray:
    """A 2-D float array [n_q, n_k], n_q <= n_k, of finite softmax rows; masked cells 0 if causal."""
    p = float_array(probs, name)  # [n_q, n_k]
    if p.ndim != 2 or p.size == 0:
        raise InvalidInputError(
            f"{name} must be one head's weights, 2-D [n_q, n_k], got shape {p.shape}; "
            "pick a head first, e.g. weights[head]"
        )
    n_q, n_k = p.shape
    if n_q > n_k:
        raise InvalidInputError(
            f"{name} has {n_q} queries but only {n_k} keys; a causal query sees itself, so n_q <= n_k "
            "(the rows are the last n_q positions, as in causal_mask): did you pass it transposed?"
        )
    if (p < 0).any():
        raise InvalidInputError(
            f"{name} must hold finite weights >= 0 (a softmax's output); mask with -inf *before* the softmax, not after"
        )
    check_probabilities(p, name)  # every row a softmax over the keys
    if causal:
        _check_future(p, name)
    return p


def _check_future(p: np.ndarray, name: str) -> None:
    """No weight where the causal mask is -inf (a masked softmax leaves exact zeros there)."""
    leak = causal_blank(*p.shape) & (p > MASKED_TOL)  # [n_q, n_k]
    if leak.any():
        i, j = np.argwhere(leak)[0]
        raise InvalidInputError(
            f"{name}[{i}, {j}] = {p[i, j]:.3g}: query {i} puts weight on a key in its future; "
            "pass causal=False to draw attention without the mask"
        )


def causal_blank(n_q: int, n_k: int) -> np.ndarray:
    """True where `causal_mask(n_q, n_k)` is -inf: query i (at position n_k - n_q + i) may not
    see key j. -> bool [n_q, n_k]"""
    q_pos = np.arange(n_k - n_q, n_k)[:, None]  # [n_q, 1]
    return np.arange(n_k)[None, :] > q_pos  # [n_q, n_k]


def _check_tokens(tokens, n_k: int) -> list[str]:
    """One label per key; None numbers the positions."""
    if tokens is None:
        return [str(j) for j in range(n_k)]
    if isinstance(tokens, str) or not isinstance(tokens, (Sequence, np.ndarray)):
        raise InvalidInputError(
            f"tokens must be a list of strings, one per key, not one string or a number, "
            f"got {tokens!r:.60}; decode each id: [tok.decode([i]) for i in ids]"
        )
    labels = [str(t) for t in tokens]
    if len(labels) != n_k:
        raise InvalidInputError(
            f"got {len(labels)} token labels for {n_k} keys: pass one label per key position "
            "(the whole sequence, cached tokens included)"
        )
    return labels


def _shown(label: str) -> str:
    """A label as drawn: a newline would break the axis, so it is written as \\n."""
    return label.replace("\n", "\\n")


def _cmap() -> Colormap:
    """The colour map with its NaN ("bad") colour set to blank."""
    return colormaps[CMAP].with_extremes(bad=BLANK)


# ---------------------------------------------------------------- one head


def attention_map(
    probs,
    tokens: Sequence[str] | None = None,
    *,
    causal: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
    colorbar: bool = True,
) -> Figure:
    """One head's attention weights: row i is query i, column j key j, colour the weight.

    probs: [n_q, n_k], each row a softmax over the keys (n_q < n_k: the queries are the last
    n_q positions, as in `causal_mask`). tokens: one label per key (None: the positions).
    causal: blank the cells the causal mask forbids, after checking they hold no weight;
    False draws every cell (attention without the mask). The colour scale is 0..1 always, so
    maps of different heads compare. The image has gid "attention"; its data is the weights,
    NaN where blank.

        >>> probs = softmax(scores + causal_mask(3, 3))          # [3, 3]
        >>> fig = attention_map(probs, ["In", " the", " beginning"], title="layer 0, head 1")
    """
    p = _check_probs(probs, causal)  # [n_q, n_k]
    n_q, n_k = p.shape
    labels = _check_tokens(tokens, n_k)
    fig, ax = figure_and_axes(ax, figsize=(1.5 + 0.32 * n_k, 1.2 + 0.32 * n_q))
    shown = np.where(causal_blank(n_q, n_k), np.nan, p) if causal else p  # [n_q, n_k]
    image = ax.imshow(shown, cmap=_cmap(), vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
    image.set_gid("attention")
    _label_axes(ax, labels, n_q)
    if title is not None:
        ax.set_title(title, fontsize=10)
    if colorbar:
        fig.colorbar(image, ax=ax, label="attention weight", shrink=0.8)
    return fig


def _label_axes(ax: Axes, labels: list[str], n_q: int) -> None:
    """Keys along the top (read like the text), queries down the side: the last n_q tokens."""
    n_k = len(labels)
    ax.set_xticks(range(n_k), [_shown(t) for t in labels], rotation=90, fontsize=8)
    ax.set_yticks(range(n_q), [_shown(t) for t in labels[n_k - n_q :]], fontsize=8)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("key (the token looked at)", fontsize=9)
    ax.set_ylabel("query (the token looking)", fontsize=9)


# ---------------------------------------------------------------- several heads


def attention_heads(
    probs_by_head,
    tokens: Sequence[str] | None = None,
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    causal: bool = True,
    title: str | None = None,
    panel_size: float = 2.6,
) -> Figure:
    """Several heads' weights side by side on one colour scale, one shared colour bar.

    probs_by_head: [n_maps, n_q, n_k], e.g. one layer's `[n_head, n_seq, n_seq]`, or every
    layer's stacked. titles: one per map (default "head 0", "head 1", ...). ncols: maps per row
    (default: up to 4). panel_size: each map's width and height in inches. Image i has gid
    f"attention:{i}".

        >>> fig = attention_heads(weights, tokens, titles=[f"head {h}" for h in range(n_head)])
    """
    maps = float_array(probs_by_head, "probs_by_head")  # [n_maps, n_q, n_k]
    if maps.ndim != 3 or maps.shape[0] == 0:
        raise InvalidInputError(
            f"probs_by_head must be [n_maps, n_q, n_k] (one map per head), got shape {maps.shape}; "
            "for a single head use attention_map"
        )
    n_maps = maps.shape[0]
    for i in range(n_maps):  # checked up front, so an error names the map
        _check_probs(maps[i], causal, f"probs_by_head[{i}]")
    titles = _check_titles(titles, n_maps)
    ncols = min(n_maps, 4) if ncols is None else whole_number(ncols, "ncols", 1)
    panel_size = positive(panel_size, "panel_size")  # inches
    nrows = -(-n_maps // ncols)  # ceil
    fig, axes = subplots(nrows, ncols, figsize=(panel_size * ncols + 1.2, panel_size * nrows + 0.6))
    for i, ax in enumerate(axes):  # [nrows * ncols] axes
        if i >= n_maps:
            ax.set_visible(False)  # the grid's spare cells
            continue
        attention_map(maps[i], tokens, causal=causal, ax=ax, title=titles[i], colorbar=False)
        ax.images[0].set_gid(f"attention:{i}")
        _thin_labels(ax, i % ncols == 0)
    fig.colorbar(axes[0].images[0], ax=list(axes[:n_maps]), label="attention weight", shrink=0.8)
    if title is not None:
        fig.suptitle(title)
    return fig


def _check_titles(titles, n_maps: int) -> list[str]:
    """One title per map; None numbers the heads."""
    if titles is None:
        return [f"head {i}" for i in range(n_maps)]
    if isinstance(titles, str) or not isinstance(titles, (Sequence, np.ndarray)):
        raise InvalidInputError(f"titles must be a list of strings, one per map, got {titles!r:.60}")
    if len(titles) != n_maps:
        raise InvalidInputError(f"got {len(titles)} titles for {n_maps} maps: pass one title per map")
    return [str(t) for t in titles]


def _thin_labels(ax: Axes, first_column: bool) -> None:
    """Small panels: smaller tick labels, axis names only on the first column."""
    ax.tick_params(labelsize=6)
    ax.set_xlabel("")
    if not first_column:
        ax.set_ylabel("")


# ---------------------------------------------------------------- growth with n


def attention_growth(
    n_seq: Sequence[int],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Numbers against the sequence length, log-log, with guides of slope 1 (grows with n) and
    slope 2 (grows with n**2) through the last point of the first series (at small n fixed
    costs hide the trend; the longest sequence shows it best).

    n_seq: [n_points] lengths in tokens (whole numbers), increasing. series: a dict, label ->
    [n_points] positive values (ms measured, FLOPs counted, ...). Line gids: f"series:{label}",
    "slope:1", "slope:2".

        >>> fig = attention_growth([64, 128, 256], {"attention": [0.3, 0.7, 4.4]}, ylabel="ms")
    """
    n = _check_lengths(n_seq)  # [n_points]
    nonempty_mapping(series, "series", "{'attention': [0.3, 0.7, 4.4]}")
    values = {label: _check_series(label, v, len(n)) for label, v in series.items()}  # label -> [n_points]
    fig, ax = figure_and_axes(ax, figsize=(7, 4.5))
    for label, v in values.items():
        ax.plot(n, v, "o-", lw=2, ms=5, gid=f"series:{label}", label=label)
    y_end = next(iter(values.values()))[-1]  # the guides meet the first series at its last point
    for slope, style in ((1, "--"), (2, ":")):
        ax.plot(
            n,
            y_end * (n / n[-1]) ** slope,
            style,
            color="gray",
            lw=1,
            gid=f"slope:{slope}",
            label="grows with n" if slope == 1 else "grows with n²",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(n, [str(int(x)) for x in n])
    ax.set_xlabel("sequence length n (tokens)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{ylabel} against n" if title is None else title)
    return fig


def _check_lengths(n_seq) -> np.ndarray:
    """Positive, increasing sequence lengths, at least two of them, in whole tokens."""
    n = float_array(n_seq, "n_seq")  # [n_points]
    if n.ndim != 1 or n.size < 2 or not (n > 0).all() or not (np.diff(n) > 0).all():
        raise InvalidInputError(f"n_seq must be at least two positive, increasing lengths, got {list(np.ravel(n_seq))}")
    if (n != np.round(n)).any():  # a tick labelled "1" for 1.5 would hide it
        raise InvalidInputError(f"n_seq must be whole numbers of tokens, got {list(n)}")
    return n


def _check_series(label: str, values, n_points: int) -> np.ndarray:
    """One positive finite value per length (log axes have no place for 0)."""
    v = float_array(values, f"series[{label!r}]")  # [n_points]
    if v.shape != (n_points,):
        raise InvalidInputError(f"series {label!r} has shape {v.shape}; it needs one value per length, ({n_points},)")
    if not (v > 0).all():
        raise InvalidInputError(f"series {label!r} must be positive and finite (log axes), got {list(v)}")
    return v
