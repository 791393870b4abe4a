"""Who runs at each step, and what a bigger batch costs each user (lesson 15). Artist gids:
"timeline", "prefill", "request" (slot_timeline); "decode", "prefill", "seconds" (step_tokens);
"measured", "batch" (throughput_latency).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from minfer.plots.common import figure_and_axes, figure_function

N_COLORS = 20  # request i is drawn in colour i % 20 of tab20


@figure_function
def slot_timeline(
    requests: np.ndarray, prefill: np.ndarray | None = None, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """A batch's slots (rows) at each step (columns): the request that occupies each, -1 for
    an empty slot; hatched where `prefill` says the step fed that request's prompt. Each run of
    a request is labelled with its id; the title gives the share of slot-steps in use.
    requests: [n_slots, n_steps] int, prefill: [n_slots, n_steps] bool

        >>> slot_timeline(np.array([[0, 0, 2, -1], [1, 1, 1, 1]]), np.array([[1, 0, 1, 0], [1, 0, 0, 0]], bool))
    """
    requests = np.asarray(requests)  # [n_slots, n_steps]
    n_slots, n_steps = requests.shape
    colors = ListedColormap(["white", *colormaps["tab20"].colors])  # 0: empty, then one colour per request
    codes = np.where(requests < 0, 0, requests % N_COLORS + 1)  # [n_slots, n_steps]
    fig, ax = figure_and_axes(ax, figsize=(max(6, 0.08 * n_steps + 2), max(2, 0.35 * n_slots + 1)))
    ax.imshow(
        codes, cmap=colors, vmin=-0.5, vmax=colors.N - 0.5, aspect="auto", interpolation="nearest", gid="timeline"
    )
    if prefill is not None:
        for slot, step in zip(*np.nonzero(np.asarray(prefill) & (requests >= 0))):
            ax.add_patch(
                Rectangle((step - 0.5, slot - 0.5), 1, 1, fill=False, hatch="////", linewidth=0, gid="prefill")
            )
    for slot in range(n_slots):
        starts = [
            t
            for t in range(n_steps)
            if requests[slot, t] >= 0 and (t == 0 or requests[slot, t - 1] != requests[slot, t])
        ]
        for t in starts:
            ax.text(t, slot, str(requests[slot, t]), ha="left", va="center", fontsize=7, gid="request")
    busy = float((requests >= 0).mean())
    ax.set_yticks(np.arange(n_slots))
    ax.set(xlabel="step", ylabel="batch slot")
    ax.set_title(f"{busy:.0%} of slot-steps in use" if title is None else title)
    return fig


@figure_function
def step_tokens(
    decode_rows: Sequence[int],
    prefill_tokens: Sequence[int],
    seconds: Sequence[float] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """What each step fed the model (an engine's `StepStats`): one token per decoding sequence
    and the prompt tokens of its prefill chunks, stacked; with `seconds`, the step's time in ms
    on a second axis.

        >>> step_tokens([3, 3, 4], [29, 29, 0], [0.06, 0.05, 0.02])
    """
    decode = np.asarray(decode_rows, dtype=float)  # [n_steps]
    chunk = np.asarray(prefill_tokens, dtype=float)  # [n_steps]
    steps = np.arange(len(decode))  # [n_steps]
    fig, ax = figure_and_axes(ax, figsize=(7, 3.5))
    ax.bar(steps, decode, color="tab:blue", gid="decode", label="decode (one token per sequence)")
    ax.bar(steps, chunk, bottom=decode, color="tab:orange", gid="prefill", label="prefill chunk")
    ax.set(xlabel="step", ylabel="tokens fed")
    handles, labels = ax.get_legend_handles_labels()
    if seconds is not None:
        right = ax.twinx()
        (line,) = right.plot(steps, 1e3 * np.asarray(seconds, dtype=float), "k.-", gid="seconds", label="step time")
        right.set(ylabel="step time (ms)", ylim=(0, None))
        handles, labels = [*handles, line], [*labels, "step time"]
    ax.legend(handles, labels, fontsize=8, loc="upper right")
    ax.set_title("tokens per step" if title is None else title)
    return fig


@figure_function
def throughput_latency(
    batch_sizes: Sequence[int],
    latency_s: Sequence[float],
    tokens_per_s: Sequence[float],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """The trade-off of the batch size: tokens/s served (all users together) against the time
    between one user's tokens, one point per batch size, labelled.

        >>> throughput_latency([1, 4, 16], [0.014, 0.020, 0.040], [70, 180, 280])
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    ms = 1e3 * np.asarray(latency_s, dtype=float)  # [n_points]
    rate = np.asarray(tokens_per_s, dtype=float)  # [n_points]
    ax.plot(ms, rate, "o-", color="tab:purple", gid="measured")
    for b, x, y in zip(batch_sizes, ms, rate):
        ax.annotate(f"B = {b}", (x, y), xytext=(5, -10), textcoords="offset points", fontsize=8, gid="batch")
    ax.set(xlabel="time per output token, per user (ms)", ylabel="tokens/s, all users", xlim=(0, None), ylim=(0, None))
    ax.set_title("throughput against latency" if title is None else title)
    return fig
