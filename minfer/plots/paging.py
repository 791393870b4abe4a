"""What a paged KV cache saves and where it puts each position (lesson 14). Artist gids:
"contiguous", "paged", "filled" (reserved_memory); "share", "contiguous share"
(filled_share_by_block_size); "pool", "position", "shared" (pool_map); "blocks", "label"
(block_states).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from minfer.plots.common import figure_and_axes, figure_function
from minfer.serving.paged import slot_of

BLOCK_STATE_COLORS = {"used": "tab:blue", "cached": "tab:green", "free": "white"}


def _reserved_by_blocks(lengths: np.ndarray, block_size: int) -> np.ndarray:
    """Positions reserved when each sequence holds whole blocks. lengths: [n_seq] -> [n_seq]"""
    return -(-lengths // block_size) * block_size


@figure_function
def reserved_memory(
    lengths: Sequence[int], n_ctx: int, block_size: int, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """One bar per sequence, shortest first: the positions it fills, what a paged cache reserves
    for it (whole blocks of `block_size`) and what a contiguous cache reserves (all n_ctx); the
    legend gives the share of each reservation that holds a key.

        >>> reserved_memory([37, 120, 5, 201], n_ctx=256, block_size=16)
    """
    n = np.sort(np.asarray(lengths, dtype=np.int64))  # [n_seq] positions filled
    paged = _reserved_by_blocks(n, block_size)  # [n_seq]
    x = np.arange(len(n))  # [n_seq]
    fig, ax = figure_and_axes(ax, figsize=(7, 4))
    total = n.sum()
    ax.bar(
        x,
        np.full(len(n), n_ctx),
        width=1.0,
        color="lightgrey",
        gid="contiguous",
        label=f"contiguous: n_ctx = {n_ctx} reserved each ({total / (n_ctx * len(n)):.0%} filled)",
    )
    ax.bar(
        x,
        paged,
        width=1.0,
        color="tab:orange",
        alpha=0.6,
        gid="paged",
        label=f"paged: blocks of {block_size} ({total / paged.sum():.0%} filled)",
    )
    ax.bar(x, n, width=1.0, color="tab:blue", gid="filled", label="positions filled (prompt + output)")
    ax.set(xlabel="sequence (shortest first)", ylabel="positions of KV cache", xlim=(-0.5, len(n) - 0.5))
    ax.set_title("what each sequence reserves" if title is None else title)
    ax.legend(fontsize=8, loc="upper left")
    return fig


@figure_function
def filled_share_by_block_size(
    lengths: Sequence[int],
    block_sizes: Sequence[int],
    *,
    n_ctx: int | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """The share of reserved positions that hold a key, against the block size (log 2 axis): each
    sequence wastes the unfilled tail of its last block. With `n_ctx`, the contiguous cache's
    share (n_ctx reserved per sequence) as a dashed line.

        >>> filled_share_by_block_size([37, 120, 5, 201], [1, 4, 16, 64, 256], n_ctx=256)
    """
    n = np.asarray(lengths, dtype=np.int64)  # [n_seq]
    sizes = np.asarray(block_sizes, dtype=np.int64)  # [n_sizes]
    share = [n.sum() / _reserved_by_blocks(n, int(b)).sum() for b in sizes]  # [n_sizes]
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    ax.plot(sizes, share, "o-", color="tab:orange", gid="share", label="paged")
    if n_ctx is not None:
        contiguous = n.sum() / (n_ctx * len(n))
        ax.axhline(
            contiguous, color="grey", linestyle="--", gid="contiguous share", label=f"contiguous (n_ctx = {n_ctx})"
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.set(xlabel="block size (positions)", ylabel="share of reserved positions filled", ylim=(0, 1.02))
    ax.set_title("the tail of the last block" if title is None else title)
    ax.legend(fontsize=8, loc="lower left")
    return fig


@figure_function
def pool_map(
    tables: Mapping[str, Sequence[int]],
    lengths: Mapping[str, int],
    n_blocks: int,
    block_size: int,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """The pool as a grid, one column per physical block and one row per offset: each cell
    coloured by the sequence whose position lives there (through its block table, `slot_of`)
    and labelled with that position; a cell two sequences share (a cached prefix) is hatched.

        >>> pool_map({"A": [7, 2, 9], "B": [0, 4]}, {"A": 40, "B": 20}, n_blocks=10, block_size=16)
    """
    owner = np.full((block_size, n_blocks), -1)  # [block_size, n_blocks]: index of the sequence, -1 empty
    users = np.zeros((block_size, n_blocks), dtype=np.int64)  # [block_size, n_blocks]: sequences using it
    labels: dict[tuple[int, int], int] = {}  # (offset, block) -> position
    for k, (name, table) in enumerate(tables.items()):
        for p in range(lengths[name]):
            block, offset = slot_of(np.asarray(table), p, block_size)
            owner[offset, block], labels[offset, block] = k, p
            users[offset, block] += 1
    fig, ax = figure_and_axes(ax, figsize=(max(6, 0.45 * n_blocks + 2), max(2.5, 0.3 * block_size + 1.5)))
    colors = [f"C{k}" for k in range(len(tables))]
    ax.imshow(
        owner, cmap=ListedColormap(["white", *colors]), vmin=-1.5, vmax=len(tables) - 0.5, aspect="auto", gid="pool"
    )
    for (offset, block), p in labels.items():
        ax.text(block, offset, str(p), ha="center", va="center", fontsize=7, color="white", gid="position")
    for offset, block in zip(*np.nonzero(users > 1)):
        ax.add_patch(Rectangle((block - 0.5, offset - 0.5), 1, 1, fill=False, hatch="///", gid="shared"))
    ax.set_xticks(np.arange(n_blocks))
    ax.set_xticks(np.arange(n_blocks + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(block_size + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="black", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set(xlabel="physical block", ylabel="offset in the block")
    handles = [Patch(color=c, label=f"{name}: table {list(tables[name])}") for c, name in zip(colors, tables)]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("the pool: each position where its block table puts it" if title is None else title)
    return fig


@figure_function
def block_states(
    states: Sequence[str], labels: Sequence[str] | None = None, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """The block manager's map (`Engine.stats().block_map()`): one cell per block, "used" (held by
    a sequence), "cached" (free, still holding a prefix another request can share) or "free";
    `labels`, one short string per block (whose prefix it holds, say), are written in the cells.

        >>> block_states(engine.stats().block_map())
    """
    names = list(BLOCK_STATE_COLORS)
    codes = np.array([[names.index(s) for s in states]])  # [1, n_blocks]
    fig, ax = figure_and_axes(ax, figsize=(max(6, 0.12 * len(states) + 1), 1.6))
    ax.imshow(
        codes,
        cmap=ListedColormap(list(BLOCK_STATE_COLORS.values())),
        vmin=-0.5,
        vmax=len(names) - 0.5,
        aspect="auto",
        gid="blocks",
    )
    for block, text in enumerate(labels or ()):
        ax.text(block, 0, text, ha="center", va="center", fontsize=8, color="white", gid="label")
    ax.set_xticks(np.arange(len(states) + 1) - 0.5, minor=True)
    ax.grid(which="minor", axis="x", color="black", linewidth=0.3)
    ax.tick_params(which="minor", length=0)
    ax.set(yticks=[], xlabel="block")
    handles = [
        Patch(facecolor=c, edgecolor="black", label=f"{s}: {list(states).count(s)}")
        for s, c in BLOCK_STATE_COLORS.items()
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("KV blocks" if title is None else title)
    return fig
