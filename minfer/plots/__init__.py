"""minfer's figures, each drawn by the library from numbers it measured or counted.

One module per subject, matching the lesson that shows it:

- `minfer.plots.roof`: the roofline and the timeline of a profiled generation (lesson 09).
- `minfer.plots.common`: what every figure shares (`NotebookFigure`, `save_figure`, `subplots`).

Every function returns a matplotlib `Figure` drawn without pyplot, so it works headless, in
tests and in Jupyter; most take an `ax` to draw into instead. Artists carry a `gid` so tests
and notebooks can find what was drawn.
"""

from minfer.plots.common import NotebookFigure, save_figure, subplots
from minfer.plots.roof import roofline, timeline

__all__ = ["NotebookFigure", "roofline", "save_figure", "subplots", "timeline"]
