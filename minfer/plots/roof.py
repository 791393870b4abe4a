"""The pictures that explain why prefill is compute-bound and decode memory-bound (lesson 09).

Both figures draw a `minfer.perf.profile.Profile` (`Profiler.profile()`; a `Profiler.to_dict()`
or its JSON is checked once and converted):

- `roofline`: every phase and op placed by its arithmetic intensity (FLOP per byte moved) and
  the GFLOP/s it achieved, under this machine's roof min(peak, bandwidth * intensity). Left of
  the ridge a step waits on memory; right of it, on arithmetic. Prefill multiplies each weight
  by many tokens and lands to the right; decode reads every weight for one token and lands far
  to the left. Batching decode (a `decode_sweep`) moves it right.
- `timeline`: the latency of every model call, prefill first, with the KV cache growing.

Artists carry a `gid` ("roof", "ridge", "phase:decode", "ops:prefill", "sweep", "note";
"steps", "bound", "kv") so tests and notebooks can find them again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from minfer.perf.profile import Counted, Profile, StepRow, SweepRow, as_profile
from minfer.perf.report import fmt
from minfer.plots.common import ceilings_pair, figure_and_axes, figure_function, label, phase_style, root_figure

SWEEP_COLOR = "tab:purple"
KV_COLOR = "tab:red"
TOP_OPS = 3  # ops named per phase: more labels than this pile up on one another
HEADROOM = 1.6  # timeline: both y axes reach 1.6x their tallest value; the legend goes there


@figure_function
def roofline(
    profile: Profile | Mapping,
    ceilings: Any,
    *,
    sweep: Sequence[SweepRow] | None = None,
    ops: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """The roofline of a profiled run: achieved GFLOP/s against FLOP per byte, log-log.

    ceilings: `peak_gflops` and `bandwidth_gbs` (attributes or dict keys), as `minfer calibrate`
    measures them. sweep: decode at several batch sizes (`decode_sweep`), drawn as a line that
    walks right as the batch grows. ops: also place every op (summed over layers), naming the
    3 slowest per phase. title: None for "Roofline: <model>", "" for none. Points with 0
    seconds, FLOPs or bytes have no place on log axes: they are skipped and a note says so.

        >>> fig = roofline(profiler.profile(), {"peak_gflops": 500.0, "bandwidth_gbs": 20.0})
    """
    profile = as_profile(profile)
    peak, bandwidth = ceilings_pair(ceilings)
    phases = {name: row for name, row in profile.phases.items() if row.calls > 0}
    by_phase = op_points(profile) if ops else {}
    sweep = sorted(sweep or [], key=lambda row: row.batch)
    points = [*phases.values(), *(p for ps in by_phase.values() for _, p in ps), *sweep]
    placed = [p for p in points if p.placeable]
    fig, ax = figure_and_axes(ax, figsize=(9, 6))
    x_lo = min([0.05, *(p.intensity / 2 for p in placed)])
    x_hi = max([10 * peak / bandwidth, *(p.intensity * 2 for p in placed)])
    y_lo = min([bandwidth * x_lo, *(p.gflops for p in placed)]) / 2
    ax.set(xscale="log", yscale="log", xlim=(x_lo, x_hi), ylim=(y_lo, peak * 4))  # first: labels look where they land
    _draw_roof(ax, peak, bandwidth, x_lo, x_hi)
    for name, row in phases.items():
        if row.placeable:
            _draw_phase(ax, name, row, min(peak, bandwidth * row.intensity))
    _draw_sweep(ax, [row for row in sweep if row.placeable])
    for phase, named in by_phase.items():
        _draw_ops(ax, phase, [(name, p) for name, p in named if p.placeable])
    ax.set(xlabel="arithmetic intensity (FLOP / byte moved)", ylabel="achieved GFLOP/s")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)  # above the memory slope: never data
    ax.set_title(f"Roofline: {profile.model}" if title is None else title)
    _note_skipped(ax, phases, by_phase, sweep, ops and profile.mode == "phases")
    return fig


def op_points(profile: Profile) -> dict[str, list[tuple[str, Counted]]]:
    """Per phase, (op name, its flops, bytes and seconds summed over layers); untimed ops left out."""
    totals: dict[tuple[str, str], np.ndarray] = {}
    for op in profile.ops:
        if op.seconds is not None:
            key = (op.phase, op.op)
            totals[key] = totals.get(key, np.zeros(3)) + (op.flops, op.bytes, op.seconds)  # [3]
    by_phase: dict[str, list[tuple[str, Counted]]] = {}
    for (phase, name), (flops, nbytes, seconds) in totals.items():
        by_phase.setdefault(phase, []).append((name, Counted(flops, nbytes, seconds)))
    return by_phase


def phase_label(name: str, row) -> str:
    """Tokens per call is what moves a phase along the x axis, so the label says it."""
    if name == "decode":
        per_call = row.tokens / row.calls  # sequences leaving a batch make this fractional
        return f"decode, batch {per_call:g}" if per_call.is_integer() else f"decode, batch ~{per_call:.1f}"
    return f"{name} {row.tokens} tok" + (f" in {row.calls} calls" if row.calls > 1 else "")


def _draw_roof(ax: Axes, peak: float, bandwidth: float, x_lo: float, x_hi: float) -> None:
    """The roof min(peak, bandwidth * I), its ridge I* = peak / bandwidth, and their labels."""
    ridge = peak / bandwidth
    x = np.union1d(np.geomspace(x_lo, x_hi, 256), [ridge])  # [n] with the corner itself
    x = x[(x >= x_lo) & (x <= x_hi)]  # [n]
    ax.plot(x, np.minimum(peak, bandwidth * x), color="black", lw=2, gid="roof", label="roofline", zorder=2)
    ax.axvline(ridge, color="gray", ls=":", lw=1, zorder=1)
    ax.plot([ridge], [peak], "o", color="black", ms=5, gid="ridge")
    # y = bandwidth * x is straight in data coordinates, at the angle atan(bandwidth) there;
    # transform_rotates_text turns that into the on-screen slope at draw time
    memory = f"memory: {fmt(bandwidth)} GB/s"
    ax.text(
        x_lo * 1.3,
        bandwidth * x_lo * 1.5,
        memory,
        fontsize=9,
        rotation=math.degrees(math.atan(bandwidth)),
        transform_rotates_text=True,
        rotation_mode="anchor",
        ha="left",
        va="bottom",
    )
    # the two regimes named at the top: x in data, y in axes fraction
    style: dict[str, Any] = {"fontsize": 9, "color": "dimgray", "fontstyle": "italic", "va": "top"}
    ax.text(ridge, 0.97, "← memory-bound ", transform=ax.get_xaxis_transform(), ha="right", **style)
    ax.text(ridge, 0.97, " compute-bound →", transform=ax.get_xaxis_transform(), ha="left", **style)
    label(ax, f"ridge I* = {fmt(ridge)} FLOP/byte", (ridge, peak), (6, -8), "left top", fontsize=8, color="dimgray")
    label(ax, f"compute roof: {fmt(peak)} GFLOP/s", (x_hi, peak), (-4, 4), "right bottom", fontsize=9)


def _draw_phase(ax: Axes, name: str, row, roof: float) -> None:
    """A big marker, saying how close the phase runs to the roof above it."""
    color, marker = phase_style(name)
    xy = (row.intensity, row.gflops)
    ax.plot(*xy, marker, color=color, ms=13, mec="black", gid=f"phase:{name}", label=name, zorder=5)
    text = f"{phase_label(name, row)}\n{row.gflops / roof:.0%} of roof"
    label(ax, text, xy, (-10, 10), "right bottom", fontsize=9, fontweight="bold", color=color, zorder=6)


def _draw_sweep(ax: Axes, rows: list[SweepRow]) -> None:
    """Decode at growing batch sizes: one line walking right, the teaching point of batching."""
    if not rows:
        return
    x, y = [r.intensity for r in rows], [r.gflops for r in rows]
    ax.plot(x, y, "^--", color=SWEEP_COLOR, ms=7, lw=1.2, gid="sweep", label="decode, batch sweep", zorder=4)
    for r in rows:
        label(ax, f"B={r.batch}", (r.intensity, r.gflops), (-6, -5), "right top", fontsize=8, color=SWEEP_COLOR)


def _draw_ops(ax: Axes, phase: str, named: list[tuple[str, Counted]]) -> None:
    """Small, faint markers in the phase's colour; its TOP_OPS slowest ops named, in a column
    (ops of one run crowd one spot) each with a thin line to its point: below right of it, or
    above if that would leave the axes at the bottom, on the left near the right edge."""
    if not named:
        return
    color, marker = phase_style(phase)
    x, y = [p.intensity for _, p in named], [p.gflops for _, p in named]
    ax.plot(x, y, marker, ls="none", ms=5, color=color, alpha=0.5, gid=f"ops:{phase}", label=f"{phase} ops", zorder=3)
    slowest = sorted(named, key=lambda item: item[1].seconds or 0, reverse=True)[:TOP_OPS]
    to_axes = ax.transData + ax.transAxes.inverted()  # data -> fraction of the axes
    for k, (name, p) in enumerate(sorted(slowest, key=lambda item: -item[1].gflops)):
        fx, fy = to_axes.transform((p.intensity, p.gflops))
        rows = TOP_OPS - k if fy < 0.3 else -1 - k  # rows of 11 points: up near the bottom, else down
        leader = {"arrowstyle": "-", "color": color, "alpha": 0.5, "lw": 0.6}  # a thin line to its point
        label(
            ax,
            name,
            (p.intensity, p.gflops),
            (-18 if fx > 0.7 else 18, 11 * rows),
            "right center" if fx > 0.7 else "left center",
            fontsize=7,
            color=color,
            zorder=6,
            arrowprops=leader,
        )


def _note_skipped(ax: Axes, phases: dict, by_phase: dict, sweep: list[SweepRow], ops_untimed: bool) -> None:
    """A small note naming what could not be placed, so a missing point is never a mystery."""
    skipped = [phase_label(name, row) for name, row in phases.items() if not row.placeable]
    skipped += [f"{phase} {name}" for phase, named in by_phase.items() for name, p in named if not p.placeable]
    skipped += [f"sweep B={row.batch}" for row in sweep if not row.placeable]
    lines = []
    if skipped:
        names = ", ".join(skipped[:4]) + (", ..." if len(skipped) > 4 else "")
        lines.append(f"skipped {len(skipped)} with 0 seconds, FLOPs or bytes (no place on log axes): {names}")
    if ops_untimed:
        lines.append("ops not shown: this profile timed phases only (mode 'phases')")
    if lines:  # under the axis label when a layout engine makes room for it, else inside the corner
        outside = root_figure(ax).get_layout_engine() is not None
        offset, where = ((0, -36), "right top") if outside else ((-4, 4), "right bottom")
        label(
            ax,
            "\n".join(lines),
            (1, 0),
            offset,
            where,
            xycoords="axes fraction",
            fontsize=7,
            color="dimgray",
            gid="note",
        )


@figure_function
def timeline(
    profile: Profile | Mapping, *, ceilings: Any = None, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Latency of every model call (step) in ms, prefill first, with the KV cache in use.

    The first step (prefill, which yields the first token) is annotated with its ms. A second
    y axis shows the KV cache growing (MB, or positions when the profile has no kv_bytes). With
    `ceilings` (as for `roofline`), each step also gets its roofline bound, the least time the
    machine needs for its work: max(FLOPs / peak, bytes / bandwidth). title: None for
    "Timeline: <model>", "" for none.

        >>> fig = timeline(profiler.profile())
    """
    profile = as_profile(profile)
    steps = profile.steps
    fig, ax = figure_and_axes(ax, figsize=(10, 4.5))
    ms = np.array([s.seconds or 0.0 for s in steps]) * 1e3  # [n_steps]
    x = np.arange(len(steps))  # [n_steps]
    ax.bar(x, ms, color=[phase_style(s.phase)[0] for s in steps], width=0.8, gid="steps", zorder=2)
    first = "prefill → first token" if steps[0].phase == "prefill" else f"{steps[0].phase} (first step)"
    text, color = f"{first}\n{steps[0].tokens} tok, {fmt(ms[0])} ms", phase_style(steps[0].phase)[0]
    label(ax, text, (-0.4, ms[0]), (0, 4), "left bottom", fontsize=9, fontweight="bold", color=color)
    if ceilings is not None:
        peak, bandwidth = ceilings_pair(ceilings)
        bound_ms = [max(s.flops / (peak * 1e9), s.bytes / (bandwidth * 1e9)) * 1e3 for s in steps]
        ax.step(
            x,
            bound_ms,
            where="mid",
            color="black",
            lw=1.2,
            gid="bound",
            zorder=3,
            label="roofline bound: max(FLOPs/peak, bytes/bandwidth)",
        )
    kv_ax = _draw_kv(ax, steps)
    ax.set_xlabel("step (one model call; decode makes one token per sequence per step)")
    ax.set_ylabel(_ms_label(steps))
    ax.set_ylim(0, ms.max() * HEADROOM or 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # steps are whole
    ax.grid(True, axis="y", alpha=0.3)
    phases = dict.fromkeys(s.phase for s in steps)
    handles = [Patch(color=phase_style(p)[0], label=_phase_summary(p, steps)) for p in phases]
    # on the twin, which is drawn over the bars: nothing hides the legend
    kv_ax.legend(handles=handles + ax.get_lines() + kv_ax.get_lines(), loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_title(f"Timeline: {profile.model}" if title is None else title)
    return fig


def _draw_kv(ax: Axes, steps: list[StepRow]) -> Axes:
    """KV cache in use after each step, on a twin y axis: decode reads all of it every step."""
    kv_ax = ax.twinx()
    kv_bytes = np.array([s.kv_bytes for s in steps])  # [n_steps]
    if kv_bytes.any():
        values, label = kv_bytes / 1e6, "KV cache in use (MB)"
    else:  # a profile without byte counts still knows how many positions are filled
        values, label = np.array([s.context for s in steps], dtype=float), "context positions"
    marker = "o" if len(steps) == 1 else None  # one step: no line to draw
    kv_ax.plot(
        np.arange(len(steps)), values, color=KV_COLOR, lw=2, drawstyle="steps-mid", gid="kv", label=label, marker=marker
    )
    kv_ax.set_ylabel(label, color=KV_COLOR)
    kv_ax.set_ylim(0, values.max() * HEADROOM or 1)
    return kv_ax


def _ms_label(steps: list[StepRow]) -> str:
    """Batched decode makes B tokens per step; the y label says so."""
    batches = {s.batch for s in steps if s.phase == "decode"}
    if not batches or max(batches) == 1:
        return "ms per step"
    up_to = "" if len(batches) == 1 else "up to "  # sequences that finish leave the batch
    return f"ms per step ({up_to}{max(batches)} tokens)"


def _phase_summary(phase: str, steps: list[StepRow]) -> str:
    """Legend text for a phase: its steps, mean ms per step and, for decode, tokens per second."""
    mine = [s for s in steps if s.phase == phase]
    seconds = sum(s.seconds or 0.0 for s in mine)
    text = f"{phase}: {len(mine)} step{'s' * (len(mine) > 1)}, {fmt(seconds / len(mine) * 1e3)} ms/step"
    if phase == "decode" and seconds > 0:
        text += f", {fmt(sum(s.tokens for s in mine) / seconds)} tok/s"
    return text
