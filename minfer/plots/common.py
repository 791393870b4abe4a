"""What every minfer figure shares: a Figure that needs no pyplot, and saving to PNG or SVG.

Only matplotlib's object API is used (`Figure`, never pyplot), so there is no global state: the
figures work headless, in tests, and in Jupyter, where a returned `NotebookFigure` displays
inline. Every plotting function takes an optional `ax` to draw into, and returns the Figure.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Mapping
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minfer.errors import InvalidInputError

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


# ---------------------------------------------------------------- what comes in


def figure_function(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """For the public figure functions. They trust their arguments (what the library's own
    functions return) and check nothing; an argument of the wrong kind still fails as one
    InvalidInputError naming the function and how to call it, not as a traceback from deep
    inside NumPy or matplotlib."""

    @functools.wraps(fn)
    def drawn(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InvalidInputError:
            raise  # already says what is wrong (the ceilings, a profile's field)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError) as e:
            lines = [ln.strip() for ln in (fn.__doc__ or "").splitlines()]
            example = next((ln[4:] for ln in lines if ln.startswith(">>> ")), "")
            how = f"call it as its docstring shows: {example}" if example else "see its docstring"
            problem = f"{type(e).__name__}: {e}"
            raise InvalidInputError(f"{fn.__name__}() cannot draw these arguments ({problem}); {how}") from e

    return drawn


def ceilings_pair(ceilings: Any) -> tuple[float, float]:
    """(peak GFLOP/s, bandwidth GB/s) from an object with those attributes or a dict."""
    if isinstance(ceilings, Mapping):
        values = ceilings.get("peak_gflops"), ceilings.get("bandwidth_gbs")
    else:
        values = getattr(ceilings, "peak_gflops", None), getattr(ceilings, "bandwidth_gbs", None)
    if not all(isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in values):
        raise InvalidInputError(
            "ceilings need positive peak_gflops and bandwidth_gbs (attributes or dict keys), "
            f"got {ceilings!r}; run `minfer calibrate` to measure this machine's ceilings"
        )
    return float(values[0]), float(values[1])


def label(ax: Axes, text: str, xy: tuple, offset: tuple[float, float], where: str, **style) -> None:
    """`text` at `offset` points from the point `xy` (data coordinates unless `xycoords` says),
    aligned by `where`, e.g. "left top": its left edge and top at the offset."""
    ha, va = where.split()
    ax.annotate(text, xy, xytext=offset, textcoords="offset points", ha=ha, va=va, **style)


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
