"""What every minfer figure shares: a Figure that needs no pyplot, and saving to PNG or SVG.

Only matplotlib's object API is used (`Figure`, never pyplot), so there is no global state: the
figures work headless, in tests, and in Jupyter, where a returned `NotebookFigure` displays
inline. Every plotting function takes an optional `ax` to draw into, and returns the Figure.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError
from minfer.perf.counts import Arch

SAVE_FORMATS = {".png", ".svg"}


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as PNG (150 dpi) or SVG, chosen by the suffix of `path`; return the path.

    >>> save_figure(roofline(profile, ceilings), "out/roofline.svg")
    """
    path = Path(path)
    if path.suffix.lower() not in SAVE_FORMATS:
        raise InvalidInputError(f"the figure's path must end in .png or .svg, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, format=path.suffix.lower()[1:])
    return path


class NotebookFigure(Figure):
    """A Figure that shows itself in Jupyter. Jupyter's inline display of Figures is switched
    on by pyplot, only once pyplot draws its first figure; these figures never touch pyplot."""

    def _repr_png_(self) -> bytes:
        """PNG bytes for IPython's display (used only when no inline backend claims Figures)."""
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A new Figure (not registered with pyplot, so nothing global) or the given axes' figure."""
    if ax is None:
        fig = NotebookFigure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    return root_figure(ax), ax


def root_figure(ax: Axes) -> Figure:
    """The Figure that holds `ax`, through any SubFigure (whose .figure is the Figure)."""
    return ax.figure if isinstance(ax.figure, Figure) else ax.figure.figure


def subplots(
    nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (10, 4), **kwargs
) -> tuple[Figure, np.ndarray]:
    """A new `NotebookFigure` with a grid of axes, like `pyplot.subplots` without pyplot's state.

    >>> fig, axes = subplots(1, 2, figsize=(12, 4))   # axes: [2] array of Axes
    """
    fig = NotebookFigure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)  # [nrows, ncols] of Axes
    return fig, axes.ravel()


# ---------------------------------------------------------------- checking what comes in


def is_positive(value: Any) -> bool:
    """A finite number above zero (bool is a Real in Python, but never a size, a time or a rate)."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def positive(value: Any, name: str) -> float:
    """`value` as a float if it is a finite number above zero; else an error that names it."""
    if not is_positive(value):
        raise InvalidInputError(f"{name}={value!r} must be a positive number")
    return float(value)


def whole_number(value: Any, name: str, low: int) -> int:
    """`value` as an int if it is a whole number (not a bool) of at least `low`; else a named error."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise InvalidInputError(f"{name}={value!r} must be a whole number >= {low}")
    return int(value)


def check_arch(arch: Any) -> None:
    """An `Arch`, the shape the counts need; else say where to get one."""
    if not isinstance(arch, Arch):
        raise InvalidInputError(
            f"arch must be a minfer.perf.counts.Arch, got {type(arch).__name__}; "
            "use Arch.from_model(model) or minfer.perf.counts.ARCHS['gpt2']"
        )


def ceilings_pair(ceilings: Any) -> tuple[float, float]:
    """(peak GFLOP/s, bandwidth GB/s) from an object with those attributes or a dict."""
    if isinstance(ceilings, Mapping):
        values = ceilings.get("peak_gflops"), ceilings.get("bandwidth_gbs")
    else:
        values = getattr(ceilings, "peak_gflops", None), getattr(ceilings, "bandwidth_gbs", None)
    if not all(is_positive(v) for v in values):
        raise InvalidInputError(
            "ceilings need positive peak_gflops and bandwidth_gbs (attributes or dict keys), "
            f"got {ceilings!r}; run `minfer calibrate` to measure this machine's ceilings"
        )
    return float(values[0]), float(values[1])


def float_array(values: Any, name: str) -> np.ndarray:
    """`values` (a list, tuple or array of numbers) as a float64 array; else an error naming it.

    Strings, ragged lists and non-numbers are refused here, not deep inside NumPy or matplotlib.
    """
    if isinstance(values, (str, bytes)):
        raise InvalidInputError(f"{name} must be numbers (a list or an array), got the string {values!r}")
    try:
        array = np.asarray(values, dtype=np.float64)  # same shape as values
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"{name} must be numbers in a list or array of one shape: {e}") from e
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{name} must be finite numbers, got {values!r}")
    return array


def nonempty_mapping(value: Any, name: str, example: str) -> Mapping:
    """`value` if it is a non-empty dict-like; else an error that shows what one looks like."""
    if not isinstance(value, Mapping) or not value:
        raise InvalidInputError(f"{name} must be a non-empty dict, e.g. {example}; got {value!r}")
    return value


def check_probabilities(p: np.ndarray, name: str, tol: float = 1e-3) -> None:
    """Each row of `p` (last axis) must be a distribution: finite, >= 0, summing to 1 within `tol`.

    float32 softmax rows sum to 1 within ~1e-6; further off than `tol`, it is not a softmax.
    """
    if not np.isfinite(p).all() or (p < 0).any():
        raise InvalidInputError(f"{name} must be probabilities: finite and >= 0 (softmax output)")
    sums = p.sum(axis=-1).reshape(-1)  # [n_rows]
    bad = np.flatnonzero(np.abs(sums - 1) > tol)
    if bad.size:
        where = f"row {bad[0]} of {name}" if p.ndim > 1 else name
        raise InvalidInputError(
            f"{name} must sum to 1 over its last axis: {where} sums to {sums[bad[0]]:.4g}, "
            "not 1; pass the weights after the softmax (minfer.layers.softmax), not the scores"
        )


# colour and marker per phase, the same in every figure; ops share their phase's colour
PHASE_STYLE = {
    "prefill": ("tab:orange", "s"),
    "decode": ("tab:blue", "o"),
    "forward": ("tab:green", "D"),  # a whole sequence at once, no cache (evaluation)
}
OTHER_STYLE = ("tab:gray", "P")  # a phase name no figure knows yet


def phase_style(phase: str) -> tuple[str, str]:
    """(colour, marker) of a phase."""
    return PHASE_STYLE.get(phase, OTHER_STYLE)
