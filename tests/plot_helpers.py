"""Reading a drawn figure back: the tests of minfer.plots find artists by the gid they were given."""

from __future__ import annotations

import numpy as np


def line(ax, gid: str):
    """The one line drawn with this gid."""
    found = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    assert len(found) == 1, f"expected one line with gid {gid!r}, got {[ln.get_gid() for ln in ax.get_lines()]}"
    return found[0]


def xy(ln) -> np.ndarray:
    """[n_points, 2]: the (x, y) a line was drawn through."""
    return np.column_stack([np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)])


def same(points: np.ndarray, expected) -> None:
    """Coordinates equal to the ones worked out by hand, up to float rounding."""
    np.testing.assert_allclose(points, np.asarray(expected, float), rtol=1e-12, atol=1e-15)


def annotation(ax, gid: str):
    """The one text (or annotation) drawn with this gid."""
    found = [t for t in ax.texts if t.get_gid() == gid]
    assert len(found) == 1, f"expected one annotation with gid {gid!r}, got {len(found)}"
    return found[0]
