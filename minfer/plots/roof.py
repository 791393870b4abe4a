"""The pictures that explain why prefill is compute-bound and decode memory-bound (lesson 09).

Two figures, both drawn from a profile dict (`Profiler.to_dict()`, or the same JSON on disk):

- `roofline`: every phase and op placed by its arithmetic intensity (FLOP per byte moved)
  and the GFLOP/s it achieved, under this machine's roof min(peak, bandwidth * intensity).
  Left of the ridge a step waits on memory; right of it, on arithmetic. Prefill multiplies
  each weight by many tokens and lands to the right; decode reads every weight for one token
  and lands far to the left. Batching decode moves it right.
- `timeline`: the latency of every model call, prefill first, with the KV cache growing.

Only the object API is used (`Figure`, never pyplot), so there is no global state: the
functions work headless, in tests, and in Jupyter, where a returned Figure displays inline.
Artists carry a `gid` ("roof", "phase:decode", "ops:prefill", "sweep", "steps", "kv") so
tests and notebooks can find them again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from minfer.errors import InvalidInputError
from minfer.perf.report import fmt
from minfer.plots.common import ceilings_pair, figure_and_axes, phase_style, root_figure, whole_number

SWEEP_COLOR = "tab:purple"
KV_COLOR = "tab:red"
TOP_OPS = 3  # ops named per phase: more labels than this pile up on one another
COUNT_KEYS = ("flops", "bytes", "seconds")  # what places a thing on the roofline
STEP_KEYS = ("phase", "tokens", "context", *COUNT_KEYS)  # what the timeline reads
HEADROOM = 1.6  # timeline: both y axes reach 1.6x their tallest value; the legend and note go there


@dataclass(frozen=True)
class Point:
    """One thing placed on the roofline: a phase, an op summed over layers, or a sweep run."""

    label: str
    flops: float
    bytes: float
    seconds: float

    @property
    def placeable(self) -> bool:
        """Log axes have no place for 0, and 0 seconds means the thing was not timed."""
        return self.flops > 0 and self.bytes > 0 and self.seconds > 0

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte moved: the x of the roofline."""
        return self.flops / self.bytes

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s: the y of the roofline."""
        return self.flops / self.seconds / 1e9


# ---------------------------------------------------------------- checking what comes in


def _check_profile(profile: Any, *keys: str) -> None:
    """Raise InvalidInputError unless `profile` is a mapping with every one of `keys`."""
    if not isinstance(profile, Mapping):
        raise InvalidInputError(
            f"a profile must be a dict (Profiler.to_dict() or its JSON), got {type(profile).__name__}"
        )
    for key in keys:
        if key not in profile:
            raise InvalidInputError(
                f"the profile has no {key!r} key (it has {sorted(profile)}); pass Profiler.to_dict() of a profiled run"
            )


def _entry(entry: Any, where: str, keys: Sequence[str]) -> Mapping:
    """`entry` if it is a dict with every one of `keys`; else an error that names its place."""
    if not isinstance(entry, Mapping):
        raise InvalidInputError(f"{where} must be a dict, got {entry!r}; pass Profiler.to_dict() of a profiled run")
    missing = [key for key in keys if key not in entry]
    if missing:
        raise InvalidInputError(f"{where} has no {missing}; pass Profiler.to_dict() of a profiled run")
    return entry


def _count(value: Any, where: str) -> float:
    """A finite number >= 0 (FLOPs, bytes, seconds) as a float; 0 is allowed (skipped and noted)."""
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{where}={value!r} must be a number >= 0; pass Profiler.to_dict() of a profiled run")
    return float(value)


def _name(value: Any, where: str) -> str:
    """A phase or op name: a string, which labels, colours and groups what is drawn."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}={value!r} must be a phase name (a string such as 'decode')")
    return value


def _list(value: Any, where: str, example: str) -> Sequence:
    """A list (or tuple) of rows; a dict or a string is refused rather than iterated."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise InvalidInputError(f"{where} must be a list of rows like {example}, got {value!r}")
    return value


def _point(label: str, entry: Any, where: str) -> Point:
    """A Point from an entry's flops, bytes and seconds; a missing or bad field names its place."""
    _entry(entry, where, COUNT_KEYS)
    return Point(label, *(_count(entry[key], f"{where}[{key!r}]") for key in COUNT_KEYS))


# ---------------------------------------------------------------- profile -> points


def phase_points(profile: Mapping) -> dict[str, Point]:
    """One Point per phase that ran (calls > 0), labelled e.g. "prefill 4 tok", "decode, batch 1"."""
    phases = profile["phases"]
    if not isinstance(phases, Mapping):
        raise InvalidInputError(f"profile['phases'] must be a dict phase -> counts, got {phases!r}")
    points = {}
    for name, entry in phases.items():
        where = f"profile['phases'][{name!r}]"
        _entry(entry, where, ("calls", "tokens", *COUNT_KEYS))
        calls, tokens = (whole_number(entry[key], f"{where}[{key!r}]", 0) for key in ("calls", "tokens"))
        if calls > 0:  # a phase that never ran has 0 seconds and nothing to show
            points[name] = _point(_phase_label(name, calls, tokens), entry, where)
    return points


def _phase_label(name: str, calls: int, tokens: int) -> str:
    """Tokens per call is what moves a phase along the x axis, so the label says it."""
    if name == "decode":
        per_call = tokens / calls  # sequences leaving a batch make this fractional
        return f"decode, batch {per_call:g}" if per_call.is_integer() else f"decode, batch ~{per_call:.1f}"
    return f"{name} {tokens} tok" + (f" in {calls} calls" if calls > 1 else "")


def op_points(profile: Mapping) -> dict[str, list[Point]]:
    """Per phase, one Point per op name with flops, bytes and seconds summed over layers.

    Ops without seconds (phase-only profiling timed the phases, not the ops) are left out.
    """
    totals: dict[tuple[str, str], np.ndarray] = {}
    for i, op in enumerate(_list(profile.get("ops", []), "profile['ops']", "{'phase', 'op', 'flops', ...}")):
        where = f"profile['ops'][{i}]"
        _entry(op, where, ("phase", "op"))
        if op.get("seconds") is None:
            continue
        p = _point(str(op["op"]), op, where)
        key = (_name(op["phase"], f"{where}['phase']"), str(op["op"]))
        totals[key] = totals.get(key, np.zeros(3)) + (p.flops, p.bytes, p.seconds)
    by_phase: dict[str, list[Point]] = {}
    for (phase, name), (flops, nbytes, seconds) in totals.items():
        by_phase.setdefault(phase, []).append(Point(name, flops, nbytes, seconds))
    return by_phase


def sweep_points(sweep: Sequence[Mapping]) -> list[Point]:
    """One Point per batch size of a decode sweep, labelled "B=1", "B=8", ... in batch order."""
    rows = _list(sweep, "sweep", "{'batch', 'flops', 'bytes', 'seconds'} (minfer.perf.profiler.decode_sweep)")
    batches = [
        whole_number(_entry(row, f"sweep[{i}]", ("batch",))["batch"], f"sweep[{i}]['batch']", 1)
        for i, row in enumerate(rows)
    ]
    if len(set(batches)) != len(batches):
        raise InvalidInputError(f"sweep has a batch size twice: {batches}; keep one row per batch size")
    order = np.argsort(batches, kind="stable")  # [n_rows] row indices in batch order
    return [_point(f"B={batches[i]}", rows[i], f"sweep[{i}]") for i in order]


# ---------------------------------------------------------------- roofline


def roofline(
    profile: Mapping,
    ceilings: Any,
    *,
    sweep: Sequence[Mapping] | None = None,
    ops: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """The roofline of a profiled run: achieved GFLOP/s against FLOP per byte, log-log.

    profile: `Profiler.to_dict()`. ceilings: anything with `peak_gflops` and `bandwidth_gbs`
    (attributes or dict keys), as measured by `minfer calibrate`. sweep: optional decode runs
    at several batch sizes, [{"batch", "flops", "bytes", "seconds", "tokens"}, ...], drawn as
    a line that walks right as the batch grows. ops: also place every op (summed over layers),
    naming the 3 slowest per phase. ax: draw into these axes instead of a new figure (nothing
    is drawn if the input is refused). title: None for "Roofline: <model>", "" for none.

    Points with 0 seconds, FLOPs or bytes have no place on log axes: they are skipped and a
    note says so.

        >>> fig = roofline(profiler.to_dict(), {"peak_gflops": 500.0, "bandwidth_gbs": 20.0})
        >>> save_figure(fig, "roofline.png")
    """
    _check_profile(profile, "phases")
    peak, bandwidth = ceilings_pair(ceilings)
    layers = _roofline_layers(profile, sweep, ops)  # every field checked before anything is drawn
    fig, ax = figure_and_axes(ax, figsize=(9, 6))
    placed = [p for p in _all_points(layers) if p.placeable]
    x_lo, x_hi = _x_range(placed, peak / bandwidth)
    labels = _draw_roof(ax, peak, bandwidth, x_lo, x_hi)
    labels += _draw_phases(ax, layers["phases"], peak, bandwidth)
    labels += _draw_sweep(ax, layers["sweep"])
    labels += _draw_ops(ax, layers.get("ops", {}))
    _finish_roofline(ax, profile, placed, (x_lo, x_hi), bandwidth * x_lo, peak, title)
    _note_skipped(ax, layers, ops and profile.get("mode") == "phases")
    _place_labels(fig, ax, labels, _markers(layers))  # last: needs the final scales and layout
    return fig


def _roofline_layers(profile: Mapping, sweep: Sequence[Mapping] | None, ops: bool) -> dict:
    """Everything the roofline places: {"phases": {name: Point}, "ops": {phase: [Point]},
    "sweep": [Point]}, skipped points still in (they are counted for the note)."""
    layers: dict[str, Any] = {"phases": phase_points(profile), "sweep": sweep_points([] if sweep is None else sweep)}
    if ops:
        layers["ops"] = op_points(profile)
    return layers


def _all_points(layers: dict) -> list[Point]:
    """Every Point of the layers, flat."""
    ops = [p for points in layers.get("ops", {}).values() for p in points]
    return [*layers["phases"].values(), *ops, *layers["sweep"]]


def _markers(layers: dict) -> list[Marker]:
    """(x, y, half-size in points) of every marker drawn: labels keep clear of them all."""
    ops = [p for points in layers.get("ops", {}).values() for p in points]
    sized = [(layers["phases"].values(), 7), (layers["sweep"], 5), (ops, 3)]
    return [(p.intensity, p.gflops, half) for points, half in sized for p in points if p.placeable]


def _x_range(points: list[Point], ridge: float) -> tuple[float, float]:
    """Intensities from 0.05 to 10x the ridge, widened (with a margin) to hold every point."""
    intensities = [p.intensity for p in points]
    return min([0.05, *(i / 2 for i in intensities)]), max([10 * ridge, *(i * 2 for i in intensities)])


def _draw_roof(ax: Axes, peak: float, bandwidth: float, x_lo: float, x_hi: float) -> list[_Label]:
    """The roof min(peak, bandwidth * I), its ridge I* = peak / bandwidth, and their labels."""
    ridge = peak / bandwidth
    x = np.union1d(np.geomspace(x_lo, x_hi, 256), [ridge])  # the corner itself, not a chord
    x = x[(x >= x_lo) & (x <= x_hi)]
    ax.plot(x, np.minimum(peak, bandwidth * x), color="black", lw=2, gid="roof", label="roofline", zorder=2)
    ax.axvline(ridge, color="gray", ls=":", lw=1, zorder=1)
    ax.plot([ridge], [peak], "o", color="black", ms=5, gid="ridge")
    # y = bandwidth * x is straight in data coordinates, so its angle there is atan(bandwidth);
    # transform_rotates_text turns that into the on-screen slope at draw time, whatever the size
    x_text = x_lo * 1.3
    ax.text(
        x_text,
        bandwidth * x_text * 1.15,
        f"memory: {fmt(bandwidth)} GB/s",
        fontsize=9,
        rotation=math.degrees(math.atan(bandwidth)),
        transform_rotates_text=True,
        rotation_mode="anchor",
        ha="left",
        va="bottom",
    )
    # x in data, y in axes fraction: the two regimes named at the top, where no point can be
    for text, ha in (("← memory-bound ", "right"), (" compute-bound →", "left")):
        ax.text(
            ridge,
            0.97,
            text,
            transform=ax.get_xaxis_transform(),
            ha=ha,
            va="top",
            fontsize=9,
            color="dimgray",
            fontstyle="italic",
        )
    ridge_text = f"ridge I* = {fmt(ridge)} FLOP/byte"
    roof_text = f"compute roof: {fmt(peak)} GFLOP/s"
    return [
        _Label(ridge, peak, ridge_text, "dimgray", 8, ((6, -8, "left", "top"),)),
        _Label(x_hi, peak, roof_text, "black", 9, ((-4, 4, "right", "bottom"),)),
    ]


def _draw_phases(ax: Axes, phases: dict[str, Point], peak: float, bandwidth: float) -> list[_Label]:
    """Big markers, one per phase, each saying how close it runs to the roof above it."""
    labels = []
    for name, p in phases.items():
        if not p.placeable:
            continue
        color, marker = phase_style(name)
        ax.plot(
            [p.intensity],
            [p.gflops],
            marker,
            color=color,
            ms=13,
            mec="black",
            gid=f"phase:{name}",
            label=name,
            zorder=5,
        )
        share = p.gflops / min(peak, bandwidth * p.intensity)
        labels.append(
            _Label(p.intensity, p.gflops, f"{p.label}\n{share:.0%} of roof", color, 9, PHASE_OFFSETS, bold=True)
        )
    return labels


def _draw_sweep(ax: Axes, points: list[Point]) -> list[_Label]:
    """Decode at growing batch sizes: one line walking right, the teaching point of batching."""
    placed = [p for p in points if p.placeable]
    if placed:
        ax.plot(
            [p.intensity for p in placed],
            [p.gflops for p in placed],
            "^--",
            color=SWEEP_COLOR,
            ms=7,
            lw=1.2,
            gid="sweep",
            label="decode, batch sweep",
            zorder=4,
        )
    return [_Label(p.intensity, p.gflops, p.label, SWEEP_COLOR, 8, SWEEP_OFFSETS) for p in placed]


def _draw_ops(ax: Axes, by_phase: dict[str, list[Point]]) -> list[_Label]:
    """Small, faint markers in the phase's colour; the TOP_OPS slowest ops of each phase are named."""
    labels = []
    for phase, points in by_phase.items():
        placed = [p for p in points if p.placeable]
        if not placed:
            continue
        color, marker = phase_style(phase)
        ax.plot(
            [p.intensity for p in placed],
            [p.gflops for p in placed],
            marker,
            ls="none",
            ms=5,
            color=color,
            alpha=0.5,
            gid=f"ops:{phase}",
            label=f"{phase} ops",
            zorder=3,
        )
        slowest = sorted(placed, key=lambda p: p.seconds, reverse=True)[:TOP_OPS]
        labels += [_Label(p.intensity, p.gflops, p.label, color, 7, OP_OFFSETS, leader=True) for p in slowest]
    # placed top down, so the names of ops sitting on one spot fan out in the order of their y
    return sorted(labels, key=lambda label: label.y, reverse=True)


def _finish_roofline(
    ax: Axes,
    profile: Mapping,
    placed: list[Point],
    x_range: tuple[float, float],
    roof_lo: float,
    peak: float,
    title: str | None,
) -> None:
    """Log axes, limits that hold the roof and every point, labels, legend, title."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*x_range)
    y_lo = min([roof_lo, *(p.gflops for p in placed)]) / 2
    ax.set_ylim(y_lo, peak * 4)  # headroom above the flat roof for its label
    ax.set_xlabel("arithmetic intensity (FLOP / byte moved)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)  # above the memory slope: never data
    ax.set_title(f"Roofline: {_model_name(profile)}" if title is None else title)


def _note_skipped(ax: Axes, layers: dict, ops_untimed: bool) -> None:
    """A small note naming what could not be placed, so a missing point is never a mystery."""
    skipped = [p.label for p in layers["phases"].values() if not p.placeable]
    for phase, points in layers.get("ops", {}).items():
        skipped += [f"{phase} {p.label}" for p in points if not p.placeable]
    skipped += [f"sweep {p.label}" for p in layers["sweep"] if not p.placeable]
    lines = []
    if skipped:
        names = ", ".join(skipped[:4]) + (", ..." if len(skipped) > 4 else "")
        lines.append(f"skipped {len(skipped)} with 0 seconds, FLOPs or bytes (no place on log axes): {names}")
    if ops_untimed:
        lines.append("ops not shown: this profile timed phases only (mode 'phases')")
    if lines:
        _draw_note(ax, "\n".join(lines))


def _draw_note(ax: Axes, text: str) -> None:
    """Under the axis label, outside the data (slow ops can sit in any corner) when a layout
    engine will make room for it; else inside the lower right corner."""
    outside = root_figure(ax).get_layout_engine() is not None
    ax.annotate(
        text,
        (1, 0),
        xycoords="axes fraction",
        xytext=(0, -36) if outside else (-4, 4),
        textcoords="offset points",
        ha="right",
        va="top" if outside else "bottom",
        fontsize=7,
        color="dimgray",
        gid="note",
    )


# ---------------------------------------------------------------- placing labels
# Points of one run crowd a diagonal band (decode, its ops and the sweep's B=1 share one spot),
# so labels are placed greedily: each takes the first of its offsets whose box, estimated from
# the text's length, stays inside the axes and clear of every marker and label placed before.

Offset = tuple[float, float, str, str]  # (dx, dy) in points from the anchor, ha, va
Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in points on the figure
Marker = tuple[float, float, float]  # (x, y) in data coordinates, half its size in points
PHASE_OFFSETS: tuple[Offset, ...] = (
    (-10, 10, "right", "bottom"),
    (10, -10, "left", "top"),
    (-10, -10, "right", "top"),
    (10, 10, "left", "bottom"),
)
SWEEP_OFFSETS: tuple[Offset, ...] = (
    (-6, 5, "right", "bottom"),
    (6, -5, "left", "top"),
    (7, 0, "left", "center"),
    (0, 9, "center", "bottom"),
    (0, -9, "center", "top"),
    (10, -10, "left", "top"),
    (10, 10, "left", "bottom"),
    (-10, -10, "right", "top"),
)
# ops: a fan of rows to the lower right of the point, then the upper right, then the left
OP_OFFSETS: tuple[Offset, ...] = (
    *((18, -11 - 11 * k, "left", "center") for k in range(8)),
    *((18, 11 + 11 * k, "left", "center") for k in range(4)),
    *((-18, -11 - 11 * k, "right", "center") for k in range(6)),
)


@dataclass(frozen=True)
class _Label:
    """A text for the point (x, y) in data coordinates, with the offsets to try, in order."""

    x: float
    y: float
    text: str
    color: str
    size: float  # font size, points
    offsets: tuple[Offset, ...]
    bold: bool = False
    leader: bool = False  # a thin line from text to point: ops' names can sit a few rows away


def _place_labels(fig: Figure, ax: Axes, labels: list[_Label], markers: list[Marker]) -> None:
    """Annotate every label at its first free offset, or, if none is free, at the one that
    covers the least of what is already there."""
    if fig.get_layout_engine() is not None:  # settle the axes' final size: boxes are measured on it
        fig.get_layout_engine().execute(fig)
    to_points = 72 / fig.dpi
    frame = tuple(ax.bbox.extents * to_points)
    taken: list[Box] = []  # markers first, so that they stay visible
    for x, y, half in markers:
        cx, cy = ax.transData.transform((x, y)) * to_points
        taken.append((cx - half, cy - half, cx + half, cy + half))
    for label in labels:
        anchor = ax.transData.transform((label.x, label.y)) * to_points
        boxes = [_text_box(label, anchor, offset) for offset in label.offsets]
        # min keeps the first of equals: a free offset early in the list wins
        choice = min(range(len(boxes)), key=lambda i: (not _inside(boxes[i], frame), _covered(boxes[i], taken)))
        taken.append(boxes[choice])
        _annotate(ax, label, label.offsets[choice])


def _annotate(ax: Axes, label: _Label, offset: Offset) -> None:
    """Draw one label at its chosen offset."""
    dx, dy, ha, va = offset
    leader = {"arrowstyle": "-", "color": label.color, "alpha": 0.5, "lw": 0.6} if label.leader else None
    ax.annotate(
        label.text,
        (label.x, label.y),
        xytext=(dx, dy),
        textcoords="offset points",
        ha=ha,
        va=va,
        fontsize=label.size,
        fontweight="bold" if label.bold else "normal",
        color=label.color,
        arrowprops=leader,
        zorder=6,
    )


def _text_box(label: _Label, anchor: np.ndarray, offset: Offset) -> Box:
    """(x0, y0, x1, y1) in points of the text at this offset, with a 1-point margin; a glyph
    is about 0.62 em wide (0.72 in bold)."""
    lines = label.text.split("\n")
    width = max(map(len, lines)) * label.size * (0.72 if label.bold else 0.62) + 2
    height = len(lines) * label.size * 1.25 + 2
    dx, dy, ha, va = offset
    x0 = anchor[0] + dx - {"left": 1, "center": width / 2, "right": width - 1}[ha]
    y0 = anchor[1] + dy - {"bottom": 1, "center": height / 2, "top": height - 1}[va]
    return x0, y0, x0 + width, y0 + height


def _covered(a: Box, boxes: list[Box]) -> float:
    """Area (points squared) of box `a` that overlaps `boxes`, summed."""
    return sum(max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1])) for b in boxes)


def _inside(box: Box, frame: Box) -> bool:
    """Whether a box lies within the frame."""
    return frame[0] <= box[0] and frame[1] <= box[1] and box[2] <= frame[2] and box[3] <= frame[3]


# ---------------------------------------------------------------- timeline


def timeline(
    profile: Mapping,
    *,
    ceilings: Any = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Latency of every model call (step) in ms, prefill first, with the KV cache in use.

    The first step (prefill, which yields the first token) is drawn in its own colour and
    annotated with its ms; decode steps follow. A second y axis shows the KV cache growing
    step by step (MB, or positions when the profile has no kv_bytes). With `ceilings`
    (as for `roofline`), each step also gets its roofline bound, the least time the machine
    needs for its work: max(FLOPs / peak, bytes / bandwidth). title: None for
    "Timeline: <model>", "" for none.

        >>> fig = timeline(profiler.to_dict())
    """
    _check_profile(profile, "steps")
    steps = profile["steps"]
    _check_steps(steps)
    bounds = None if ceilings is None else ceilings_pair(ceilings)  # checked before anything is drawn
    fig, ax = figure_and_axes(ax, figsize=(10, 4.5))
    ms = np.array([step["seconds"] for step in steps], dtype=float) * 1e3  # [n_steps]
    x = np.arange(len(steps))  # [n_steps]
    ax.bar(x, ms, color=[phase_style(step["phase"])[0] for step in steps], width=0.8, gid="steps", zorder=2)
    _annotate_first_step(ax, steps[0], ms[0])
    if bounds is not None:
        _draw_step_bounds(ax, steps, *bounds)
    kv_ax = _draw_kv(ax, steps)
    _finish_timeline(ax, kv_ax, steps, ms, f"Timeline: {_model_name(profile)}" if title is None else title)
    return fig


def _check_steps(steps: Any) -> None:
    """At least one step, each with the fields the timeline reads."""
    _list(steps, "profile['steps']", "{'phase', 'tokens', 'context', 'flops', 'bytes', 'seconds'}")
    if not steps:
        raise InvalidInputError(
            "the profile has no steps (no model call was recorded); profile a run that calls the model"
        )
    for i, step in enumerate(steps):
        _check_step(step, f"profile['steps'][{i}]")


def _check_step(step: Any, where: str) -> None:
    """One step: a phase name, whole tokens and context (and batch), counts and seconds >= 0."""
    _entry(step, where, STEP_KEYS)
    _name(step["phase"], f"{where}['phase']")
    for key in ("tokens", "context"):
        whole_number(step[key], f"{where}[{key!r}]", 0)
    if "batch" in step:
        whole_number(step["batch"], f"{where}['batch']", 1)
    for key in (*COUNT_KEYS, "kv_bytes"):
        if key in step:
            _count(step[key], f"{where}[{key!r}]")


def _annotate_first_step(ax: Axes, step: Mapping, ms: float) -> None:
    """The first step is the wait before the first token: the latency a user feels."""
    what = "prefill → first token" if step["phase"] == "prefill" else f"{step['phase']} (first step)"
    ax.annotate(
        f"{what}\n{step['tokens']} tok, {fmt(ms)} ms",
        (-0.4, ms),
        xytext=(0, 4),
        textcoords="offset points",
        ha="left",
        va="bottom",
        fontsize=9,
        fontweight="bold",
        color=phase_style(step["phase"])[0],
    )


def _draw_step_bounds(ax: Axes, steps: Sequence[Mapping], peak: float, bandwidth: float) -> None:
    """Per step, the roofline's least time: whichever of arithmetic and memory takes longer."""
    bound_ms = [max(s["flops"] / (peak * 1e9), s["bytes"] / (bandwidth * 1e9)) * 1e3 for s in steps]
    ax.step(
        np.arange(len(steps)),
        bound_ms,
        where="mid",
        color="black",
        lw=1.2,
        gid="bound",
        zorder=3,
        label="roofline bound: max(FLOPs/peak, bytes/bandwidth)",
    )


def _draw_kv(ax: Axes, steps: Sequence[Mapping]) -> Axes:
    """KV cache in use after each step, on a twin y axis: decode reads all of it every step."""
    kv_ax = ax.twinx()
    kv_bytes = np.array([s.get("kv_bytes", 0) for s in steps], dtype=float)
    if kv_bytes.any():
        values, label = kv_bytes / 1e6, "KV cache in use (MB)"
    else:  # a profile without byte counts still knows how many positions are filled
        values, label = np.array([s["context"] for s in steps], dtype=float), "context positions"
    kv_ax.plot(
        np.arange(len(steps)),
        values,
        color=KV_COLOR,
        lw=2,
        drawstyle="steps-mid",
        gid="kv",
        label=label,
        marker="o" if len(steps) == 1 else None,
    )  # one step: no line to draw
    kv_ax.set_ylabel(label, color=KV_COLOR)
    kv_ax.set_ylim(0, values.max() * HEADROOM or 1)
    return kv_ax


def _finish_timeline(ax: Axes, kv_ax: Axes, steps: Sequence[Mapping], ms: np.ndarray, title: str) -> None:
    """Axis labels, a legend with the decode rate, integer step ticks, the title."""
    ax.set_xlabel("step (one model call; decode makes one token per sequence per step)")
    ax.set_ylabel(_ms_label(steps))
    ax.set_ylim(0, ms.max() * HEADROOM or 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # steps are whole
    ax.grid(True, axis="y", alpha=0.3)
    handles = [
        Patch(color=phase_style(phase)[0], label=_phase_summary(phase, steps))
        for phase in dict.fromkeys(s["phase"] for s in steps)
    ]
    lines = ax.get_lines() + kv_ax.get_lines()
    # on the twin, which is drawn over the bars: nothing hides the legend
    kv_ax.legend(handles=handles + lines, loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_title(title)


def _ms_label(steps: Sequence[Mapping]) -> str:
    """Batched decode makes B tokens per step; the y label says so."""
    batches = {s.get("batch", 1) for s in steps if s["phase"] == "decode"}
    if not batches or max(batches) == 1:
        return "ms per step"
    up_to = "" if len(batches) == 1 else "up to "  # sequences that finish leave the batch
    return f"ms per step ({up_to}{max(batches)} tokens)"


def _phase_summary(phase: str, steps: Sequence[Mapping]) -> str:
    """Legend text for a phase: its steps, mean ms per step and, for decode, tokens per second."""
    mine = [s for s in steps if s["phase"] == phase]
    seconds = sum(s["seconds"] for s in mine)
    text = f"{phase}: {len(mine)} step{'s' * (len(mine) > 1)}, {fmt(seconds / len(mine) * 1e3)} ms/step"
    if phase == "decode" and seconds > 0:
        text += f", {fmt(sum(s['tokens'] for s in mine) / seconds)} tok/s"
    return text


# ---------------------------------------------------------------- small helpers


def _model_name(profile: Mapping) -> str:
    """ "gpt2 (numpy)", or "model" when the profile does not say."""
    model = profile.get("model") if isinstance(profile.get("model"), Mapping) else {}
    name = model.get("name", "model")
    return f"{name} ({model['backend']})" if model.get("backend") else name
