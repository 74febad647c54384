"""Shared matplotlib figure helpers (Agg only; nothing is ever shown on screen): axes and
saving, the model-selection criterion curve, the EM history, image grids and a 2-D scatter
coloured by label. A family's own figures live in its folder (`latentkit/<family>/figures.py`).

Each function draws on an optional `ax` and returns the Axes (`plot_image_grid` returns its
Figure); `save_figure(fig_or_ax, "out.png")` writes a PNG at 110 dpi.
"""

from ._figure import DPI, save_figure
from .curves import plot_criterion_curve, plot_history
from .images import plot_image_grid
from .scatter import plot_projection_2d

__all__ = [
    "DPI",
    "plot_criterion_curve",
    "plot_history",
    "plot_image_grid",
    "plot_projection_2d",
    "save_figure",
]
