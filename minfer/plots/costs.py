"""The pictures of what a step costs, FLOPs against bytes (lesson 08), drawn from the counts.

Both figures are pure functions of `minfer.perf.counts` and a model's shape (an `Arch`): nothing
is timed, so they are the same on every machine except for the ridge point you pass.

- `byte_shares`: where one decode step's bytes come from as the context grows: the weights
  (the same at every step), the KV cache (growing with every token) and the activations; and,
  dashed, the weights' share when a batch of sequences shares the step.
- `intensity_by_length`: FLOP per byte of a prefill of n tokens, which grows about as n / 2,
  against a decode step with n tokens of context, which stays near 0.5; and the ridge point.

Artists carry a gid ("share:weights", "share:kv_cache", "share:activations", "batch_weights";
"prefill:<name>", "decode:<name>", "ridge", "half") so tests and notebooks can find them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.perf.counts import Arch, decode_cost, prefill_cost
from minfer.perf.report import fmt
from minfer.plots.common import check_arch, figure_and_axes, positive, whole_number

SHARES = (("weights", "tab:blue"), ("KV cache", "tab:red"), ("activations", "tab:gray"))  # stacked in this order
ARCH_COLORS = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


# ---------------------------------------------------------------- where the bytes come from


def decode_byte_shares(arch: Arch, contexts: Sequence[int], n_batch: int = 1) -> np.ndarray:
    """[len(contexts), 3]: per context T (keys the new token attends over), the shares of one
    decode step's bytes that are weights, KV cache (read and written) and activations.

        >>> decode_byte_shares(ARCHS["gpt2"], [1, 1024])[:, 1]   # the KV cache's share
    """
    check_arch(arch)
    n_batch = whole_number(n_batch, "n_batch", 1)
    if isinstance(contexts, (str, bytes)) or not isinstance(contexts, (Sequence, np.ndarray)) or len(contexts) == 0:
        raise InvalidInputError(
            f"contexts must be a non-empty list of context lengths such as [1, 1024], got {contexts!r}"
        )
    rows = []
    for t in contexts:
        c = decode_cost(arch, n_past=whole_number(t, "a context", 1) - 1, n_batch=n_batch)
        rows.append([c.weight_bytes, c.kv_read + c.kv_write, c.act_read + c.act_write])
    parts = np.array(rows, dtype=float)  # [n_contexts, 3] bytes
    return parts / parts.sum(axis=1, keepdims=True)


def byte_shares(
    arch: Arch,
    *,
    compare_batch: int | None = 16,
    points: int = 48,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """The shares of one decode step's bytes (weights, KV cache, activations) stacked, against
    the context T from 1 to `arch.n_ctx`, at batch 1. With `compare_batch`, a dashed line
    splits the same step for that many sequences: the weights below it, the rest above.
    title: None for "<arch>: one decode step's bytes", "" for none.

        >>> byte_shares(ARCHS["gpt2"], compare_batch=16, title="GPT-2 small")
    """
    check_arch(arch)
    contexts = np.unique(np.linspace(1, arch.n_ctx, whole_number(points, "points", 2)).astype(int))  # [n_T]
    if compare_batch is not None:  # checked before anything is drawn
        compare_batch = whole_number(compare_batch, "compare_batch", 1)
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    shares = decode_byte_shares(arch, contexts)  # [n_T, 3]
    stacked = ax.stackplot(
        contexts, shares.T, labels=[name for name, _ in SHARES], colors=[color for _, color in SHARES], alpha=0.8
    )
    for area, (name, _) in zip(stacked, SHARES):
        area.set_gid("share:" + name.lower().replace(" ", "_"))
    if compare_batch is not None:
        batched = decode_byte_shares(arch, contexts, compare_batch)  # [n_T, 3]
        ax.plot(
            contexts,
            batched[:, 0],
            "k--",
            lw=1.5,
            gid="batch_weights",
            label=f"batch {compare_batch}: weights below, the rest above",
        )
    default = f"{arch.name}: one decode step's bytes"
    ax.set(
        xlim=(1, arch.n_ctx),
        ylim=(0, 1),
        xlabel="context T (keys the new token attends over)",
        ylabel="share of the step's bytes",
        title=default if title is None else title,
    )
    ax.legend(loc="lower left", fontsize=8)
    return fig


# ---------------------------------------------------------------- prefill against decode


def intensity_by_length(
    archs: Mapping[str, Arch] | Sequence[Arch],
    ridge: float,
    *,
    ridge_label: str = "ridge point of this machine",
    points: int = 40,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """FLOP per byte against a length n (log-log), per model: a prefill of n tokens (solid)
    and a decode step with n tokens of context (dashed), with n / 2 for reference and the
    ridge point `ridge` (FLOP/byte, peak / bandwidth) as a dotted line.

    archs: label -> Arch, or a list of Arch (labelled by name). Each runs from 1 to its n_ctx.
    title: None for the default, "" for none.

        >>> intensity_by_length({"GPT-2 small": ARCHS["gpt2"]}, ridge=3.9)
    """
    named = _named(archs)
    ridge, points = positive(ridge, "ridge"), whole_number(points, "points", 2)
    fig, ax = figure_and_axes(ax, figsize=(8, 5))
    for (name, arch), color in zip(named, ARCH_COLORS * len(named)):
        _draw_prefill_and_decode(ax, name, arch, points, color)
    ax.axhline(ridge, color="black", ls=":", gid="ridge", label=f"{ridge_label} ({fmt(ridge)})")
    n = np.unique(np.geomspace(1, max(a.n_ctx for _, a in named), points).astype(int))  # [n_points]
    ax.plot(n, n / 2, color="gray", lw=0.8, gid="half", label="n / 2")
    default = "Arithmetic intensity: prefill grows with the prompt, decode does not"
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="prompt length n (tokens)",
        ylabel="FLOP / byte",
        title=default if title is None else title,
    )
    ax.legend(fontsize=8)
    return fig


def _named(archs: Any) -> list[tuple[str, Arch]]:
    """[(label, Arch)] from a dict label -> Arch or a list of Arch; each checked."""
    if isinstance(archs, Arch):
        archs = [archs]
    if isinstance(archs, Mapping):
        pairs = list(archs.items())
    elif isinstance(archs, Sequence) and not isinstance(archs, str):
        pairs = [(getattr(a, "name", ""), a) for a in archs]
    else:
        pairs = []
    if not pairs:
        raise InvalidInputError(
            "archs must be a non-empty dict label -> Arch or a list of Arch "
            "(Arch.from_model(model), minfer.perf.counts.ARCHS['gpt2'])"
        )
    for _, arch in pairs:
        check_arch(arch)
    return pairs


def _draw_prefill_and_decode(ax: Axes, name: str, arch: Arch, points: int, color: str) -> None:
    """One model's two lines: prefill of n tokens, and decode with n tokens of context."""
    n = np.unique(np.geomspace(1, arch.n_ctx, points).astype(int))  # [n_points] lengths
    prefill = [prefill_cost(arch, int(k)).flop_per_byte for k in n]
    decode = [decode_cost(arch, n_past=int(k) - 1).flop_per_byte for k in n]
    ax.plot(n, prefill, "-", color=color, lw=2, gid=f"prefill:{name}", label=f"{name}: prefill of n tokens")
    ax.plot(n, decode, "--", color=color, gid=f"decode:{name}", label=f"{name}: decode with n tokens of context")
