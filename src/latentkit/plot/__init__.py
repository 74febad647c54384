"""matplotlib figures for latentkit models (Agg only; nothing is ever shown on screen).

Each function draws on an optional `ax` and returns the Axes (`plot_image_grid` returns its
Figure); `save_figure(fig_or_ax, "out.png")` writes a PNG at 110 dpi.
"""

from ._figure import DPI, save_figure
from .curves import plot_criterion_curve, plot_history
from .mixture import (
    component_covariances,
    plot_density_2d,
    plot_image_grid,
    plot_projection_2d,
)

__all__ = [
    "DPI",
    "component_covariances",
    "plot_criterion_curve",
    "plot_density_2d",
    "plot_history",
    "plot_image_grid",
    "plot_projection_2d",
    "save_figure",
]
