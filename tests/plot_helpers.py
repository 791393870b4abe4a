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


def artists(fig, gid: str) -> list:
    """Every artist drawn with this gid, on any axes of the figure."""
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def bars(ax, gid: str) -> list:
    """The bar rectangles drawn with this gid, left to right (none: an empty list)."""
    return sorted((p for p in ax.patches if p.get_gid() == gid), key=lambda p: p.get_x())


def image(fig, gid: str):
    """The one image drawn with this gid, anywhere in the figure."""
    found = [im for ax in fig.axes for im in ax.images if im.get_gid() == gid]
    assert len(found) == 1, f"expected one image with gid {gid!r}, got {len(found)}"
    return found[0]


def stairs(ax, gid: str) -> tuple[list, list]:
    """(counts, bin edges) of the one histogram (ax.stairs) drawn with this gid."""
    found = [p for p in ax.patches if p.get_gid() == gid]
    assert len(found) == 1, f"expected one histogram with gid {gid!r}, got {len(found)}"
    values, edges, _ = found[0].get_data()
    return list(values), list(edges)


def area(ax, gid: str):
    """The one filled area (a collection) drawn with this gid."""
    found = [c for c in ax.collections if c.get_gid() == gid]
    assert len(found) == 1, f"expected one area with gid {gid!r}, got {len(found)}"
    return found[0]
