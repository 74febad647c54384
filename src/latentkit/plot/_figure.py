"""Figure plumbing shared by the plot modules: Agg-only figures, never pyplot.

Figures are built with `matplotlib.figure.Figure` directly, so plotting holds no global
state, never opens a window, and works in threads and on machines without a display.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: resolution of saved PNGs (dots per inch)
DPI = 110


def new_axes(ax: Axes | None, figsize=(6.4, 4.8)) -> Axes:
    """`ax` when given, else the single Axes of a new Figure of `figsize` inches."""
    if ax is not None:
        return ax
    figure = Figure(figsize=figsize, layout="constrained")
    return figure.add_subplot()


def save_figure(figure_or_axes, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Write a Figure (or the Figure holding an Axes) to `path` as PNG; returns the path."""
    figure = figure_or_axes.figure if isinstance(figure_or_axes, Axes) else figure_or_axes
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, format="png")
    return path


def cluster_colors(n: int) -> np.ndarray:
    """(n, 4) RGBA colours, distinct for up to 20 clusters (tab10, then tab20)."""
    from matplotlib import colormaps

    if n <= 10:
        return colormaps["tab10"](np.arange(n))
    if n <= 20:
        return colormaps["tab20"](np.arange(n))
    return colormaps["turbo"](np.linspace(0.05, 0.95, n))
