"""What a step costs, FLOPs against bytes, counted from a model's shape (lesson 08). Artist gids:
"share:weights", "share:kv_cache", "share:activations", "batch_weights"; "prefill:<name>",
"decode:<name>", "ridge", "half".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.perf.counts import Arch, decode_cost, prefill_cost
from minfer.perf.report import fmt
from minfer.plots.common import figure_and_axes, figure_function

SHARES = (("weights", "tab:blue"), ("KV cache", "tab:red"), ("activations", "tab:gray"))  # stacked in this order
ARCH_COLORS = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def decode_byte_shares(arch: Arch, contexts: Sequence[int], n_batch: int = 1) -> np.ndarray:
    """[len(contexts), 3]: per context T (keys the new token attends over), the shares of one
    decode step's bytes that are weights, KV cache (read and written) and activations.

        >>> decode_byte_shares(ARCHS["gpt2"], [1, 1024])[:, 1]   # the KV cache's share
    """
    costs = [decode_cost(arch, n_past=int(t) - 1, n_batch=n_batch) for t in contexts]
    rows = [(c.weight_bytes, c.kv_read + c.kv_write, c.act_read + c.act_write) for c in costs]
    parts = np.array(rows, dtype=float)  # [n_contexts, 3] bytes: weights, KV cache, activations
    return parts / parts.sum(axis=1, keepdims=True)


@figure_function
def byte_shares(
    arch: Arch, *, compare_batch: int | None = 16, points: int = 48, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """The shares of one decode step's bytes (weights, KV cache, activations) stacked, against the
    context T from 1 to `arch.n_ctx`; a dashed line splits the step of `compare_batch` sequences.

        >>> byte_shares(ARCHS["gpt2"], compare_batch=16, title="GPT-2 small")
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    contexts = np.unique(np.linspace(1, arch.n_ctx, points).astype(int))  # [n_T]
    shares = decode_byte_shares(arch, contexts)  # [n_T, 3]
    names, colors = zip(*SHARES)
    areas = ax.stackplot(contexts, shares.T, labels=names, colors=colors, alpha=0.8)
    for area, name in zip(areas, names):
        area.set_gid("share:" + name.lower().replace(" ", "_"))
    if compare_batch is not None:
        weights = decode_byte_shares(arch, contexts, compare_batch)[:, 0]  # [n_T]
        label = f"batch {compare_batch}: weights below, the rest above"
        ax.plot(contexts, weights, "k--", lw=1.5, gid="batch_weights", label=label)
    default = f"{arch.name}: one decode step's bytes"
    ax.set(xlim=(1, arch.n_ctx), ylim=(0, 1), title=default if title is None else title)
    ax.set(xlabel="context T (keys the new token attends over)", ylabel="share of the step's bytes")
    ax.legend(loc="lower left", fontsize=8)
    return fig


@figure_function
def intensity_by_length(
    archs: Mapping[str, Arch] | Sequence[Arch],
    ridge: float,
    *,
    ridge_label: str = "ridge point of this machine",
    points: int = 40,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """FLOP per byte against n, log-log: a prefill of n tokens (solid) and a decode step with n of
    context (dashed) per Arch in `archs` (or label -> Arch), beside n / 2 and this machine's `ridge`.

        >>> intensity_by_length({"GPT-2 small": ARCHS["gpt2"]}, ridge=3.9)
    """
    named = list(archs.items()) if isinstance(archs, Mapping) else [(a.name, a) for a in archs]
    fig, ax = figure_and_axes(ax, figsize=(8, 5))
    for (name, arch), color in zip(named, cycle(ARCH_COLORS)):
        n = np.unique(np.geomspace(1, arch.n_ctx, points).astype(int))  # [n_points] lengths
        prefill = [prefill_cost(arch, int(k)).flop_per_byte for k in n]
        decode = [decode_cost(arch, n_past=int(k) - 1).flop_per_byte for k in n]
        ax.plot(n, prefill, "-", color=color, lw=2, gid=f"prefill:{name}", label=f"{name}: prefill of n tokens")
        ax.plot(n, decode, "--", color=color, gid=f"decode:{name}", label=f"{name}: decode with n tokens of context")
    ax.axhline(ridge, color="black", ls=":", gid="ridge", label=f"{ridge_label} ({fmt(ridge)})")
    n = np.unique(np.geomspace(1, max(a.n_ctx for _, a in named), points).astype(int))  # [n_points]
    ax.plot(n, n / 2, color="gray", lw=0.8, gid="half", label="n / 2")
    ax.set(xscale="log", yscale="log", xlabel="prompt length n (tokens)", ylabel="FLOP / byte")
    ax.set_title("Arithmetic intensity: prefill grows with the prompt, decode does not" if title is None else title)
    ax.legend(fontsize=8)
    return fig
